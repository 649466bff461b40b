"""Problems: every rejection as an RFC 9457 problem, in German first and English on request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schemas import Msg

Lang = Literal["de", "en"]

PROBLEM_BASE = "urn:formcycle-bridge:problem:"


@dataclass(frozen=True)
class FieldError:
    """One failing field, named by its dotted path."""

    field: str
    message: Msg


@dataclass
class Problem(Exception):
    """A rejection: HTTP status, a stable type, a bilingual title and detail, failing fields."""

    status: int
    type: str
    title: Msg
    detail: Msg | None = None
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Keep the exception's message useful in tracebacks (no field values in it)."""
        Exception.__init__(self, f"{self.status} {self.type}")

    def body(self, lang: Lang, instance: str | None = None) -> dict[str, Any]:
        """The application/problem+json body in the chosen language."""
        out: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type,
            "title": self.title.en if lang == "en" else str(self.title),
            "status": self.status,
        }
        if self.detail is not None:
            out["detail"] = self.detail.en if lang == "en" else str(self.detail)
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = [
                {"field": e.field, "message": e.message.en if lang == "en" else str(e.message)}
                for e in self.errors
            ]
        return out


def msg(de: str, en: str) -> Msg:
    """A bilingual message."""
    return Msg(de, en=en)


def size_text(n_bytes: int) -> Msg:
    """A byte limit for people: "2 MB", "0,5 MB" in German, "512 KB" below half a megabyte."""
    mib = n_bytes / (1024 * 1024)
    if mib >= 0.5:
        number = f"{mib:.1f}".removesuffix(".0")
        return msg(f"{number.replace('.', ',')} MB", f"{number} MB")
    kib = f"{n_bytes / 1024:.0f}"
    return msg(f"{kib} KB", f"{kib} KB")
