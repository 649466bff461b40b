"""The JSON Schema generated from the marshmallow schemas through apispec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import SCHEMAS, Limits, ValidationOptions, json_schema
from tests.schemas.agreement import schema_validator
from tests.schemas.samples import (
    SAMPLE_NOW,
    SAMPLE_OPTIONS,
    dog_registration_payload,
    traffic_order_payload,
)


def _walk(node: Any) -> list[Any]:
    """Every dict and list inside ``node``."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found.extend(_walk(child))
    return found


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
    germany = keeper["properties"]["address"]["anyOf"][0]["properties"]
    assert germany["country"] == {"const": "DE"}
    postal_code = germany["postal_code"]
    assert postal_code["pattern"] == "^[0-9]{5}$"
    dog = schema["properties"]["dog"]
    assert dog["properties"]["microchip_number"]["pattern"] == "^[0-9]{15}$"
    assert dog["properties"]["sex"]["enum"] == ["male", "female"]
    mixed, pure = dog["anyOf"]
    assert mixed["required"] == ["is_mixed_breed", "main_breeds"]
    assert pure == {"properties": {"is_mixed_breed": {"const": False}}, "required": ["breed"]}
    assert schema["properties"]["dogs_in_household"]["minimum"] == 1
    # Published: a file as a sender sends it; the validator gets its checked metadata.
    upload = schema["properties"]["attachments"]["items"]
    assert set(upload["properties"]) == {"filename", "content_type", "content_base64"}
    assert upload["properties"]["content_base64"]["contentEncoding"] == "base64"
    stored = json_schema("dog-registration@1", attachments="stored")
    assert stored["properties"]["attachments"]["items"]["properties"]["sha256"]["pattern"] == (
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
    assert start["type"] == "string"
    assert [alternative.get("format") for alternative in start["anyOf"]] == [
        "date-time",
        "date",
        None,  # local time without offset, described by its pattern
    ]
    assert "72 Stunden" in start["description"]
    assert properties["reason"]["x-labels"]["construction"] == "Baustelle"
    assert location["properties"]["side"]["x-labels"]["even"] == "gerade Hausnummern"
    assert properties["zone_length_m"]["minimum"] == 5
    assert properties["zone_length_m"]["maximum"] == 200
    construction, other = schema["anyOf"]
    assert construction["required"] == ["reason", "construction", "site_plan"]
    assert other["properties"]["construction"] is False
    assert properties["construction"]["required"] == [
        "closure_type",
        "firm",
        "responsible_person",
    ]
    person, _company = properties["applicant"]["anyOf"]
    assert person == {
        "properties": {"kind": {"const": "person"}, "company": False},
        "required": ["kind", "person"],
    }


def test_valid_samples_fit_the_json_schema() -> None:
    """Marshmallow and the JSON Schema agree on the valid samples."""
    dog = schema_validator(json_schema("dog-registration@1", attachments="stored"))
    dog.validate(dog_registration_payload())
    traffic = schema_validator(json_schema("traffic-order@1", attachments="stored"))
    for kind in ("person", "company"):
        traffic.validate(traffic_order_payload(applicant_kind=kind))
    traffic.validate(traffic_order_payload(reason="construction"))


def test_configured_limits_are_published() -> None:
    """Zone bounds, lead time and the unknown-key policy of the service appear in the schema."""
    limits = Limits(lead_hours=96, min_zone_m=10, max_zone_m=30, unknown="reject")
    schema = json_schema("traffic-order@1", limits)
    zone = schema["properties"]["zone_length_m"]
    assert (zone["minimum"], zone["maximum"], zone["description"]) == (10, 30, "10 bis 30 m.")
    assert "96 Stunden" in schema["properties"]["period"]["properties"]["start"]["description"]
    objects = [
        node for node in _walk(schema) if isinstance(node, dict) and node.get("type") == "object"
    ]
    assert len(objects) > 5
    assert all(node["additionalProperties"] is False for node in objects)
    assert not any(
        isinstance(node, dict) and "additionalProperties" in node
        for node in _walk(json_schema("traffic-order@1"))
    )


def test_delivered_data_fit_the_delivery_shape() -> None:
    """What the validator hands on (and a delivery carries) fits ``delivered=True``: files as
    metadata, every object closed, bounds left to the configuration, whatever it is today."""
    options = ValidationOptions(now=SAMPLE_NOW, min_zone_m=1, max_zone_m=5000)
    traffic = SCHEMAS.get("traffic-order@1")
    long_zone = traffic.validate(traffic_order_payload(zone_length_m=4000), options).data
    delivered = json_schema("traffic-order@1", delivered=True)
    schema_validator(delivered).validate(long_zone)
    zone = delivered["properties"]["zone_length_m"]
    # Only the JSON-safe range every integer has: the configured bounds are not the schema's.
    assert (zone["minimum"], zone["maximum"]) == (-(2**53 - 1), 2**53 - 1)
    assert zone["description"].startswith("min_zone_m bis max_zone_m m. (Grenzen laut")
    objects = [n for n in _walk(delivered) if isinstance(n, dict) and n.get("type") == "object"]
    assert all(node["additionalProperties"] is False for node in objects)
    dog = SCHEMAS.get("dog-registration@1").validate(dog_registration_payload(), SAMPLE_OPTIONS)
    dog_schema = schema_validator(json_schema("dog-registration@1", delivered=True))
    dog_schema.validate(dog.data)
    assert set(dog.data["attachments"][0]) == {"filename", "content_type", "size", "sha256"}
    upload = {"filename": "a.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0="}
    assert not dog_schema.is_valid({**dog.data, "attachments": [upload]})  # the sender's shape


def test_unknown_key() -> None:
    """An unknown schema key raises KeyError."""
    with pytest.raises(KeyError):
        json_schema("cat-registration@1")
