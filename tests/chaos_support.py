"""A chaos profile of bench.chaos run as the tests run it: a subprocess over each store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.conftest import ROOT


def run_chaos(module: str, args: Sequence[str], output: Path) -> list[dict[str, Any]]:
    """Run `python -m <module> <args>` on SQLite, and PostgreSQL when configured; assert it
    exited 0 and ran each store once; return its runs (the JSON written next to `output`)."""
    postgres = os.environ.get("TEST_POSTGRES_URL")
    store = ["--store", "both", "--postgres-url", postgres] if postgres else ["--store", "sqlite"]
    done = subprocess.run(
        [sys.executable, "-m", module, *args, *store, "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    summary = output.with_suffix(".md")
    assert done.returncode == 0, (
        (summary.read_text(encoding="utf-8") if summary.exists() else "")
        + done.stdout[-4000:]
        + done.stderr[-2000:]
    )
    runs: list[dict[str, Any]] = json.loads(
        output.with_suffix(".json").read_text(encoding="utf-8")
    )["runs"]
    assert [r["store"] for r in runs] == (["sqlite", "postgres"] if postgres else ["sqlite"])
    return runs
