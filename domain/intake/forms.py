"""Form shaping: a posted body's flat fields (dotted keys, aliases, repeats) as nested data.

Formcycle posts flat element names; the schemas expect nested objects. Here each name is
resolved to its field (the per-service alias table first, then the schema's default element
names, `schemas.element_names`), dotted keys become nested objects (no deeper than the body limit),
repeated keys become lists, and numbered groups (`attachments.0.x`) become lists too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.config import Service
from domain.intake.limits import BodyLimits, nesting_depth
from domain.intake.validation import invalid_field
from domain.problems import Problem


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart body (or a base64 attachment of a JSON body)."""

    field: str
    filename: str
    declared_type: str
    content: bytes


@dataclass(frozen=True)
class RawSubmission:
    """A parsed body before validation: top-level keys (maybe dotted) and uploads."""

    fields: Sequence[tuple[str, Any]]
    uploads: Sequence[Upload] = ()
    from_form: bool = True


def shape(service: Service, raw: RawSubmission, limits: BodyLimits) -> dict[str, Any]:
    """Resolve element names (aliases, default names) and expand dotted keys into nested data.

    A dotted key counts towards the nesting limit like a JSON object does, so that nothing
    after this point (lists, attachments, the schema) meets data deeper than the limit.
    """
    for upload in raw.uploads:
        # A file's metadata takes the place of a value: a file name counts like a field name.
        if len(service.field_path(upload.field).split(".")) + 1 > limits.max_depth:
            raise limits.too_deep("Ein Feldname mit Punkten", "A dotted field name")
    root: dict[str, Any] = {}
    # The name each field came under: one field sent under two names (an alias and its
    # default name, say) is a mistake of the form, not a list of two values.
    sent_as: dict[str, str] = {}
    for key, value in raw.fields:
        if raw.from_form and value == "":
            # An empty form element means "not filled in", not an empty answer.
            continue
        target = service.field_path(key)
        if sent_as.setdefault(target, key) != key:
            raise _twice(target, sent_as[target], key)
        parts = target.split(".")
        if len(parts) > 1 and len(parts) + nesting_depth(value) > limits.max_depth:
            raise limits.too_deep("Ein Feldname mit Punkten", "A dotted field name")
        if "" in parts:
            raise _conflict(key)
        _set_path(root, parts, value, key)
    # The top level is always an object: numbered keys there (`0=x`) are fields, not a list.
    return {k: _lists_from_indexes(v) for k, v in root.items()}


def _set_path(root: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    """Put `value` at `path`; a second value at the same place makes a list (a repeated key)."""
    node = root
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise _conflict(key)
        node = child
    last = path[-1]
    if last in node:
        existing = node[last]
        if isinstance(existing, dict) or isinstance(value, dict):
            raise _conflict(key)
        # A repeated form key is a multi-value element (e.g. several main breeds).
        node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        node[last] = value


def _conflict(key: str) -> Problem:
    """A form key used both as a value and as a group: a 422 naming the field."""
    return invalid_field(
        key,
        f"Das Feld {key!r} ist zugleich Wert und Gruppe.",
        f"Field {key!r} is used both as a value and as a group.",
    )


def _twice(target: str, first: str, second: str) -> Problem:
    """One field under two element names: a 422 at the field, naming both names."""
    return invalid_field(
        target,
        f"Diese Angabe kam unter zwei Elementnamen ({first}, {second}). Das liegt am Formular, "
        "nicht an Ihren Angaben: bitte wenden Sie sich an die Stelle, die das Formular anbietet.",
        f"This field came under two element names ({first}, {second}). The form must send it "
        "under one name only.",
    )


def is_index(key: str) -> bool:
    """Whether a key segment is a list position ("0", "12"): ASCII digits only, since
    str.isdigit() also takes "¹" or "٣", which int() then refuses."""
    return key.isascii() and key.isdigit()


def _lists_from_indexes(node: Any) -> Any:
    """Turn dicts keyed "0", "1", ... (from keys like `attachments.0.name`) into lists."""
    if isinstance(node, dict):
        # Strings, the values of a form, without a call each.
        converted = {k: v if type(v) is str else _lists_from_indexes(v) for k, v in node.items()}
        if converted and all(is_index(k) and len(k) <= 4 for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_lists_from_indexes(v) for v in node]
    return node


def get_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any part of the path is missing."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
