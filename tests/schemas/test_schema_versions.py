"""Schema versions: each version says how its data become the previous one's, and steps chain."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from schemas import SCHEMAS, SchemaRegistry, ServiceSchema, ValidationOptions, drop_fields
from schemas.dog_registration import DogRegistrationSchema
from tests.factories import dog
from tests.schema_versions import dog_v2


def _version(version: int, **kwargs: Any) -> ServiceSchema:
    return ServiceSchema(
        key=f"dog-registration@{version}",
        service="dog-registration",
        version=version,
        leika="99102013104000",
        title_de="Hund anmelden",
        schema_class=DogRegistrationSchema,
        **kwargs,
    )


def _three_versions(*, second_converts: bool = True) -> SchemaRegistry:
    """@1, @2 adding dog.tattoo_number, @3 adding keeper.title (each dropped on the way back)."""
    return SchemaRegistry(
        [
            SCHEMAS.get("dog-registration@1"),
            _version(2, to_previous=drop_fields("dog.tattoo_number") if second_converts else None),
            _version(3, to_previous=drop_fields("keeper.title")),
        ]
    )


def test_conversions_chain_down_to_the_version_asked_for() -> None:
    """@3 to @1 takes both steps; the key returned names the version the data now have."""
    registry = _three_versions()
    data = dog({"dog.tattoo_number": "T-1", "keeper.title": "Dr."})
    before = copy.deepcopy(data)
    key, converted = registry.convert("dog-registration@3", data, 1)
    assert key == "dog-registration@1"
    assert "tattoo_number" not in converted["dog"]
    assert "title" not in converted["keeper"]
    assert converted["dog"]["name"] == data["dog"]["name"]
    assert data == before  # the stored case is never changed
    key, converted = registry.convert("dog-registration@3", data, 2)
    assert key == "dog-registration@2"
    assert converted["dog"]["tattoo_number"] == "T-1"
    assert "title" not in converted["keeper"]


def test_the_same_or_a_newer_version_is_no_conversion() -> None:
    """Data are never converted upwards: asked for a newer version, they stay as they are."""
    registry = _three_versions()
    data = dog()
    assert registry.convert("dog-registration@2", data, 2) == ("dog-registration@2", data)
    assert registry.convert("dog-registration@1", data, 3) == ("dog-registration@1", data)
    assert registry.conversion_gap("dog-registration@1", 3) is None


def test_a_missing_step_is_named() -> None:
    """A version without `to_previous` ends the chain: why is said, and convert refuses."""
    registry = _three_versions(second_converts=False)
    assert registry.conversion_gap("dog-registration@3", 2) is None
    assert (
        registry.conversion_gap("dog-registration@3", 1)
        == "dog-registration@2 declares no conversion to version 1"
    )
    with pytest.raises(ValueError, match="declares no conversion"):
        registry.convert("dog-registration@3", dog(), 1)


def test_an_unknown_target_or_source_is_named() -> None:
    """Neither a version nobody registered nor an unknown key converts."""
    registry = _three_versions()
    assert registry.conversion_gap("dog-registration@3", 0) == "unknown schema 'dog-registration@0'"
    assert registry.conversion_gap("cat@2", 1) == "unknown schema 'cat@2'"


def test_drop_fields_leaves_out_nested_and_missing_paths_alike() -> None:
    """A path the data do not have (an optional block left empty) is no error."""
    convert = drop_fields("dog.tattoo_number", "previous_keeper.address.town", "nothing.here")
    data = {"dog": {"name": "Bello", "tattoo_number": "T"}, "previous_keeper": None}
    assert convert(data) == {"dog": {"name": "Bello"}, "previous_keeper": None}
    assert data["dog"] == {"name": "Bello", "tattoo_number": "T"}


def test_version_1_has_nothing_to_convert_to() -> None:
    """A conversion on version 1, or a version 0, is a programming error found at import."""
    with pytest.raises(ValueError, match="version 1 has no previous version"):
        _version(1, to_previous=drop_fields("x"))
    with pytest.raises(ValueError, match="versions start at 1"):
        _version(0)


def test_converted_test_version_is_valid_for_version_1() -> None:
    """The test's @2 data, converted, pass @1's own schema with unknown keys refused."""
    registry = SchemaRegistry([SCHEMAS.get("dog-registration@1"), dog_v2()])
    options = ValidationOptions(now=dt.datetime.now(dt.UTC), unknown="reject")
    received = registry.get("dog-registration@2").validate(dog({"dog.tattoo_number": "T"}), options)
    key, data = registry.convert("dog-registration@2", received.data, 1)
    assert registry.get(key).validate(data, options).data == data


def test_unregister_withdraws_a_version() -> None:
    """A test's extra version goes again; an unknown key is a KeyError."""
    registry = _three_versions()
    registry.unregister("dog-registration@3")
    assert "dog-registration@3" not in registry
    with pytest.raises(KeyError):
        registry.unregister("dog-registration@3")
