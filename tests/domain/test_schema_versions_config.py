"""An office's `schema_versions`: a pin is accepted only if its data can be sent in that version."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from domain.config import ConfigError, parse_config
from schemas import ServiceSchema
from tests.conftest import ROOT
from tests.domain.test_settings_config import SECRETS
from tests.schema_versions import (  # noqa: F401 - fixtures are found by name
    dog_v2_registered,
    dog_v2_without_conversion,
)

TAX = "usingen-steueramt"
RAW: dict[str, Any] = tomllib.loads((ROOT / "config" / "routing.toml").read_text(encoding="utf-8"))


def _raw(pins: Any, schema: str = "dog-registration@1", office: str = TAX) -> dict[str, Any]:
    """The shipped configuration with the dog registration on `schema` and `office` pinned."""
    raw = copy.deepcopy(RAW)
    raw["services"]["dog-registration"]["schema"] = schema
    raw["offices"][office]["schema_versions"] = pins
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, SECRETS)
    return caught.value.problems


def test_shipped_offices_take_the_services_versions() -> None:
    """Nothing pinned in the shipped file: every office takes each service's own version."""
    config = parse_config(RAW, SECRETS)
    assert all(not office.schema_versions for office in config.offices.values())


def test_a_pin_to_the_current_version_is_valid() -> None:
    """Pinning the version in use now lets the office stay on it when the service moves on."""
    config = parse_config(_raw({"dog-registration": 1}), SECRETS)
    assert config.offices[TAX].schema_versions == {"dog-registration": 1}


def test_an_older_version_is_valid_when_it_can_be_reached(
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """Service on @2, tax office on @1: version 2 says how its data become version 1."""
    config = parse_config(_raw({"dog-registration": 1}, "dog-registration@2"), SECRETS)
    assert config.offices[TAX].schema_versions == {"dog-registration": 1}


def test_unknown_version_is_refused() -> None:
    """A version nobody registered is named, with the versions there are."""
    assert _problems(_raw({"dog-registration": 3})) == [
        f"offices.{TAX}.schema_versions.dog-registration: "
        "unknown schema 'dog-registration@3' (versions: 1)"
    ]


def test_unknown_service_is_refused() -> None:
    """A pin names a service of the file."""
    assert _problems(_raw({"cat-registration": 1})) == [
        f"offices.{TAX}.schema_versions.cat-registration: unknown service 'cat-registration'"
    ]


def test_a_version_newer_than_the_services_is_refused(
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """Intake validates against the service's version; nothing turns that into a newer one."""
    assert _problems(_raw({"dog-registration": 2})) == [
        f"offices.{TAX}.schema_versions.dog-registration: dog-registration@2 is newer than the "
        "service's schema dog-registration@1; data are never converted upwards"
    ]


def test_a_version_that_cannot_be_reached_is_refused(
    dog_v2_without_conversion: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """A newer version that declares no way back leaves the office no choice but to upgrade."""
    assert _problems(_raw({"dog-registration": 1}, "dog-registration@2")) == [
        f"offices.{TAX}.schema_versions.dog-registration: cannot send dog-registration@2 data "
        "as dog-registration@1: dog-registration@2 declares no conversion to version 1"
    ]


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True])
def test_a_version_is_a_positive_whole_number(version: Any) -> None:
    """Versions count from 1; a string, a float or a boolean is refused, not guessed at."""
    [problem] = _problems(_raw({"dog-registration": version}))
    assert problem.startswith(f"offices.{TAX}.value.schema_versions.dog-registration")


def test_schema_versions_is_a_table() -> None:
    """`schema_versions = 1` is a typo, not a pin for every service."""
    [problem] = _problems(_raw(1))
    assert problem.startswith(f"offices.{TAX}.value.schema_versions: ")


def test_every_bad_pin_is_reported_at_once() -> None:
    """Two offices, two problems, one run."""
    raw = _raw({"dog-registration": 9})
    raw["offices"]["neu-anspach-ordnungsamt"]["schema_versions"] = {"traffic-order": 2}
    assert sorted(_problems(raw)) == [
        "offices.neu-anspach-ordnungsamt.schema_versions.traffic-order: "
        "unknown schema 'traffic-order@2' (versions: 1)",
        f"offices.{TAX}.schema_versions.dog-registration: "
        "unknown schema 'dog-registration@9' (versions: 1)",
    ]
