"""The form designer's commands: check-config refuses names that would mean two fields."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, bridge_cli


def test_check_config_refuses_an_alias_that_takes_a_default_name(
    environ: dict[str, str], tmp_path: Path
) -> None:
    """An alias equal to another field's default element name is an error, listed with the
    other problems of the file (exit code 2)."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    old = 'tfVorname = "keeper.first_name"'
    assert text.count(old) == 1
    text = text.replace(old, 'keeperLastName = "keeper.first_name"\ntfFarbe = "dog.farbe"')
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    result = bridge_cli({**environ, "BRIDGE_CONFIG": str(path)}, "check-config")
    assert result.returncode == 2
    assert (
        "services.dog-registration.aliases.keeperLastName: 'keeperLastName' is already the "
        "element name of keeper.last_name; choose another name for keeper.first_name"
    ) in result.stderr
    assert (
        "services.dog-registration.aliases.tfFarbe: 'dog.farbe' is not a field of "
        "dog-registration@1"
    ) in result.stderr
