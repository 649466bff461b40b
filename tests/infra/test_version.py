"""The version: one constant, the same as pyproject's, printed by `python -m bridge --version`."""

from __future__ import annotations

import tomllib

import pytest

from infra.version import VERSION, newer_than_this, parse
from tests.conftest import ROOT, bridge_cli


def test_pyproject_and_the_constant_agree() -> None:
    """The package metadata and the code name the same release."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == VERSION


def test_the_changelog_has_a_section_for_this_version() -> None:
    """A release is not made without saying what changed (Keep a Changelog)."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"\n## [{VERSION}]" in changelog


def test_cli_prints_the_version() -> None:
    """`python -m bridge --version` needs no settings and prints the version alone."""
    result = bridge_cli({}, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"formcycle-bridge {VERSION}\n"


def test_versions_compare_as_numbers() -> None:
    """0.10.0 is later than 0.9.0; a malformed version is refused, not guessed."""
    assert parse("0.10.0") > parse("0.9.0")
    assert newer_than_this("99.0.0")
    assert not newer_than_this(VERSION)
    with pytest.raises(ValueError, match="not a version"):
        parse("1.2")
    with pytest.raises(ValueError, match="not a version"):
        parse("1.2.x")
