"""Queue truth: a drain job that crashed in RQ is recorded on the delivery and leaves RQ's registry."""

from __future__ import annotations

import time

from flask.testing import FlaskClient
from redis import Redis
from rq.registry import FailedJobRegistry
from sqlalchemy import select, update

from harness.waiting import wait_for
from store.engine import Store
from store.models import Delivery, Event, Submission
from tests.factories import dog
from tests.worker.conftest import Processes, submit
from worker.queue import delivery_queue
from worker.queue_truth import reconcile_failed_jobs


def test_crashed_job_becomes_the_deliverys_last_error(
    client: FlaskClient, store: Store, processes: Processes, redis_url: str
) -> None:
    """A job that crashes mid-drain: its RQ entry goes, the database says what happened."""
    answer = submit(client, "dog-registration", dog())
    with store.session() as session:
        # Undecryptable data: building the envelope raises inside the job, after the claim.
        session.execute(update(Submission).values(data=b"not a fernet token"))
    redis = Redis.from_url(redis_url)
    registry = FailedJobRegistry(queue=delivery_queue(redis))
    burst = processes.start("worker", "work", "--burst")
    burst.wait(30)
    assert registry.count == 1
    # The crashed job's lease runs out (1 s timeouts + 1 s margin in these tests).
    with store.read() as session:
        lease = session.scalars(select(Delivery.lease_until)).one()
    assert lease is not None
    wait_for(lambda: time.time() > lease.timestamp() + 0.2, timeout=10, what="the lease to lapse")
    assert reconcile_failed_jobs(store, redis) == 1
    assert registry.count == 0
    with store.read() as session:
        delivery = session.scalars(select(Delivery)).one()
        crash = session.scalars(select(Event).where(Event.kind == "delivery.job_crashed")).one()
    assert delivery.status == "pending"
    assert delivery.lease_until is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("Verarbeitung abgebrochen (Job drain-usingen-steueramt-")
    assert "DecryptionError" in delivery.last_error
    assert crash.delivery_id == delivery.id
    assert answer["reference"]
    # Nothing left to reconcile: a second round does nothing.
    assert reconcile_failed_jobs(store, redis) == 0
