"""The FIT-Connect chaos run: token outage, Submission API 503, a reject, a key rotation and a
lagging event log while applications are delivered through the FIT-Connect stand-in.

Runs `python -m bench.chaos.fitconnect` (real gunicorn, two workers, the sweeper, Redis and the
stand-in; about a minute a store) on SQLite and, when configured, PostgreSQL. Select it with
`-m chaos`. The checks themselves are shown to catch a double accept, a silent failure and a
submission left unsubmitted.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.chaos.bodies import ORDER_OFFICE, TAX_OFFICE, plan
from bench.chaos.faults import Fault
from bench.chaos.fitconnect import KINDS, Decisions, Row, check
from tests.chaos_support import run_chaos


@pytest.mark.chaos
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_fit_connect_chaos_accepts_each_application_once(tmp_path: Path) -> None:
    """Every answered application ends accepted once by each of its destinations, or failed
    with the destination's reject as the reason; every fault kind injected."""
    runs = run_chaos(
        "bench.chaos.fitconnect", ["--cases", "30", "--seed", "21"], tmp_path / "fitchaos"
    )
    for run in runs:
        assert run["violations"] == []
        assert {f["kind"] for f in run["faults"]} == set(KINDS)
        assert run["figures"]["rejects"] >= 1
        assert run["figures"]["failed_after_reject"] >= 1


def _record(reference: str, decision: str) -> dict[str, Any]:
    """What the destination keeps of one decision on `reference` (hashes equal)."""
    return {
        "decision": decision,
        "hashes_ok": True,
        "metadata": {"additionalReferenceInfo": {"senderReference": reference}},
    }


def _case() -> tuple[list[Any], dict[int, str], list[Row], dict[str, list[dict[str, Any]]]]:
    """Two dog registrations for the tax office: one accepted and delivered, one rejected and
    failed with the reason."""
    planned = [p for p in plan(8, random.Random(1), "t") if p.offices == (TAX_OFFICE,)][:2]
    first, second = "US-2026-000001", "US-2026-000002"
    rows = [
        Row(first, TAX_OFFICE, "delivered", None, "s1"),
        Row(second, TAX_OFFICE, "failed", "abgelehnt: Technischer Fehler", "s2"),
    ]
    received = {"tax-dest": [_record(first, "accept"), _record(second, "reject")]}
    return planned, {planned[0].index: first, planned[1].index: second}, rows, received


DESTINATIONS = {TAX_OFFICE: "tax-dest", ORDER_OFFICE: "order-dest"}
ALL_FAULTS = [Fault(kind, "", 0.0) for kind in KINDS]
DONE = [
    {"submission_id": "s1", "status": "accepted"},
    {"submission_id": "s2", "status": "rejected"},
]


def test_the_checks_pass_a_clean_case_and_catch_a_double_accept() -> None:
    """An accept and a reject with its reason pass; an application accepted twice does not."""
    planned, answered, rows, received = _case()
    decided = Decisions.read(received, DESTINATIONS)
    ok, figures = check(planned, answered, rows, decided, DONE, ALL_FAULTS, [], True)
    assert ok == []
    assert (figures["delivered_and_accepted_once"], figures["failed_after_reject"]) == (1, 1)
    received["tax-dest"].append(received["tax-dest"][0])
    decided = Decisions.read(received, DESTINATIONS)
    twice, _ = check(planned, answered, rows, decided, DONE, ALL_FAULTS, [], True)
    assert any("accepted US-2026-000001 2 times" in v for v in twice)


def test_the_checks_catch_a_failure_without_reject_and_a_submission_left_behind() -> None:
    """Failed though the destination never rejected; a created submission never submitted;
    a fault kind never injected."""
    planned, answered, _, _ = _case()
    rows = [Row(answered[planned[0].index], TAX_OFFICE, "failed", "HTTP 404", "s1")]
    left = [{"submission_id": "s3", "status": "incomplete"}]
    found, _ = check(
        planned[:1],
        answered,
        rows,
        Decisions.read({}, DESTINATIONS),
        left,
        ALL_FAULTS[1:],
        [],
        True,
    )
    assert any("failed (HTTP 404), destination accepted 0x, rejected 0x" in v for v in found)
    assert "submission s3 left incomplete" in found
    assert f"fault {KINDS[0]} never injected" in found
    assert "no injected reject met a submission (the run proves less)" in found
