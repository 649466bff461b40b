"""Shell blocks of the docs, run as a newcomer would: as written, each in a fresh shell in a
checkout, against a running service (scripts/run for the README, gunicorn for the guides)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PROBLEM = "urn:formcycle-bridge:problem:"


def readme_blocks(readme: str, after: str = "## Send a first application") -> list[str]:
    """Every ```sh block of the README from the heading `after` on."""
    return re.findall(r"```sh\n(.*?)```", readme[readme.index(after) :], flags=re.S)


def run_block(block: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run one block with bash (errors stop it) and only PATH and HOME in the environment:
    the ports and keys must come from var/local.env. Fails on a hard-coded port."""
    assert "8000" not in block, f"a hard-coded port in a block:\n{block}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def report(block: str, done: subprocess.CompletedProcess[str]) -> str:
    """A block with what it printed, for an assertion's message."""
    return f"{block}\n--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}"


def run_readme_blocks(root: Path, home: Path) -> list[str]:
    """Run each README block with `run_block`. Returns the outputs; raises naming the block
    that failed, answered with a problem, or had no answer for a POST."""
    outputs: list[str] = []
    for block in readme_blocks((root / "README.md").read_text(encoding="utf-8")):
        done = run_block(block, root, home)
        assert done.returncode == 0, report(block, done)
        assert PROBLEM not in done.stdout, report(block, done)
        posts = block.count("-X POST")
        assert done.stdout.count('"reference"') >= posts, report(block, done)
        outputs.append(done.stdout)
    return outputs
