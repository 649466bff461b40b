"""The payment chaos run: every payment fault, with the money invariants, on each store.

Runs `python -m bench.chaos.payments` (real gunicorn, worker, sweeper, Redis, a capture office
and the provider simulator; about two minutes a store). Select it with `-m chaos`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos.payments import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_payment_chaos_pays_every_transaction_once(tmp_path: Path) -> None:
    """Every paid transaction gives one notice and its case is delivered once; nobody waits
    for the pay page or the confirmation longer than the provider was down plus a step."""
    postgres = os.environ.get("TEST_POSTGRES_URL")
    store = ["--store", "both", "--postgres-url", postgres] if postgres else ["--store", "sqlite"]
    output = tmp_path / "paychaos"
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos.payments", "--cases", "32", "--seed", "18",
         *store, "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    runs = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))["runs"]
    assert [r["store"] for r in runs] == (["sqlite", "postgres"] if postgres else ["sqlite"])
    for run in runs:
        assert run["violations"] == []
        assert {c["scenario"] for c in run["citizens"]} == set(SCENARIOS)
        assert all(c["transaction"] for c in run["citizens"])
