"""check-config shows which version a pinned office takes and refuses pins it cannot serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, bridge_cli
from tests.domain.test_settings_config import _config_file

# With the newline before it: the routing file's commented FIT-Connect office has "# task_area".
TAX_OFFICE = '\ntask_area = "tax"\n'
PIN = '\ntask_area = "tax"\nschema_versions = { dog-registration = 1 }\n'


def test_check_config_names_the_older_version_an_office_takes(
    environ: dict[str, str], tmp_path: Path
) -> None:
    """Service on the test's @2, tax office on @1: its route says so; the others say nothing."""
    path = _config_file(
        tmp_path,
        ('schema = "dog-registration@1"', 'schema = "dog-registration@2"'),
        (TAX_OFFICE, PIN),
    )
    # The CLI run through tests/schema_versions.py, which registers @2 in that process first.
    result = subprocess.run(
        [sys.executable, "-m", "tests.schema_versions", "bridge", "check-config"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **environ, "BRIDGE_CONFIG": path},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hund anmelden (dog-registration, dog-registration@2, LeiKa 99102013104000)" in out
    assert "Neu-Anspach          tax -> Steueramt Usingen [http-json, dog-registration@1]" in out
    assert "public-order -> Ordnungsamt Neu-Anspach (when dangerous_dog)" in out
    # The pin is for the dog registration only: the traffic order's routes are unchanged.
    assert "Usingen              public-order -> Ordnungsamt Neu-Anspach [http-json]\n" in out


def test_check_config_refuses_pins_of_versions_that_do_not_exist(
    environ: dict[str, str], tmp_path: Path
) -> None:
    """The shipped release knows only @1: a pin to @2, to an unknown service or to 0 is named,
    every one in the same run, and the command fails."""
    path = _config_file(
        tmp_path,
        (TAX_OFFICE, '\ntask_area = "tax"\nschema_versions = { dog-registration = 2 }\n'),
        (
            'task_area = "public-order"\n',
            'task_area = "public-order"\nschema_versions = { cat-registration = 1 }\n',
        ),
        (
            'task_area = "treasury"           # payment notices (Zahlungseingang) of fees go here\n',
            'task_area = "treasury"\nschema_versions = { traffic-order = 0 }\n',
        ),
    )
    result = bridge_cli({**environ, "BRIDGE_CONFIG": path}, "check-config")
    assert result.returncode == 2
    problems = result.stderr
    assert (
        "offices.usingen-steueramt.schema_versions.dog-registration: "
        "unknown schema 'dog-registration@2' (versions: 1)" in problems
    )
    assert (
        "offices.neu-anspach-ordnungsamt.schema_versions.cat-registration: "
        "unknown service 'cat-registration'" in problems
    )
    assert (
        "offices.usingen-stadtkasse.value.schema_versions.traffic-order.value: "
        "Must be greater than or equal to 1." in problems
    )
