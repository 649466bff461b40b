"""The wake-mark protocol on a real Redis: one waiting job per office, by the job's dotted path."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from redis import Redis

from harness.ports import free_port
from tests.conftest import ROOT
from worker.queue import (
    QUEUED_MARK_TTL_S,
    delivery_queue,
    drain_started,
    wake_offices,
    wake_quietly,
)

OFFICE = "usingen-steueramt"


def test_a_burst_of_wake_ups_enqueues_one_job(redis_url: str) -> None:
    """While a drain job waits to start, waking the office again adds nothing."""
    redis = Redis.from_url(redis_url)
    assert [wake_offices(redis, [OFFICE]) for _ in range(3)] == [1, 0, 0]
    queue = delivery_queue(redis)
    [job] = queue.get_jobs()
    assert (job.id, job.func_name, job.args) == (
        f"drain-{OFFICE}-1",
        "worker.jobs.drain_office",
        [OFFICE],
    )
    # The mark expires, so a job lost with a crashed worker does not block wake-ups for good.
    [mark] = redis.keys("bridge:drain-queued:*")
    assert 0 < redis.ttl(mark) <= QUEUED_MARK_TTL_S


def test_a_started_job_lets_the_next_wake_up_enqueue(redis_url: str) -> None:
    """Once the waiting job has started, a new delivery needs (and gets) a new job."""
    redis = Redis.from_url(redis_url)
    wake_offices(redis, [OFFICE])
    drain_started(redis, OFFICE)
    assert wake_offices(redis, [OFFICE, "neu-anspach-ordnungsamt"]) == 2
    ids = sorted(job.id for job in delivery_queue(redis).get_jobs())
    assert ids == [
        "drain-neu-anspach-ordnungsamt-1",
        f"drain-{OFFICE}-1",
        f"drain-{OFFICE}-2",
    ]


def test_waking_does_not_load_the_job_code(redis_url: str) -> None:
    """The queue names the job by path: worker.queue does not import worker.jobs (no circle)."""
    code = (
        "import sys; from redis import Redis; from worker.queue import wake_offices; "
        f"wake_offices(Redis.from_url({redis_url!r}), ['{OFFICE}']); "
        "sys.exit(1 if 'worker.jobs' in sys.modules else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr or "waking an office imported worker.jobs"


def test_waking_quietly_wakes_each_office_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After an operator's action: each named office gets its job, repeats and all, no log."""
    redis = Redis.from_url(redis_url)
    log = logging.getLogger("tests.wake")
    with caplog.at_level("INFO", logger="tests.wake"):
        assert wake_quietly(redis, [OFFICE, "neu-anspach-ordnungsamt", OFFICE], log=log)
        assert wake_quietly(redis, [], log=log)
    ids = sorted(job.id for job in delivery_queue(redis).get_jobs())
    assert ids == ["drain-neu-anspach-ordnungsamt-1", f"drain-{OFFICE}-1"]
    assert [r.getMessage() for r in caplog.records if r.name == "tests.wake"] == []


def test_waking_quietly_survives_a_redis_that_is_not_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A closed port is no error: False, and `admin.wake_failed` on the caller's log if given."""
    away = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    log = logging.getLogger("tests.wake")
    with caplog.at_level("INFO", logger="tests.wake"):
        assert wake_quietly(away, [OFFICE], log=log) is False
        assert wake_quietly(away, [OFFICE]) is False
        # Nothing to wake asks nothing of Redis, so there is nothing to fail.
        assert wake_quietly(away, [], log=log) is True
    [record] = [r for r in caplog.records if r.name == "tests.wake"]
    assert record.getMessage() == "admin.wake_failed"
    assert record.levelno == logging.WARNING
    assert getattr(record, "bridge_fields", {}) == {"error": "ConnectionError"}
