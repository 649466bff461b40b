"""The systemd units in deploy/systemd are valid for systemd and supervise as the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("bridge-web.service", "bridge-worker@.service", "bridge-sweeper.service")


def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts every unit without a warning (an unknown or misspelt
    option would be ignored by systemd, silently dropping e.g. a hardening setting)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    paths = []
    for unit in (*SERVICES, "bridge.target"):
        # The units expect the checkout in /opt/bridge; verify checks that the programs exist.
        text = (UNITS / unit).read_text(encoding="utf-8").replace("/opt/bridge", str(ROOT))
        path = tmp_path / unit.replace("@.", "@1.")
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    result = subprocess.run(
        [analyze, "verify", *paths], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", SERVICES)
def test_each_process_is_restarted_always_as_the_bridge_user(unit: str) -> None:
    """Every process restarts whatever ended it, without a start limit, runs as its own user
    with the shared environment file, on a read-only system."""
    lines = set((UNITS / unit).read_text(encoding="utf-8").splitlines())
    assert {
        "Restart=always",
        "StartLimitIntervalSec=0",
        "User=bridge",
        "EnvironmentFile=/etc/formcycle-bridge/bridge.env",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PartOf=bridge.target",
        "WantedBy=bridge.target",
    } <= lines


@pytest.mark.parametrize("unit", SERVICES)
def test_each_process_has_a_memory_and_task_ceiling(unit: str) -> None:
    """A leak or a flood of large bodies ends in a restart of that one process (MemoryMax),
    not in the kernel's OOM killer picking from the host; a thread or fork storm hits
    TasksMax. Both are hard limits with a value, each explained by a comment above it."""
    lines = (UNITS / unit).read_text(encoding="utf-8").splitlines()
    for option in ("MemoryMax=", "TasksMax="):
        [index] = [i for i, line in enumerate(lines) if line.startswith(option)]
        value = lines[index].removeprefix(option)
        assert value, lines[index]
        assert value != "infinity", lines[index]
        assert lines[index - 1].startswith("#"), f"{option} needs a comment saying why"


def test_the_install_steps_name_files_that_exist() -> None:
    """Every file of the checkout docs/install.md copies or runs (`/opt/bridge/...`) is in the
    repository, and the units read the environment file the steps write."""
    steps = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    # The venv is what the steps make, not a file of the checkout.
    named = {
        name
        for name in re.findall(r"/opt/bridge/([\w./@-]+\w)", steps)
        if not name.startswith(".venv")
    }
    assert {"requirements/runtime.txt", "deploy/systemd/bridge.env.example"} <= named
    missing = sorted(name for name in named if not (ROOT / name).exists())
    assert missing == []
    for unit in SERVICES:
        text = (UNITS / unit).read_text(encoding="utf-8")
        [env_file] = re.findall(r"^EnvironmentFile=(.+)$", text, re.MULTILINE)
        assert f"install -m 0600 /opt/bridge/deploy/systemd/bridge.env.example {env_file}" in steps
        assert f"--env-file {env_file}" in steps
