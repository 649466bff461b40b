"""JSON Schema (draft 2020-12) of the service schemas, made by apispec's marshmallow converter.

This is the one description of a service's data: ``/schemas/<service>`` publishes it and the
OpenAPI document carries it unchanged as the component of the request body. It describes a
JSON body exactly: what it accepts, the validator accepts, apart from the rules JSON Schema
cannot express (dates not in the future, the lead time of a start, an end after the start,
an acquisition not before the birth). Form bodies carry the same fields as strings, which the
validator converts by the field's type (see `schemas.blocks`). Nested blocks are inlined.

An attachment has two shapes: a sender sends the file (``{"filename", "content_type",
"content_base64"}``, the ``upload`` shape, which is what is published), and the intake hands
the validator its checked metadata (``{"filename", "content_type", "size", "sha256"}``, the
``stored`` shape of `AttachmentSchema`). ``json_schema(..., attachments="stored")`` describes
the validator's input, so that the two can be compared.

``json_schema(..., delivered=True)`` describes the ``data`` of a delivery to a back office: the
validator's output, so files in the stored shape and no key the schema does not name, and not
narrowed by the limits configured today (a case was checked against the limits of the day it
arrived; a replay sends it unchanged).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Literal

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields

from schemas.blocks import (
    ISO_DATE_PATTERN,
    LOCAL_DATETIME_PATTERN,
    MIME_PATTERN,
    NOT_BLANK_PATTERN,
    RFC3339_PATTERN,
    AttachmentSchema,
    Choice,
    Date,
    DateTime,
    Email,
    Int,
    Str,
)
from schemas.options import Limits
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


#: A file as a JSON body sends it (domain/intake/attachments.py reads exactly these keys).
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
AttachmentShape = Literal["upload", "stored"]


def upload_schema(title: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one file sent in a JSON body: name, type and base64 content."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": (
            "Eine Datei (PDF, PNG oder JPEG): Name, Typ und Inhalt Base64-kodiert. "
            "Größe und Prüfsumme bestimmt die Schnittstelle selbst."
        ),
        "properties": {
            "filename": {
                "type": "string",
                "title": "Dateiname",
                "minLength": 1,
                "maxLength": 255,
            },
            "content_type": {
                "type": "string",
                "title": "Dateityp (MIME)",
                "maxLength": 255,
                "pattern": MIME_PATTERN,
            },
            "content_base64": {
                "type": "string",
                "title": "Inhalt (Base64)",
                "contentEncoding": "base64",
                "minLength": 4,
                "pattern": BASE64_PATTERN,
            },
        },
        "required": ["content_base64", "filename"],
    }
    if title:
        schema["title"] = title
    return schema


#: What a description's limit placeholders read in a delivery schema: the option's name.
CONFIGURED_LIMITS = {name: name for name in Limits.__dataclass_fields__}
CONFIGURED_NOTE = " (Grenzen laut Konfiguration des Dienstes, siehe /schemas/<Dienst>)"


class BridgeConverter(OpenAPIConverter):
    """apispec's converter plus our field types, the configured limits and the conditions."""

    limits = Limits()
    attachments: AttachmentShape = "upload"
    delivered = False

    def init_attribute_functions(self) -> None:
        """Register the extra field conversion after apispec's own."""
        super().init_attribute_functions()  # type: ignore[no-untyped-call]
        self.attribute_functions.append(self.bridge_field2properties)

    def bridge_field2properties(
        self, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        """Describe what our field types accept from JSON, with the configured limits."""
        extra: dict[str, Any] = {}
        description = ret.get("description")
        if isinstance(description, str) and "{" in description:
            if self.delivered:
                extra["description"] = description.format(**CONFIGURED_LIMITS) + CONFIGURED_NOTE
            else:
                extra["description"] = description.format(**dataclasses.asdict(self.limits))
        if isinstance(field, DateTime):
            ret.pop("format", None)
            extra["anyOf"] = [
                {"format": "date-time", "pattern": RFC3339_PATTERN},
                {"format": "date", "pattern": ISO_DATE_PATTERN},
                {
                    "pattern": LOCAL_DATETIME_PATTERN,
                    "description": "Ortszeit (Europe/Berlin) ohne Zeitzone",
                },
            ]
        elif isinstance(field, Date):
            extra["pattern"] = ISO_DATE_PATTERN
        elif isinstance(field, Choice):
            extra["x-labels"] = dict(field.labels)
        elif (
            isinstance(field, Str) and field.blank_pattern and "pattern" not in ret
        ) or isinstance(field, Email):
            extra["pattern"] = NOT_BLANK_PATTERN
        elif isinstance(field, Int) and field.option_bounds is not None and not self.delivered:
            low, high = field.option_bounds
            extra["minimum"] = getattr(self.limits, low)
            extra["maximum"] = getattr(self.limits, high)
        return extra

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        """Convert like apispec, then add the unknown-key policy and ``json_schema_extra``."""
        if self.attachments == "upload" and isinstance(schema, AttachmentSchema):
            upload = upload_schema()
            if self.limits.unknown == "reject":
                upload["additionalProperties"] = False
            return upload
        result: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        if self.limits.unknown == "reject":
            result["additionalProperties"] = False
        extra = getattr(schema, "json_schema_extra", None)
        if isinstance(extra, dict) and extra:
            result.update(copy.deepcopy(extra))
        return result


class BridgeMarshmallowPlugin(MarshmallowPlugin):
    """MarshmallowPlugin using `BridgeConverter` with the given limits."""

    Converter = BridgeConverter

    def __init__(
        self,
        limits: Limits,
        attachments: AttachmentShape = "upload",
        delivered: bool = False,
        **kwargs: Any,
    ) -> None:
        """Create the plugin for a service configured with ``limits``."""
        super().__init__(**kwargs)
        self.limits = limits
        self.attachments: AttachmentShape = attachments
        self.delivered = delivered

    def init_spec(self, spec: APISpec) -> None:
        """Initialise like apispec and hand the limits to the converter."""
        super().init_spec(spec)
        if isinstance(self.converter, BridgeConverter):
            self.converter.limits = self.limits
            self.converter.attachments = self.attachments
            self.converter.delivered = self.delivered


def json_schema(
    key: str,
    limits: Limits | None = None,
    *,
    attachments: AttachmentShape = "upload",
    delivered: bool = False,
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the service schema ``key``; KeyError if unknown.

    ``limits`` are the service's configured limits (lead time, zone length, unknown keys);
    the defaults when omitted. ``attachments`` chooses the shape of files: as a sender sends
    them (published) or as the validator receives them after intake. ``delivered`` describes
    the validated data a delivery carries instead (see the module's docstring).
    """
    service = SCHEMAS.get(key)
    if delivered:
        limits, attachments = Limits(unknown="reject"), "stored"
    plugin = BridgeMarshmallowPlugin(
        limits or Limits(), attachments, delivered, schema_name_resolver=inline_nested
    )
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
