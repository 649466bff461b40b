"""The wake-mark protocol on a real Redis: one waiting job per office, by the job's dotted path."""

from __future__ import annotations

import subprocess
import sys

from redis import Redis

from tests.conftest import ROOT
from worker.queue import QUEUED_MARK_TTL_S, delivery_queue, drain_started, wake_offices

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
