"""The delivery state machine's rules: derived submission status and the retry schedule."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from domain.delivery.deliveries import derive_status, next_attempt
from tests.conftest import ROOT

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
SCHEDULE = (5.0, 300.0, 1800.0)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "received"),
        (["pending"], "routed"),
        (["pending", "pending"], "routed"),
        (["delivered"], "delivered"),
        (["delivered", "pending"], "partially_delivered"),
        (["delivered", "failed"], "partially_delivered"),
        (["failed", "pending"], "routed"),
        (["failed"], "failed"),
        (["failed", "failed"], "failed"),
        (["cancelled"], "cancelled"),
        (["delivered", "cancelled"], "delivered"),
        (["failed", "cancelled"], "failed"),
    ],
)
def test_submission_status_follows_deliveries(statuses: list[str], expected: str) -> None:
    """A submission is delivered only when every live delivery is."""
    assert derive_status(statuses) == expected


def test_schedule_without_jitter_is_exact() -> None:
    """Attempt n waits the n-th interval; after the last one the delivery is failed (None)."""
    waits = [next_attempt(n, SCHEDULE, 0.0, NOW, None) for n in (1, 2, 3, 4)]
    assert waits == [
        NOW + dt.timedelta(seconds=5),
        NOW + dt.timedelta(seconds=300),
        NOW + dt.timedelta(seconds=1800),
        None,
    ]


def test_jitter_stays_within_bounds() -> None:
    """±20 % jitter spreads retries but never beyond the bounds."""
    seen = {next_attempt(2, SCHEDULE, 0.2, NOW, None) for _ in range(200)}
    assert len(seen) > 100
    for moment in seen:
        assert moment is not None
        assert 240 <= (moment - NOW).total_seconds() <= 360


def test_retry_after_overrides_schedule_and_is_capped() -> None:
    """Retry-After wins over the schedule, capped at a day; an exhausted schedule still fails."""
    assert next_attempt(1, SCHEDULE, 0.2, NOW, 120.0) == NOW + dt.timedelta(seconds=120)
    assert next_attempt(1, SCHEDULE, 0.0, NOW, 10 * 86400.0) == NOW + dt.timedelta(days=1)
    assert next_attempt(4, SCHEDULE, 0.0, NOW, 1.0) is None


def test_worker_runs_without_flask() -> None:
    """The worker's modules do not import Flask (dependencies point one way)."""
    code = (
        "import sys, worker.jobs, worker.sweeper, worker.queue, integrations.checks; "
        "sys.exit(1 if 'flask' in sys.modules else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr or "worker imported flask"
