"""Which version an office gets: its pin, else the service's; never converted upwards."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from domain.config import Config, parse_config
from domain.delivery.schema_versions import as_sent, has_path, office_version
from schemas import ServiceSchema
from tests.conftest import ROOT
from tests.domain.test_settings_config import SECRETS
from tests.factories import dog
from tests.schema_versions import (  # noqa: F401 - fixtures are found by name
    dog_v2_registered,
    dog_v2_without_conversion,
)

TAX = "usingen-steueramt"
PUBLIC_ORDER = "neu-anspach-ordnungsamt"
RAW: dict[str, Any] = tomllib.loads((ROOT / "config" / "routing.toml").read_text(encoding="utf-8"))
V2_DATA = dog({"dog.tattoo_number": "T-1"})


def _config(schema: str, pins: dict[str, int] | None = None) -> Config:
    raw = copy.deepcopy(RAW)
    raw["services"]["dog-registration"]["schema"] = schema
    if pins is not None:
        raw["offices"][TAX]["schema_versions"] = pins
    return parse_config(raw, SECRETS)


def test_pinned_office_gets_the_older_version(
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """Pinned to @1: converted; the other office: the service's @2, unchanged."""
    config = _config("dog-registration@2", {"dog-registration": 1})
    assert office_version(config, TAX, "dog-registration") == 1
    assert office_version(config, PUBLIC_ORDER, "dog-registration") == 2
    key, data = as_sent(config, TAX, "dog-registration", "dog-registration@2", V2_DATA)
    assert key == "dog-registration@1"
    assert "tattoo_number" not in data["dog"]
    assert as_sent(config, PUBLIC_ORDER, "dog-registration", "dog-registration@2", V2_DATA) == (
        "dog-registration@2",
        V2_DATA,
    )


def test_a_case_received_before_the_upgrade_goes_out_as_received(
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """Stored as @1, the service now on @2: every office gets @1 (nothing converts upwards)."""
    config = _config("dog-registration@2")
    old = dog()
    assert as_sent(config, PUBLIC_ORDER, "dog-registration", "dog-registration@1", old) == (
        "dog-registration@1",
        old,
    )


def test_unpinned_offices_follow_the_services_version_back(
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """The service set back to @1 with cases stored as @2: they go out as @1."""
    config = _config("dog-registration@1")
    key, data = as_sent(config, PUBLIC_ORDER, "dog-registration", "dog-registration@2", V2_DATA)
    assert key == "dog-registration@1"
    assert "tattoo_number" not in data["dog"]


def test_data_that_cannot_be_converted_go_out_under_their_own_version(
    dog_v2_without_conversion: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No step down from a stored @2: the envelope never claims a version its data lack."""
    config = _config("dog-registration@1")
    assert as_sent(config, TAX, "dog-registration", "dog-registration@2", V2_DATA) == (
        "dog-registration@2",
        V2_DATA,
    )
    [record] = [r for r in caplog.records if r.getMessage() == "delivery.schema_not_converted"]
    assert "T-1" not in str(record.__dict__)  # ids and keys only, never the citizen's data


def test_a_service_no_longer_configured_goes_out_as_stored() -> None:
    """A case of a service taken out of the file keeps the version it was received in."""
    config = _config("dog-registration@1")
    assert office_version(config, TAX, "cat-registration") is None
    assert as_sent(config, TAX, "cat-registration", "cat-registration@1", {"a": 1}) == (
        "cat-registration@1",
        {"a": 1},
    )


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("attachments.0", True),
        ("attachments.1", False),
        ("dog.name", True),
        ("dog.photo", False),
        ("dog.name.first", False),
        ("attachments.x", False),
    ],
)
def test_has_path_follows_keys_and_list_indexes(path: str, found: bool) -> None:
    """An attachment's field path is looked up in the data sent (dotted, lists by index)."""
    data = {"dog": {"name": "Bello"}, "attachments": [{"filename": "a.pdf"}]}
    assert has_path(data, path) is found
