"""The quick chaos profile: real processes, every fault kind once, the "nothing lost" invariants.

Runs `python -m bench.chaos --quick` (a few hundred submissions through two gunicorn hosts, two
RQ workers, the sweeper, a private Redis and two capture offices) on SQLite and, when
configured, on PostgreSQL. Select it with `-m chaos`, leave it out with `-m "not chaos"`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.chaos.faults import KINDS
from tests.chaos_support import run_chaos

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_quick_chaos_run_loses_nothing(tmp_path: Path) -> None:
    """Every answered submission reaches each of its offices once, whatever the faults."""
    runs = run_chaos("bench.chaos", ["--quick", "--seed", "9"], tmp_path / "chaos")
    for run in runs:
        figures = run["figures"]
        assert figures["accepted"] == figures["planned"] == 300
        assert figures["delivered"] + figures.get("failed", 0) == figures["deliveries"] > 300
        assert set(run["faults"]) == set(KINDS)
        assert run["violations"] == []
