"""The form designer's sheet: every Formcycle element a service's form may have, one row each.

A row says the element name to give it (schemas/element_names.py, and the aliases the service
has configured), its German label, the type and the Formcycle element to use, whether (or
when) it is required, and its values, limits and patterns, all read from the schema and the
service's configured limits. `markdown` and `csv` render the same rows; the CLI prints them
(`python -m bridge formcycle <service>`) and docs/formcycle-fields/ holds them, generated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from marshmallow import fields as mf
from marshmallow import validate

from domain.config import Service
from domain.intake.filetypes import ALLOWED_LABEL
from schemas import SCHEMAS, Limits
from schemas.blocks import (
    MAX_SAFE_INTEGER,
    NOT_BLANK_PATTERN,
    Bool,
    Choice,
    Date,
    DateTime,
    Email,
    Int,
    Pattern,
    Str,
)
from schemas.element_names import Element, element_name, elements, max_items

#: The column headings, in German as the designer reads them (markdown and CSV alike).
HEADINGS = {
    "name": "Elementname",
    "aliases": "Auch angenommen",
    "label": "Bezeichnung",
    "type": "Typ",
    "element": "Formcycle-Element",
    "required": "Pflicht",
    "values": "Werte",
    "limits": "Grenzen und Muster",
    "path": "Feld (JSON)",
}
#: A long text gets a text area rather than a one-line field.
TEXTAREA_FROM = 500


@dataclass(frozen=True)
class Row:
    """One element of the form (a list's items are one row)."""

    name: str
    aliases: str
    label: str
    type: str
    element: str
    required: str
    values: str
    limits: str
    path: str


#: Elements shown in the row of their list (or not at all: the details the bridge writes).
_WITH_THEIR_LIST = frozenset({"file-detail", "repeat-item", "upload-list"})


def rows(service: Service) -> list[Row]:
    """The sheet of ``service``: its schema's elements in the schema's order."""
    limits = service.limits()
    aliases: dict[str, list[str]] = {}
    for alias, target in service.aliases.items():
        aliases.setdefault(target, []).append(alias)
    out: list[Row] = []
    seen: set[str] = set()
    for element in elements(SCHEMAS.get(service.schema).schema_class):
        if element.kind in _WITH_THEIR_LIST or element.group in seen:
            continue  # details the bridge writes itself; list items go with their list
        if element.index is not None:
            seen.add(element.group)
        out.append(_row(element, limits, aliases))
    return out


def _row(element: Element, limits: Limits, aliases: dict[str, list[str]]) -> Row:
    field = element.field
    list_field = element.chain[-1] if element.index is not None else None
    name, path = f"`{element.name}`", element.path
    also = aliases.get(element.path, [])
    if element.kind == "repeat":
        assert isinstance(field, mf.List)
        last = max_items(field) - 1
        name = f"`{element.name}0` … `{element.name}{last}` oder `{element.name}` (wiederholt)"
        path = f"{element.path}.0 … {element.path}.{last}"
    elif isinstance(list_field, mf.List):
        # The first item stands for the list: its row shows the first and the last name.
        last_path = _item_path(element.path, max_items(list_field) - 1)
        name = f"`{element.name}` … `{element_name(last_path)}`"
        path = f"{element.path} … {last_path}"
        if element.kind == "upload":
            base = element.path.removesuffix(".0")
            name += f" oder `{element_name(base)}` (wiederholt)"
            also = aliases.get(base, []) + also
    kind, form_element, values = _kind(element)
    return Row(
        name=name,
        aliases=", ".join(f"`{a}`" for a in also),
        label=" › ".join(element.labels[:-1] if element.index is not None else element.labels),
        type=kind,
        element=form_element,
        required=_required(element),
        values=values,
        limits="; ".join(_limits(element, limits)),
        path=path,
    )


def _item_path(first: str, index: int) -> str:
    """The path of item ``index`` of the list whose first item's path is ``first``."""
    if first.endswith(".0"):
        return f"{first[:-2]}.{index}"
    return first.replace(".0.", f".{index}.", 1)


def _kind(element: Element) -> tuple[str, str, str]:
    """The type in German, the Formcycle element to use, and the values it may send."""
    field = element.field
    if element.kind == "upload":
        return "Datei", "upload", ""
    if element.kind == "repeat":
        assert isinstance(field, mf.List)
        return "Text, mehrere", "text", ""
    if isinstance(field, Choice):
        values = "; ".join(f"`{value}` „{label}“" for value, label in field.labels.items())
        return "Auswahl", "select", values
    if isinstance(field, Bool):
        if field.required and not _must_be_true(field):
            # An unticked checkbox sends nothing, which would read as "not answered".
            return "Ja/Nein", "select", "`true` „Ja“; `false` „Nein“"
        return "Ja/Nein", "checkbox", "angehakt: `true`"
    if isinstance(field, DateTime):
        return "Datum und Uhrzeit", "text", ""
    if isinstance(field, Date):
        return "Datum", "date", ""
    if isinstance(field, Int):
        return "Ganzzahl", "text", ""
    if isinstance(field, Email):
        return "E-Mail-Adresse", "text", ""
    length = _max_length(field)
    return "Text", "textarea" if length and length >= TEXTAREA_FROM else "text", ""


def _must_be_true(field: mf.Field[Any]) -> bool:
    return any(isinstance(v, validate.Equal) and v.comparable is True for v in field.validators)


def _max_length(field: mf.Field[Any]) -> int | None:
    for validator in field.validators:
        if isinstance(validator, validate.Length) and validator.max is not None:
            return int(validator.max)
    return None


def _required(element: Element) -> str:
    """ "ja", "nein", or "ja, wenn ..." from the field, its blocks and their conditions."""
    field = element.field if element.index is None else element.chain[-1]
    chain = element.chain if element.index is None else element.chain[:-1]
    own_condition = field.metadata.get("required_when")
    if not field.required and own_condition is None:
        default = field.load_default
        if isinstance(default, str | bool):
            shown = default if isinstance(default, str) else ("Ja" if default else "Nein")
            return f"nein (ohne Angabe: {shown})"
        return "nein"
    conditions = [str(f.metadata["required_when"]) for f in chain if "required_when" in f.metadata]
    if own_condition is not None:
        conditions.append(str(own_condition))
    if not conditions:
        # Inside an optional block: needed once anything of that block is filled in.
        optional = [i for i, f in enumerate(chain) if not f.required]
        if optional:
            block = " › ".join(element.labels[: optional[-1] + 1])
            conditions.append(f"„{block}“ ausgefüllt wird")
    return "ja" if not conditions else "ja, wenn " + " und ".join(conditions)


def _limits(element: Element, limits: Limits) -> Iterable[str]:
    """What the value must look like, in German, with the service's configured limits."""
    field = element.field
    if element.kind == "upload":
        yield f"Dateitypen: {ALLOWED_LABEL}"
        if element.index is not None:
            yield f"bis zu {max_items(_as_list(element.chain[-1]))} Dateien"
        return
    if element.kind == "repeat":
        yield f"bis zu {max_items(_as_list(field))} Einträge"
        field = _as_list(field).inner
    yield from _validator_limits(field)
    if isinstance(field, Str | Email) and not isinstance(field, Choice):
        length = _max_length(field)
        if length is not None:
            yield f"höchstens {length} Zeichen"
    description = field.metadata.get("description")
    if isinstance(description, str):
        yield description.format(**asdict(limits)).rstrip(".")
    elif isinstance(field, Int) and field.option_bounds is not None:
        low, high = (getattr(limits, name) for name in field.option_bounds)
        yield f"{low} bis {high}"
    for example in field.metadata.get("examples", []):
        yield f"z. B. {example}"


def _validator_limits(field: mf.Field[Any]) -> Iterable[str]:
    """The date format, and the field's patterns and number ranges (not the bound every
    integer has)."""
    if isinstance(field, DateTime):
        yield "TT.MM.JJJJ HH:MM"
    elif isinstance(field, Date):
        yield "TT.MM.JJJJ"
        if field.not_in_future:
            yield "nicht in der Zukunft"
    if _must_be_true(field):
        yield "muss angehakt sein"
    for validator in field.validators:
        if isinstance(validator, Pattern) and validator.regex.pattern != NOT_BLANK_PATTERN:
            yield f"Muster `{validator.regex.pattern}`"
        elif isinstance(validator, validate.Range) and validator.max != MAX_SAFE_INTEGER:
            if validator.min is not None:
                yield f"mindestens {validator.min}"
            if validator.max is not None:
                yield f"höchstens {validator.max}"


def _as_list(field: mf.Field[Any]) -> mf.List[Any]:
    assert isinstance(field, mf.List)
    return field


def markdown(service: Service, sheet: Sequence[Row]) -> str:
    """The sheet as a Markdown page (what docs/formcycle-fields/<service>.md holds)."""
    lines = [
        f"<!-- Generated by `python -m bridge formcycle {service.id}"
        f" > docs/formcycle-fields/{service.id}.md`; do not edit. -->",
        "",
        f"# Formcycle-Elemente: {service.title} (`{service.id}`, `{service.schema}`)",
        "",
        "Jedes Element des Formulars bekommt im Designer den Elementnamen aus der ersten "
        "Spalte. Auswahlfelder senden den Wert (die Beschriftung wird auch verstanden); leere "
        "Elemente gelten als nicht ausgefüllt; Dateien gehen als `multipart/form-data`.",
        "",
        "Each form element gets the element name of the first column in the Formcycle "
        "designer; the other columns say what it must contain.",
        "",
        "| " + " | ".join(HEADINGS.values()) + " |",
        "|" + "---|" * len(HEADINGS),
    ]
    for row in sheet:
        cells = (getattr(row, f.name).replace("|", "\\|") for f in fields(Row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(sheet: Sequence[Row]) -> str:
    """The sheet as CSV (a heading line, then one line per element; no Markdown marks)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADINGS.values())
    for row in sheet:
        writer.writerow(getattr(row, f.name).replace("`", "") for f in fields(Row))
    return out.getvalue()
