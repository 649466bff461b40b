"""The quick chaos profile: real processes, every fault kind once, the "nothing lost" invariants.

Runs `python -m bench.chaos --quick` (a few hundred submissions through two gunicorn hosts, two
RQ workers, the sweeper, a private Redis and two capture offices) on SQLite and, when
configured, on PostgreSQL. Select it with `-m chaos`, leave it out with `-m "not chaos"`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos.faults import KINDS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_quick_chaos_run_loses_nothing(tmp_path: Path) -> None:
    """Every answered submission reaches each of its offices once, whatever the faults."""
    postgres = os.environ.get("TEST_POSTGRES_URL")
    store = ["--store", "both", "--postgres-url", postgres] if postgres else ["--store", "sqlite"]
    output = tmp_path / "chaos"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.chaos",
            "--quick",
            "--seed",
            "9",
            *store,
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    summary = (
        output.with_suffix(".md").read_text(encoding="utf-8")
        if output.with_suffix(".md").exists()
        else ""
    )
    assert done.returncode == 0, summary or done.stderr[-3000:]
    runs = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))["runs"]
    assert [r["store"] for r in runs] == (["sqlite", "postgres"] if postgres else ["sqlite"])
    for run in runs:
        figures = run["figures"]
        assert figures["accepted"] == figures["planned"] == 300
        assert figures["delivered"] + figures.get("failed", 0) == figures["deliveries"] > 300
        assert set(run["faults"]) == set(KINDS)
        assert run["violations"] == []
