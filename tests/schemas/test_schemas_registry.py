"""The registry of versioned service schemas."""

from __future__ import annotations

import pytest

from schemas import SCHEMAS, SchemaRegistry, ServiceSchema
from schemas.dog_registration import DogRegistrationSchema
from schemas.traffic_order import TrafficOrderSchema


def test_both_services_are_registered_with_their_keys() -> None:
    """Both services are registered with LeiKa keys and titles."""
    assert SCHEMAS.keys() == ["dog-registration@1", "traffic-order@1"]
    dog = SCHEMAS.get("dog-registration@1")
    assert (dog.service, dog.version, dog.leika, dog.title_de) == (
        "dog-registration",
        1,
        "99102013104000",
        "Hund anmelden",
    )
    assert dog.schema_class is DogRegistrationSchema
    traffic = SCHEMAS.get("traffic-order@1")
    assert (traffic.leika, traffic.title_de) == ("99108011153000", "Verkehrsrechtliche Anordnung")
    assert traffic.schema_class is TrafficOrderSchema


def test_iteration_len_contains_and_latest() -> None:
    """The registry behaves like a small collection of entries."""
    assert [entry.key for entry in SCHEMAS] == SCHEMAS.keys()
    assert len(SCHEMAS) == 2
    assert "traffic-order@1" in SCHEMAS
    assert "traffic-order@2" not in SCHEMAS
    assert SCHEMAS.latest("traffic-order").key == "traffic-order@1"
    assert SCHEMAS.services() == ["dog-registration", "traffic-order"]


def test_unknown_keys_raise_key_error() -> None:
    """Unknown keys and services raise KeyError."""
    with pytest.raises(KeyError):
        SCHEMAS.get("cat-registration@1")
    with pytest.raises(KeyError):
        SCHEMAS.get("dog-registration")  # the version is part of the key
    with pytest.raises(KeyError):
        SCHEMAS.latest("cat-registration")


def test_versions_are_registered_once_and_latest_wins() -> None:
    """A key is registered once; latest picks the highest version."""
    v1 = SCHEMAS.get("dog-registration@1")
    v2 = ServiceSchema(
        key="dog-registration@2",
        service="dog-registration",
        version=2,
        leika=v1.leika,
        title_de=v1.title_de,
        schema_class=DogRegistrationSchema,
    )
    registry = SchemaRegistry([v2, v1])
    assert registry.latest("dog-registration") is v2
    with pytest.raises(ValueError, match="already registered"):
        registry.register(v1)


def test_key_must_match_service_and_version() -> None:
    """An inconsistent key is refused."""
    with pytest.raises(ValueError, match="dog-registration@1"):
        ServiceSchema(
            key="dog@1",
            service="dog-registration",
            version=1,
            leika="99102013104000",
            title_de="Hund anmelden",
            schema_class=DogRegistrationSchema,
        )
