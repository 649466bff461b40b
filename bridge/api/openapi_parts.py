"""What every part of /openapi.json writes alike: bearer security, path parameters, JSON bodies
and problem answers (one spelling, so the main and the admin parts cannot drift apart)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The operation needs a bearer token (`bridge.api.access`).
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem(description: str) -> dict[str, Any]:
    """A problem+json answer (RFC 9457) with this description."""
    return {"description": description, "content": _PROBLEM}


def path_param(name: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
    """A required path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind, **schema}}


def json_body(props: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object request body; optional when no property is required."""
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}
