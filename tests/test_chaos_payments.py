"""The payment chaos run: every payment fault, with the money invariants, on each store.

Runs `python -m bench.chaos.payments` (real gunicorn, worker, sweeper, Redis, a capture office
and the provider simulator; about two minutes a store). Select it with `-m chaos`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.chaos.payments import SCENARIOS
from tests.chaos_support import run_chaos

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_payment_chaos_pays_every_transaction_once(tmp_path: Path) -> None:
    """Every paid transaction gives one notice and its case is delivered once; nobody waits
    for the pay page or the confirmation longer than the provider was down plus a step."""
    runs = run_chaos(
        "bench.chaos.payments", ["--cases", "32", "--seed", "18"], tmp_path / "paychaos"
    )
    for run in runs:
        assert run["violations"] == []
        assert {c["scenario"] for c in run["citizens"]} == set(SCENARIOS)
        assert all(c["transaction"] for c in run["citizens"])
