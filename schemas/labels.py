"""What a clerk reads of a submission: the schema's German titles and German values.

`describe` turns validated data into ``(label path, value)`` pairs such as
``(("Halterin oder Halter", "Vorname"), "Erika")`` or ``(("Ort der Zone", "Straßenseite"),
"gerade Hausnummern")``: choices by their German labels, dates as ``TT.MM.JJJJ``, points in
time as ``TT.MM.JJJJ HH:MM`` local time, yes/no as ``Ja``/``Nein``. Keys stay keys only in
what machines read (the JSON and XML channels).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields

from schemas.blocks import Choice, Date, DateTime, in_local_time
from schemas.element_names import ordered_fields
from schemas.registry import SCHEMAS

#: A described value: the German titles from the top level down, and the German value.
Line = tuple[tuple[str, ...], str]

NOT_GIVEN = "(keine Angabe)"


def describe(schema_key: str, data: Mapping[str, Any]) -> list[Line]:
    """The validated ``data`` of schema ``schema_key`` as German label paths and values.

    Fields come in the order of the schema (the service's own fields first, then consent,
    municipality and attachments). A key the schema does not know (data of a schema version
    no longer registered) is shown under its own name rather than hidden.
    """
    lines: list[Line] = []
    if schema_key in SCHEMAS:
        _describe_object(SCHEMAS.get(schema_key).schema_class(), data, (), lines)
    else:
        _describe_raw(data, (), lines)
    return lines


def field_label(schema_key: str, path: str) -> tuple[str, ...] | None:
    """The German titles of a dotted field path as a problem names it.

    ``"keeper.address.postal_code"`` becomes ``("Halterin oder Halter", "Anschrift",
    "Postleitzahl")``, a list index its number (``"attachments.0"``: ``("Anlagen", "1.")``).
    None when the schema does not know the path (an unknown key, a block of the bridge's own):
    the caller then names no key, since a key it does not know may be anything a sender typed.
    """
    if schema_key not in SCHEMAS or not path:
        return None
    node: Schema | fields.Field[Any] = SCHEMAS.get(schema_key).schema_class()
    labels: list[str] = []
    for part in path.split("."):
        if isinstance(node, fields.Nested):
            node = node.schema
        if isinstance(node, fields.List) and part.isdigit() and len(part) <= 6:
            labels.append(f"{int(part) + 1}.")
            node = node.inner
            continue
        if not isinstance(node, Schema):
            return None
        found = next((f for name, f in node.fields.items() if (f.data_key or name) == part), None)
        if found is None:
            return None
        labels.append(str(found.metadata.get("title") or part))
        node = found
    return tuple(labels)


def flag_notes(schema_key: str, flags: Mapping[str, Any]) -> list[str]:
    """The routing flags of a submission as German sentences (the set keys if unknown)."""
    if schema_key in SCHEMAS:
        return SCHEMAS.get(schema_key).flag_notes(flags)
    return [str(key) for key, value in flags.items() if value]


def _describe_object(
    schema: Schema, data: Mapping[str, Any], path: tuple[str, ...], lines: list[Line]
) -> None:
    known: set[str] = set()
    for key, field in ordered_fields(schema):
        if key not in data:
            continue
        known.add(key)
        label = str(field.metadata.get("title") or key)
        _describe_field(field, data[key], (*path, label), lines)
    for key, value in data.items():
        if key not in known:
            _describe_raw(value, (*path, str(key)), lines)


def _describe_field(
    field: fields.Field[Any], value: Any, path: tuple[str, ...], lines: list[Line]
) -> None:
    if isinstance(field, fields.Nested) and isinstance(value, Mapping):
        _describe_object(field.schema, value, path, lines)
    elif isinstance(field, fields.List) and isinstance(value, list):
        inner = field.inner
        if isinstance(inner, fields.Nested):
            for number, item in enumerate(value, start=1):
                _describe_field(inner, item, (*path, f"{number}."), lines)
            if not value:
                lines.append((path, "(keine)"))
        else:
            lines.append((path, ", ".join(_text(inner, item) for item in value) or "(keine)"))
    else:
        lines.append((path, _text(field, value)))


def _text(field: fields.Field[Any], value: Any) -> str:
    """One value in German."""
    if value is None or value == "":
        return NOT_GIVEN
    if isinstance(value, bool):
        return "Ja" if value else "Nein"
    if isinstance(field, Choice):
        return field.labels.get(str(value), str(value))
    if isinstance(field, DateTime):
        try:
            moment = in_local_time(dt.datetime.fromisoformat(str(value)))
        except ValueError:
            return str(value)
        return moment.strftime("%d.%m.%Y %H:%M")
    if isinstance(field, Date):
        try:
            return dt.date.fromisoformat(str(value)).strftime("%d.%m.%Y")
        except ValueError:
            return str(value)
    return str(value)


def _describe_raw(value: Any, path: tuple[str, ...], lines: list[Line]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _describe_raw(item, (*path, str(key)), lines)
    elif isinstance(value, list):
        for number, item in enumerate(value, start=1):
            _describe_raw(item, (*path, f"{number}."), lines)
    else:
        lines.append((path, _text(fields.Raw(), value)))
