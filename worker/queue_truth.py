"""Reconciles RQ's failed-job registry into the database, so the database is the one failure list.

A step of the sweeper: each crashed drain job is recorded (`domain.delivery.queue_crashes`) and then
removed from RQ. Recording first and removing after means a crash between the two records
the job twice at worst, never not at all.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from domain.delivery.queue_crashes import record_crash
from infra.logs import log_event
from store.engine import Store
from worker.queue import DRAIN_JOB, delivery_queue

log = logging.getLogger(__name__)
MAX_PER_ROUND = 100


def error_type(job: Job) -> str:
    """The crashed job's exception type, e.g. ``ValueError`` (never its message)."""
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or job.exc_info or ""
    last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "")
    name = last.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    return name if name.isidentifier() else "unknown"


def reconcile_failed_jobs(store: Store, redis: Redis) -> int:
    """Record and remove up to MAX_PER_ROUND crashed drain jobs; returns how many."""
    queue = delivery_queue(redis)
    registry = FailedJobRegistry(queue=queue)
    done = 0
    for job_id in registry.get_job_ids(0, MAX_PER_ROUND - 1):
        try:
            job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        except NoSuchJobError:
            registry.remove(job_id)
            continue
        if job.func_name == DRAIN_JOB and job.args:
            office_id = str(job.args[0])
            orphans = record_crash(store, office_id, job_id, error_type(job))
            log_event(
                log,
                "queue.job_crashed",
                level=logging.WARNING,
                office=office_id,
                job=job_id,
                deliveries=orphans,
            )
        registry.remove(job, delete_job=True)
        done += 1
    return done
