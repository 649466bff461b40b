"""The README's shell blocks after the quick start, run as a newcomer would: as written, each in
a fresh shell in the checkout, against the service scripts/run started there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PROBLEM = "urn:formcycle-bridge:problem:"


def readme_blocks(readme: str, after: str = "## Send a first application") -> list[str]:
    """Every ```sh block of the README from the heading `after` on."""
    return re.findall(r"```sh\n(.*?)```", readme[readme.index(after) :], flags=re.S)


def run_readme_blocks(root: Path, home: Path) -> list[str]:
    """Run each block with bash (errors stop it) and only PATH and HOME in the environment:
    the ports and keys must come from var/local.env. Returns the outputs; raises naming the
    block that failed, answered with a problem, or had no answer for a POST."""
    outputs: list[str] = []
    for block in readme_blocks((root / "README.md").read_text(encoding="utf-8")):
        assert "8000" not in block, f"a hard-coded port in a README block:\n{block}"
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=root, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        report = f"{block}\n--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}"
        assert done.returncode == 0, report
        assert PROBLEM not in done.stdout, report
        posts = block.count("-X POST")
        assert done.stdout.count('"reference"') >= posts, report
        outputs.append(done.stdout)
    return outputs
