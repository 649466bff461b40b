"""Formcycle element names: one rule from a schema field's dotted path to a letters-and-digits name.

A Formcycle element name may only use letters and digits, so a form cannot post the dotted
path ``keeper.first_name`` as the name of an element. Every schema field therefore has a
default element name, the lower camel case of its dotted path:

* the path is split at dots and underscores into words;
* the first word is written in lower case, every further word with a capital first letter;
* a list position is a word of its own, so it stands as its digits.

``keeper.first_name`` is ``keeperFirstName``, ``keeper.address.postal_code`` is
``keeperAddressPostalCode``, the first file of the list ``attachments`` is ``attachments0``
and its name ``attachments.0.filename`` is ``attachments0Filename``. Intake accepts these next
to the dotted paths and the aliases configured per service (a configured alias wins), and
``check-config`` reports a default name that would stand for two fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields, validate

from schemas.blocks import AttachmentSchema, ServiceBaseSchema

#: What Formcycle allows as an element name (and what every default name is).
ELEMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def element_name(path: str) -> str:
    """The default Formcycle element name of the dotted field ``path`` (lower camel case)."""
    words = [word for part in path.split(".") for word in part.split("_") if word]
    if not words:
        raise ValueError(f"{path!r} is not a field path")
    first, *rest = words
    return first.lower() + "".join(word[:1].upper() + word[1:].lower() for word in rest)


@dataclass(frozen=True)
class Element:
    """One place of a schema a form element fills: a value, a file, or a repeatable value.

    ``index`` is the position of a list item (``attachments.3``), ``group`` the path with the
    positions left out (``attachments``), so that a sheet can show a list's items as one row.
    """

    path: str
    field: fields.Field[Any]
    labels: tuple[str, ...]
    """The German titles from the top level down."""
    kind: str
    """``value``, ``repeat`` (a list of values, as one repeated element), ``repeat-item`` (one
    of its items), ``upload``, ``upload-list`` (a list of files, as one repeated upload element)
    or ``file-detail`` (a file's metadata, written by the bridge from the file; a form never
    sends it)."""
    chain: tuple[fields.Field[Any], ...]
    """The fields of the enclosing blocks from the top down, for when the element is needed."""
    index: int | None = None
    group: str = ""

    @property
    def name(self) -> str:
        """The default element name."""
        return element_name(self.path)


def max_items(field: fields.List[Any]) -> int:
    """How many items a list field takes (its length validator's maximum)."""
    for validator in field.validators:
        if isinstance(validator, validate.Length) and validator.max is not None:
            return int(validator.max)
    raise ValueError(f"list field {field.name!r} has no maximum length")


def ordered_fields(schema: Schema) -> list[tuple[str, fields.Field[Any]]]:
    """The fields of ``schema`` by input key in declaration order, the shared service fields last."""
    items = [(field.data_key or name, field) for name, field in schema.fields.items()]
    if not isinstance(schema, ServiceBaseSchema):
        return items
    shared = set(ServiceBaseSchema._declared_fields)
    return [i for i in items if i[0] not in shared] + [i for i in items if i[0] in shared]


def _nested_schema(field: fields.Field[Any]) -> Schema | None:
    return field.schema if isinstance(field, fields.Nested) else None


def _walk(
    schema: Schema,
    prefix: str,
    group: str,
    labels: tuple[str, ...],
    chain: tuple[fields.Field[Any], ...],
    index: int | None,
    detail: bool,
) -> Iterator[Element]:
    for key, field in ordered_fields(schema):
        path, grp = f"{prefix}{key}", f"{group}{key}"
        title = (*labels, str(field.metadata.get("title") or key))
        inner = field.inner if isinstance(field, fields.List) else None
        nested = _nested_schema(inner if inner is not None else field)
        if detail:
            yield Element(path, field, title, "file-detail", chain, index, grp)
        elif nested is None:
            yield Element(
                path, field, title, "value" if inner is None else "repeat", chain, index, grp
            )
            if isinstance(field, fields.List):
                # Items of a list of values may also come one element each (`dogMainBreeds0`).
                for i in range(max_items(field)):
                    item = (*title, f"{i + 1}.")
                    yield Element(
                        f"{path}.{i}", field.inner, item, "repeat-item", (*chain, field), i, grp
                    )
        elif isinstance(field, fields.List):
            assert inner is not None
            if isinstance(nested, AttachmentSchema):
                # One upload element may also send all the list's files under one name.
                yield Element(path, field, title, "upload-list", chain, index, grp)
            for i in range(max_items(field)):
                if isinstance(nested, AttachmentSchema):
                    item = (*title, f"{i + 1}.")
                    yield Element(f"{path}.{i}", inner, item, "upload", (*chain, field), i, grp)
                yield from _walk(
                    nested,
                    f"{path}.{i}.",
                    f"{grp}.",
                    (*title, f"{i + 1}."),
                    (*chain, field),
                    i,
                    isinstance(nested, AttachmentSchema),
                )
        else:
            is_file = isinstance(nested, AttachmentSchema)
            if is_file:
                yield Element(path, field, title, "upload", chain, index, grp)
            yield from _walk(nested, f"{path}.", f"{grp}.", title, (*chain, field), index, is_file)


@functools.lru_cache(maxsize=16)
def elements(schema_class: type[Schema]) -> tuple[Element, ...]:
    """Every place of the schema a name can stand for, in the schema's order.

    Lists are expanded to their items (``attachments.0`` ... ``attachments.49``), blocks to
    their fields; a list of values is also one place of its own (a repeated element).
    """
    return tuple(_walk(schema_class(), "", "", (), (), None, False))


@dataclass(frozen=True)
class NameTable:
    """A schema's default element names: which field path each stands for, and collisions."""

    paths: dict[str, str]
    """Default element name -> dotted path, for the names that stand for one field."""
    collisions: dict[str, tuple[str, ...]]
    """Default element names that would stand for more than one field, with those fields."""

    @property
    def field_paths(self) -> frozenset[str]:
        """Every dotted path the schema has a name for (colliding ones too)."""
        colliding = {path for paths in self.collisions.values() for path in paths}
        return frozenset(self.paths.values()) | colliding


@functools.lru_cache(maxsize=16)
def name_table(schema_class: type[Schema]) -> NameTable:
    """The default element names of ``schema_class`` (built once per schema)."""
    found: dict[str, list[str]] = {}
    for element in elements(schema_class):
        paths = found.setdefault(element.name, [])
        if element.path not in paths:
            paths.append(element.path)
    return NameTable(
        paths={name: paths[0] for name, paths in found.items() if len(paths) == 1},
        collisions={name: tuple(paths) for name, paths in found.items() if len(paths) > 1},
    )
