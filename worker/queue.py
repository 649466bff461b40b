"""The delivery queue and its wake-mark protocol: an RQ job per office drains its due deliveries.

Jobs carry only an office id; the database says what is due and leases each delivery to one
job at a time. Waking an office enqueues a drain job unless one is already waiting to start,
so a burst of submissions costs one job, and a new delivery is never left without a job: the
waiting job, once it starts, will see it. The sweeper wakes offices again after any crash.

The whole protocol lives here: the waiting mark (SET NX with a TTL), its removal when the job
starts, and the per-office sequence that names the jobs. The job is enqueued by its dotted
path, so this module does not import the job code (and the job code may import this one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

from infra.logs import log_event

QUEUE_NAME = "deliveries"
DRAIN_JOB = "worker.jobs.drain_office"
# Every job function the bridge enqueues, by the dotted name RQ stores. A worker runs no other
# (worker/runner.py): whoever can write to Redis could otherwise name any importable function.
JOBS = frozenset({DRAIN_JOB})
# A drain job ends when nothing is due; a long one is a back office that is slow, not a hang.
JOB_TIMEOUT_S = 900
# A waiting mark older than this is presumed lost (e.g. Redis flushed, worker killed).
QUEUED_MARK_TTL_S = 60


def delivery_queue(redis: Redis) -> Queue:
    """The queue the delivery workers listen on (JSON-serialised jobs)."""
    return Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)


def _queued_key(office_id: str) -> str:
    """The Redis key saying a drain job for this office is waiting to start."""
    return f"bridge:drain-queued:{office_id}"


def _sequence_key(office_id: str) -> str:
    """The Redis counter of an office's wake-ups (the number in its job ids)."""
    return f"bridge:drain-seq:{office_id}"


def wake_offices(redis: Redis, office_ids: Iterable[str]) -> int:
    """Make sure a drain job is waiting for each office; returns how many jobs were enqueued."""
    offices = list(office_ids)
    if not offices:
        return 0
    # One round trip for the marks: under load most offices already have a job waiting, and
    # the web process's waker asks for several offices at once (bridge/waker.py).
    marks = redis.pipeline(transaction=False)
    for office_id in offices:
        marks.set(_queued_key(office_id), "1", nx=True, ex=QUEUED_MARK_TTL_S)
    marked = marks.execute()
    queue = delivery_queue(redis)
    enqueued = 0
    for office_id, newly_marked in zip(offices, marked, strict=True):
        if not newly_marked:
            continue
        # Deterministic per office and wake: readable in RQ's registries, never reused.
        wake = redis.incr(_sequence_key(office_id))
        queue.enqueue_call(
            DRAIN_JOB,
            args=(office_id,),
            job_id=f"drain-{office_id}-{wake}",
            timeout=JOB_TIMEOUT_S,
            result_ttl=60,
            failure_ttl=7 * 24 * 3600,
            description=f"deliver due cases to office {office_id}",
        )
        enqueued += 1
    return enqueued


def wake_quietly(
    redis: Redis, office_ids: Iterable[str], *, log: logging.Logger | None = None
) -> bool:
    """Wake these offices after an operator's committed action; False when Redis is away.

    The admin API, the admin page and the command line call this after a replay, cancel or
    re-route. Their change is committed and its deliveries are due in the database, so an
    outage is no error to them: the sweeper wakes due offices anyway. With `log`, an outage
    is logged there as `admin.wake_failed`; the command line tells the operator instead.
    """
    offices = sorted(set(office_ids))
    if not offices:
        return True
    try:
        wake_offices(redis, offices)
    except RedisError as exc:
        if log is not None:
            log_event(log, "admin.wake_failed", level=logging.WARNING, error=type(exc).__name__)
        return False
    return True


def drain_started(redis: Redis, office_id: str) -> None:
    """A drain job of this office has started: the next wake-up must enqueue a new job.

    Called before the job looks for due deliveries, so a delivery committed after that look
    finds no mark and its wake-up enqueues the job that will see it.
    """
    redis.delete(_queued_key(office_id))
