"""The element-name rule: Formcycle-legal, one name per field, collisions found and reported."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.config import ConfigError, parse_config
from domain.formcycle_sheet import rows
from schemas import SCHEMAS
from schemas.blocks import BridgeSchema, List, Nested, ServiceBaseSchema, Str, title
from schemas.element_names import ELEMENT_NAME, element_name, elements, name_table
from schemas.registry import ServiceSchema
from tests.domain.test_settings_config import SECRETS, _raw_config


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("keeper.first_name", "keeperFirstName"),
        ("keeper.address.postal_code", "keeperAddressPostalCode"),
        ("attachments.0.filename", "attachments0Filename"),
        ("attachments.0", "attachments0"),
        ("site_plan", "sitePlan"),
        ("zone_length_m", "zoneLengthM"),
        ("dog.main_breeds.4", "dogMainBreeds4"),
        ("reason", "reason"),
    ],
)
def test_the_rule_is_lower_camel_case_of_the_path(path: str, name: str) -> None:
    """Dots and underscores separate words; list positions stand as their digits."""
    assert element_name(path) == name


@pytest.mark.parametrize("key", [entry.key for entry in SCHEMAS])
def test_every_schema_field_has_one_legal_name_of_its_own(key: str) -> None:
    """No two places of a shipped schema share a default name; each is Formcycle-legal."""
    schema_class = SCHEMAS.get(key).schema_class
    table = name_table(schema_class)
    assert table.collisions == {}
    paths = [e.path for e in elements(schema_class)]
    assert sorted(table.paths.values()) == sorted(paths)
    assert all(ELEMENT_NAME.fullmatch(name) for name in table.paths)


@given(data=st.data())
def test_distinct_fields_get_distinct_names(data: st.DataObject) -> None:
    """Property: over every schema's fields, the rule is injective and only letters and digits."""
    entry = data.draw(st.sampled_from(list(SCHEMAS)))
    places = elements(entry.schema_class)
    first, second = data.draw(st.lists(st.sampled_from(places), min_size=2, max_size=2))
    assert ELEMENT_NAME.fullmatch(first.name)
    assert (first.name == second.name) == (first.path == second.path)


WORD = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
KEY = st.lists(WORD, min_size=1, max_size=3).map("_".join)
INDEX = st.integers(0, 99).map(str)


@given(st.lists(st.one_of(KEY, INDEX), min_size=1, max_size=5).filter(lambda p: p[0][0].isalpha()))
def test_every_name_the_rule_makes_is_legal(parts: list[str]) -> None:
    """Property: any snake-case field path with list positions gives a Formcycle-legal name."""
    assert ELEMENT_NAME.fullmatch(element_name(".".join(parts)))


class _Inner(BridgeSchema):
    b = Str(metadata=title("B"))


class _Colliding(ServiceBaseSchema):
    """`a_b` and `a.b` share the default name `aB`."""

    a_b = Str(metadata=title("A B"))
    a = Nested(_Inner, metadata=title("A"))
    items = List(Str(), max_items=2, metadata=title("Liste"))


def test_a_collision_is_found_with_both_fields() -> None:
    """The table leaves a shared name out and lists the fields it would stand for."""
    table = name_table(_Colliding)
    assert table.collisions == {"aB": ("a_b", "a.b")}
    assert "aB" not in table.paths
    assert table.paths["items1"] == "items.1"
    assert table.paths["items"] == "items"


@pytest.fixture
def colliding_schema(monkeypatch: pytest.MonkeyPatch) -> str:
    """A schema version with a default-name collision, registered for this test only."""
    entry = ServiceSchema(
        key="colliding@1",
        service="colliding",
        version=1,
        leika="99999999999999",
        title_de="Kollision",
        schema_class=_Colliding,
    )
    monkeypatch.setitem(SCHEMAS._entries, entry.key, entry)
    return entry.key


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, SECRETS)
    return caught.value.problems


def test_check_config_reports_a_colliding_default_name(colliding_schema: str) -> None:
    """A default name for two fields is an error until an alias of that name says which."""
    raw = _raw_config()
    raw["services"]["dog-registration"]["schema"] = colliding_schema
    raw["services"]["dog-registration"]["municipality_field"] = "a_b"
    raw["services"]["dog-registration"].pop("aliases")
    assert _problems(raw) == [
        "services.dog-registration: the element name 'aB' would stand for a_b and a.b; "
        "set services.dog-registration.aliases.aB to the field it means"
    ]
    raw["services"]["dog-registration"]["aliases"] = {"aB": "a.b"}
    config = parse_config(raw, SECRETS)
    service = config.services["dog-registration"]
    assert service.field_path("aB") == "a.b"  # the alias decides
    assert service.field_path("a_b") == "a_b"  # the other field keeps its dotted path


def test_check_config_lists_every_alias_problem() -> None:
    """An alias taking another field's default name or path, or pointing nowhere: all at once."""
    raw = _raw_config()
    raw["services"]["dog-registration"]["aliases"] = {
        "keeperLastName": "keeper.first_name",  # another field's default name
        "dog.colour": "dog.name",  # another field's dotted path
        "tfRasse": "dog.rasse",  # no such field
        "keeperFirstName": "keeper.first_name",  # its own default name: harmless
        "vorgang": "process_id",  # the idempotency field is not a schema field, but known
        "dateien": "attachments",  # one upload element for the whole list of files
    }
    where = "services.dog-registration.aliases"
    assert _problems(raw) == [
        f"{where}.keeperLastName: 'keeperLastName' is already the element name of "
        "keeper.last_name; choose another name for keeper.first_name",
        f"{where}.dog.colour: 'dog.colour' is already the element name of dog.colour; "
        "choose another name for dog.name",
        f"{where}.tfRasse: 'dog.rasse' is not a field of dog-registration@1",
    ]


def _names(cell: str) -> list[str]:
    """The element names of a sheet cell, a list's range (`a0` … `a49`) spelled out."""
    names = re.findall(r"`([A-Za-z0-9]+)`", cell)
    if "…" not in cell:
        return names
    first, last, *rest = names
    stem = first.removesuffix("0")
    count = int(last.removeprefix(stem))
    return [f"{stem}{i}" for i in range(count + 1)] + rest


@pytest.mark.parametrize("service_id", ["dog-registration", "traffic-order"])
def test_the_sheet_shows_exactly_the_names_intake_takes(service_id: str) -> None:
    """Every name the designer's sheet offers is one intake resolves to a field, the aliases
    shown lead to the field of their row, and every name a form may send (all but the file
    details the bridge writes itself) is on the sheet."""
    service = parse_config(_raw_config(), SECRETS).services[service_id]
    schema_class = SCHEMAS.get(service.schema).schema_class
    table = name_table(schema_class)
    shown: list[str] = []
    for row in rows(service):
        for name in _names(row.name):
            assert service.field_path(name) == table.paths[name]
            shown.append(name)
        for alias in _names(row.aliases):
            assert service.field_path(alias) == row.path
    assert len(shown) == len(set(shown))
    assert set(shown) == {e.name for e in elements(schema_class) if e.kind != "file-detail"}
