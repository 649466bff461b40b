"""The intake's size limits in one object, with the problems that refusing each of them gives.

The body parsers (bridge/intake/bodies.py), the webhook's body reader and the intake (attachments,
dotted keys) all take their limits from here, so a limit and its message cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.problems import FieldError, Problem, msg, size_text
from domain.settings import Settings


def malformed(de: str, en: str) -> Problem:
    """The 400 answer to a body that cannot be read as what it claims to be."""
    return Problem(
        400,
        "malformed-body",
        msg("Die Anfrage ist fehlerhaft aufgebaut.", "The request body is malformed."),
        msg(de, en),
    )


def nesting_depth(value: Any) -> int:
    """How deeply a value nests (a scalar or an empty object is 1), without recursing."""
    if not isinstance(value, dict | list):
        return 1  # every value of a form body: spare the walk
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def json_shape(value: Any, max_nodes: int) -> tuple[bool, int]:
    """In one walk: whether object keys and list items, counted through every level, number
    more than `max_nodes`, and how deeply the value nests (as `nesting_depth`).

    The walk stops as soon as the count passes `max_nodes` (the depth is then not needed): a
    list of millions of items is refused after one look at its length.
    """
    count = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            count += len(node)
            children: Any = node.values()
        elif isinstance(node, list):
            count += len(node)
            children = node
        else:
            continue
        if count > max_nodes:
            return True, deepest
        stack.extend((child, depth + 1) for child in children)
    return False, deepest


@dataclass(frozen=True)
class BodyLimits:
    """How large and how deep a webhook body and its files may be."""

    max_body_bytes: int
    max_file_bytes: int
    max_files: int
    max_depth: int
    max_fields: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        """The limits configured for this service (BRIDGE_MAX_* variables)."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_file_bytes=settings.max_file_bytes,
            max_files=settings.max_files,
            max_depth=settings.max_json_depth,
            max_fields=settings.max_form_fields,
        )

    def body_too_large(self) -> Problem:
        """413: the body is longer than `max_body_bytes`."""
        size = size_text(self.max_body_bytes)
        return Problem(
            413,
            "body-too-large",
            msg("Die Anfrage ist zu groß.", "The request is too large."),
            msg(f"Höchstens {size.de} sind erlaubt.", f"At most {size.en} are allowed."),
        )

    def too_deep(self, what_de: str = "Das JSON", what_en: str = "The JSON") -> Problem:
        """400: data nested deeper than `max_depth` (a JSON body, or dotted form keys)."""
        return malformed(
            f"{what_de} ist tiefer als {self.max_depth} Ebenen verschachtelt.",
            f"{what_en} is nested deeper than {self.max_depth} levels.",
        )

    def too_many_parts(self) -> Problem:
        """413: a multipart body with more than `max_fields` parts."""
        return Problem(
            413,
            "too-many-parts",
            msg("Die Anfrage enthält zu viele Teile.", "The request has too many parts."),
            msg(
                f"Höchstens {self.max_fields} Felder sind erlaubt.",
                f"At most {self.max_fields} fields.",
            ),
        )

    def too_many_json_values(self) -> Problem:
        """413: a JSON body with more than `max_fields` object keys and list items together."""
        return Problem(
            413,
            "too-many-fields",
            msg("Die Anfrage enthält zu viele Felder.", "The request has too many fields."),
            msg(
                f"Das JSON darf höchstens {self.max_fields} Schlüssel und Listeneinträge enthalten.",
                f"The JSON may hold at most {self.max_fields} keys and list items.",
            ),
        )

    def too_many_files(self) -> Problem:
        """413: more than `max_files` attachments."""
        return Problem(
            413,
            "too-many-files",
            msg("Zu viele Anlagen.", "Too many attachments."),
            msg(
                f"Höchstens {self.max_files} Dateien sind erlaubt.",
                f"At most {self.max_files} files are allowed.",
            ),
        )

    def file_too_large(self, path: str) -> Problem:
        """413: the attachment at `path` is larger than `max_file_bytes`."""
        size = size_text(self.max_file_bytes)
        return Problem(
            413,
            "file-too-large",
            msg("Eine Anlage ist zu groß.", "An attachment is too large."),
            msg(
                f"Jede Datei darf höchstens {size.de} groß sein.",
                f"Each file may be at most {size.en}.",
            ),
            errors=[FieldError(path, msg("Die Datei ist zu groß.", "The file is too large."))],
        )
