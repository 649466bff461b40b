"""Builders for webhook bodies: the schema samples as Formcycle would post them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from tests.schemas.samples import DELETE, dog_registration_payload, traffic_order_payload

# Real files, small: a PDF, a PNG and an ELF executable wearing a .pdf name.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64


def today() -> dt.date:
    """The local date in Hesse, which the service uses for its date rules."""
    from schemas.options import LOCAL_TZ

    return dt.datetime.now(LOCAL_TZ).date()


def dog(changes: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid dog registration from Neu-Anspach, resolved by postal code, without attachments."""
    base = dict(changes or {})
    base.setdefault("municipality_ags", DELETE)
    base.setdefault("attachments", DELETE)
    return dog_registration_payload(base, today=today(), **overrides)


def traffic(changes: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid traffic order for a zone in Usingen, without attachments (site plans are uploads)."""
    base = dict(changes or {})
    base.setdefault("municipality_ags", DELETE)
    base.setdefault("location.postal_code", "61250")
    base.setdefault("location.town", "Usingen")
    if overrides.get("reason") == "construction":
        base.setdefault("site_plan", DELETE)
    return traffic_order_payload(base, today=today(), **overrides)


def flatten(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested data as dotted form fields, the way Formcycle posts them (lists repeat the key)."""
    out: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.extend(flatten(value, name))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    raise ValueError("lists of objects are posted as JSON in these tests")
                out.append((name, _text(item)))
        else:
            out.append((name, _text(value)))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_json(payload: Mapping[str, Any]) -> bytes:
    """A JSON body."""
    return json.dumps(payload).encode()
