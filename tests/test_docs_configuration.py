"""docs/configuration.md names every setting the code reads, so the page cannot drift.

The lists come from the code itself: the data keys of the environment's marshmallow schema,
the fields of the routing file's schemas, and the options schema of every registered channel
and payment provider plugin. A new variable or option without its line here fails.
"""

from __future__ import annotations

import re

import pytest
from marshmallow import Schema

from domain import config as routing
from domain.settings import _EnvSchema
from integrations.channels import channels
from integrations.payment_providers import providers
from tests.conftest import ROOT

PAGE = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The text under the first heading containing `heading`, up to the next one as high."""
    lines = PAGE.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and heading in line:
            level = len(line) - len(line.lstrip("#"))
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if lines[j].startswith("#")
                    and len(lines[j]) - len(lines[j].lstrip("#")) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[i:end])
    raise AssertionError(f"docs/configuration.md has no heading with {heading!r}")


def undocumented(names: set[str], text: str) -> list[str]:
    """The names that do not stand in `text` as code (`name`)."""
    return sorted(n for n in names if f"`{n}`" not in text)


def test_every_environment_variable_is_documented() -> None:
    """Each data_key of the settings schema has its row under Environment."""
    keys = {f.data_key or name for name, f in _EnvSchema().fields.items()}
    assert "BRIDGE_SIGNATURE_TOLERANCE_S" in keys  # the walk finds what the issue missed
    assert undocumented(keys, section("## Environment")) == []


ROUTING_TABLES: list[tuple[str, list[type[Schema]]]] = [
    ("`[municipalities.<id>]`", [routing._MunicipalitySchema]),
    ("`[offices.<id>]`", [routing._OfficeSchema]),
    (
        "`[services.<id>]`",
        [routing._ServiceSchema, routing._FeeSchema, routing._ConditionalSchema],
    ),
    ("`[senders.<id>]`", [routing._SenderSchema]),
    ("`[payment_providers.<id>]`", [routing._PaymentProviderSchema]),
]


@pytest.mark.parametrize(("heading", "schemas"), ROUTING_TABLES, ids=lambda v: str(v)[:30])
def test_every_routing_option_is_documented(heading: str, schemas: list[type[Schema]]) -> None:
    """Each option of each table of the routing file stands in its section."""
    names = {name for schema in schemas for name in schema().fields}
    assert undocumented(names, section(heading)) == []


def test_every_routing_table_has_a_section() -> None:
    """A new top-level table of the routing file gets a section of its own."""
    tables = set(routing._ConfigSchema().fields)
    assert sorted(t for t in tables if f"`[{t}." not in PAGE) == []


@pytest.mark.parametrize("name", sorted(channels))
def test_every_channel_option_is_documented(name: str) -> None:
    """Each registered channel has a section naming each of its options."""
    schema = channels[name].options_schema
    assert undocumented(set(schema().fields), section(f"Channel `{name}`")) == []


@pytest.mark.parametrize("name", sorted(providers))
def test_every_payment_plugin_option_is_documented(name: str) -> None:
    """Each registered payment provider plugin has a section naming each of its options."""
    schema = providers[name].options_schema
    assert undocumented(set(schema().fields), section(f"Plugin `{name}`")) == []


def test_the_defaults_on_the_page_are_the_codes() -> None:
    """Where the page gives a number as an environment variable's default, it is the code's."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([0-9.]+)[ |]", section("## Environment"), re.M)
    assert rows
    fields = {f.data_key: f for f in _EnvSchema().fields.values()}
    for key, default in rows:
        assert float(fields[key].load_default) == float(default), key
