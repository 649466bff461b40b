"""JSON Schema (draft 2020-12) of the service schemas, made by apispec's marshmallow converter.

The OpenAPI document should register `marshmallow_plugin()` in its APISpec (OpenAPI 3.1, whose
schema objects are JSON Schema 2020-12), so both describe the data with one conversion.
Nested blocks are inlined rather than referenced as components.

The JSON Schema describes the canonical form of the data; the service is more lenient on
input (German synonyms for choices, German date formats, spaces in chip numbers, blanks).
"""

from __future__ import annotations

import copy
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields

from schemas.blocks import DateTime
from schemas.registry import SCHEMAS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: OpenAPI 3.1 schema objects are JSON Schema 2020-12 (e.g. nullable becomes a type list).
OPENAPI_VERSION = "3.1.0"


def schema_id(key: str) -> str:
    """The ``$id`` of the JSON Schema for ``key``."""
    return f"urn:formcycle-bridge:schema:{key}"


def inline_nested(schema: type[Schema] | Schema | str) -> str:
    """Schema name resolver that makes apispec inline nested schemas instead of a $ref."""
    return ""  # apispec inlines whenever the resolver gives no name


class BridgeConverter(OpenAPIConverter):
    """apispec's converter plus our custom fields and conditional requirements."""

    def init_attribute_functions(self) -> None:
        """Register the extra field conversion after apispec's own."""
        super().init_attribute_functions()  # type: ignore[no-untyped-call]
        self.attribute_functions.append(self.bridge_field2properties)

    def bridge_field2properties(
        self, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        """Describe our DateTime, which also accepts a bare date."""
        if isinstance(field, DateTime):
            ret.pop("format", None)
            return {"anyOf": [{"format": "date-time"}, {"format": "date"}]}
        return {}

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        """Convert like apispec, then add the schema's ``json_schema_extra`` keywords."""
        result: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        extra = getattr(schema, "json_schema_extra", None)
        if isinstance(extra, dict) and extra:
            result.update(copy.deepcopy(extra))
        return result


class BridgeMarshmallowPlugin(MarshmallowPlugin):
    """MarshmallowPlugin using `BridgeConverter`."""

    Converter = BridgeConverter


def marshmallow_plugin() -> MarshmallowPlugin:
    """A fresh apispec plugin that converts our schemas (register it in one APISpec)."""
    return BridgeMarshmallowPlugin(schema_name_resolver=inline_nested)


def json_schema(key: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the service schema ``key``; KeyError if unknown."""
    service = SCHEMAS.get(key)
    plugin = marshmallow_plugin()
    # The spec only initialises the plugin's converter; nothing is added to it.
    APISpec(
        title=service.title_de,
        version=str(service.version),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
    )
    if plugin.converter is None:  # pragma: no cover - APISpec always initialises it
        raise RuntimeError("apispec did not initialise the marshmallow converter")
    body = plugin.converter.schema2jsonschema(service.schema_class())  # type: ignore[no-untyped-call]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(key),
        "title": service.title_de,
        "description": (
            f"{service.title_de} (LeiKa {service.leika}), Schema-Version {service.version}"
        ),
        **body,
    }
