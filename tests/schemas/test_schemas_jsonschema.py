"""The JSON Schema generated from the marshmallow schemas through apispec."""

from __future__ import annotations

import json
from typing import Any

import pytest
from apispec import APISpec

from schemas import SCHEMAS, json_schema
from schemas.jsonschema import marshmallow_plugin
from tests.schemas.samples import dog_registration_payload, traffic_order_payload

TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def _walk(node: Any) -> list[Any]:
    """Every dict and list inside ``node``."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found.extend(_walk(child))
    return found


def _check(schema: dict[str, Any], value: Any, path: str = "") -> None:
    """Check ``value`` against the structural keywords of ``schema`` (type/required/properties).

    A small stand-in for a JSON Schema validator (none is installed): enough to show that
    the valid samples fit the generated schema.
    """
    expected = schema.get("type")
    if expected is not None:
        assert isinstance(value, TYPES[expected]), f"{path}: not {expected}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{path}.{name}: required"
        properties = schema.get("properties", {})
        for name, item in value.items():
            assert name in properties, f"{path}.{name}: not in the schema"
            _check(properties[name], item, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(schema["items"], item, f"{path}.{index}")
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in enum"


@pytest.mark.parametrize("key", ["dog-registration@1", "traffic-order@1"])
def test_header_and_serialisability(key: str) -> None:
    """The document identifies itself and inlines every block."""
    schema = json_schema(key)
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:formcycle-bridge:schema:{key}"
    assert schema["title"] == SCHEMAS.get(key).title_de
    assert schema["type"] == "object"
    # Nested blocks are inlined: no references to OpenAPI components.
    assert not any(isinstance(node, dict) and "$ref" in node for node in _walk(schema))


def test_dog_registration_structure() -> None:
    """Required lists, patterns and conditions of the dog schema."""
    schema = json_schema("dog-registration@1")
    assert schema["required"] == ["dog", "dogs_in_household", "keeper", "privacy_consent"]
    assert schema["properties"]["privacy_consent"]["enum"] == [True]
    keeper = schema["properties"]["keeper"]
    assert keeper["required"] == ["address", "birth_date", "contact", "first_name", "last_name"]
    assert keeper["properties"]["birth_date"]["format"] == "date"
    postal_code = keeper["properties"]["address"]["allOf"][0]["then"]["properties"]["postal_code"]
    assert postal_code["pattern"] == "^[0-9]{5}$"
    dog = schema["properties"]["dog"]
    assert dog["properties"]["microchip_number"]["pattern"] == "^[0-9]{15}$"
    assert dog["properties"]["sex"]["enum"] == ["male", "female"]
    assert dog["then"]["required"] == ["main_breeds"]
    assert dog["else"]["required"] == ["breed"]
    assert schema["properties"]["dogs_in_household"]["minimum"] == 1
    assert schema["properties"]["attachments"]["items"]["properties"]["sha256"]["pattern"] == (
        "^[0-9a-f]{64}$"
    )


def test_traffic_order_structure() -> None:
    """Required lists, enums, patterns and conditions of the traffic order."""
    schema = json_schema("traffic-order@1")
    assert schema["required"] == [
        "applicant",
        "location",
        "period",
        "privacy_consent",
        "reason",
        "zone_length_m",
    ]
    properties = schema["properties"]
    assert properties["reason"]["enum"] == [
        "move",
        "delivery",
        "construction",
        "container",
        "crane",
        "scaffold",
        "event",
    ]
    location = properties["location"]
    assert location["properties"]["postal_code"]["pattern"] == "^[0-9]{5}$"
    assert location["required"] == ["house_number", "postal_code", "side", "street", "town"]
    start = properties["period"]["properties"]["start"]
    assert start["anyOf"] == [{"format": "date-time"}, {"format": "date"}]
    assert properties["zone_length_m"]["minimum"] == 5
    assert properties["zone_length_m"]["maximum"] == 200
    assert schema["then"]["required"] == ["construction", "site_plan"]
    assert properties["construction"]["required"] == [
        "closure_type",
        "firm",
        "responsible_person",
    ]
    applicant_rules = properties["applicant"]["allOf"]
    assert applicant_rules[0]["then"] == {"required": ["person"], "not": {"required": ["company"]}}


def test_valid_samples_fit_the_json_schema() -> None:
    """Marshmallow and the JSON Schema agree on the valid samples."""
    _check(json_schema("dog-registration@1"), dog_registration_payload())
    for kind in ("person", "company"):
        _check(json_schema("traffic-order@1"), traffic_order_payload(applicant_kind=kind))
    _check(json_schema("traffic-order@1"), traffic_order_payload(reason="construction"))


def test_unknown_key() -> None:
    """An unknown schema key raises KeyError."""
    with pytest.raises(KeyError):
        json_schema("cat-registration@1")


def test_plugin_shares_the_conversion_with_an_openapi_document() -> None:
    """An OpenAPI document built with the plugin gets the same schema."""
    spec = APISpec(
        title="Bridge", version="1", openapi_version="3.1.0", plugins=[marshmallow_plugin()]
    )
    spec.components.schema("traffic-order@1", schema=SCHEMAS.get("traffic-order@1").schema_class)
    document = spec.to_dict()
    component = document["components"]["schemas"]["traffic-order@1"]
    body = json_schema("traffic-order@1")
    assert component["properties"] == body["properties"]
    assert list(document["components"]["schemas"]) == ["traffic-order@1"]
