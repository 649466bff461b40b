"""A backlog of one office is shared by several workers; each delivery is still sent once."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import Worker
from rq.registry import FinishedJobRegistry

from demo_backoffice import DemoBackOffice
from domain.store import DeliveryStatus, Store
from tests.delivery.conftest import Processes, deliveries, submit, wait_for
from tests.factories import dog
from worker.queue import delivery_queue, wake_offices


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """Small batches, so that forty deliveries are a long backlog (twenty batches)."""
    environ["BRIDGE_DELIVERY_BATCH"] = "2"
    return environ


def test_two_workers_share_a_backlog(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    redis_url: str,
) -> None:
    """A drain job that finds a full batch wakes a second job, which the idle worker takes."""
    ids = [submit(client, "dog-registration", dog())["deliveries"][0]["id"] for _ in range(40)]
    redis = Redis.from_url(redis_url)
    # Start from one wake-up with both workers idle: drop the job the submissions queued.
    redis.flushdb()
    processes.worker()
    processes.worker()
    wait_for(
        lambda: [w.get_state() for w in Worker.all(connection=redis)] == ["idle", "idle"],
        what="two idle workers",
    )
    assert wake_offices(redis, ["usingen-steueramt"]) == 1
    wait_for(
        lambda: all(d.status == DeliveryStatus.DELIVERED for d in deliveries(store)),
        what="the backlog",
    )
    assert sorted(c["delivery_id"] for c in backoffice.cases("usingen-steueramt")) == sorted(ids)
    assert sorted(backoffice.received_ids("usingen-steueramt")) == sorted(ids)
    queue = delivery_queue(redis)
    finished = FinishedJobRegistry(queue=queue).get_job_ids()
    jobs = [queue.fetch_job(job_id) for job_id in finished]
    assert len({job.worker_name for job in jobs if job is not None}) == 2
