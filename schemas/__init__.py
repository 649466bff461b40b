"""Shared, versioned marshmallow schemas of the services, with bilingual messages.

Typical use::

    from schemas import SCHEMAS, ValidationOptions, flatten_messages

    try:
        result = SCHEMAS.get("dog-registration@1").validate(data, ValidationOptions(now=now))
    except marshmallow.ValidationError as error:
        problems = flatten_messages(error.messages, "de")
"""

from schemas.breeds import dangerous_breeds
from schemas.jsonschema import json_schema
from schemas.labels import describe
from schemas.messages import Msg, flatten_messages, render_messages
from schemas.options import Limits, ValidationOptions
from schemas.registry import SCHEMAS, SchemaRegistry, ServiceSchema, Validated, drop_fields

__all__ = [
    "SCHEMAS",
    "Limits",
    "Msg",
    "SchemaRegistry",
    "ServiceSchema",
    "Validated",
    "ValidationOptions",
    "dangerous_breeds",
    "describe",
    "drop_fields",
    "flatten_messages",
    "json_schema",
    "render_messages",
]
