"""Two workers record the two deliveries of the same submissions at the same moment.

A dangerous dog goes to the tax office and to the public-order office: two drain jobs, two
workers, each recording its own delivery of the same submission. Whichever commits last must
see the other's delivery and leave the submission `delivered`, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, text

from harness.waiting import wait_for
from store.engine import Store
from store.models import DeliveryStatus, Submission, SubmissionStatus
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit
from worker.queue import wake_offices

OFFICES = ["usingen-steueramt", "neu-anspach-ordnungsamt"]
SUBMISSIONS = 30


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """One batch holds every delivery of an office: each worker records all in one transaction."""
    environ["BRIDGE_DELIVERY_BATCH"] = "100"
    return environ


def _lock_waiters(store: Store) -> int:
    """How many other sessions of this database wait for a row lock (PostgreSQL)."""
    with store.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(found)


@contextmanager
def _both_recordings_meet(store: Store) -> Iterator[None]:
    """On PostgreSQL, hold the submission rows until both workers are inside their recording.

    This only forces the interleaving a loaded machine produces by chance: both transactions
    are past their own delivery rows and about to derive the submission's status. SQLite
    serialises writers at BEGIN IMMEDIATE, so there the workers simply run side by side.
    """
    if store.engine.dialect.name != "postgresql":
        yield
        return
    with store.engine.connect() as gate:
        gate.execute(text("SELECT id FROM submissions FOR UPDATE"))
        yield
        wait_for(lambda: _lock_waiters(store) >= 2, timeout=30, what="both recordings waiting")
        gate.commit()


def test_sibling_deliveries_recorded_concurrently_leave_the_submission_delivered(
    client: FlaskClient, store: Store, processes: Processes, redis_url: str
) -> None:
    """Both offices drained in parallel: every submission ends delivered, none partially."""
    for _ in range(SUBMISSIONS):
        answer = submit(client, "dog-registration", dog({"dog.breed": "Rottweiler-Mischling"}))
        assert sorted(d["office"] for d in answer["deliveries"]) == sorted(OFFICES)
    redis = Redis.from_url(redis_url)
    # Both workers idle first, then both offices woken at once: the drains run side by side.
    processes.idle_workers(redis)
    with _both_recordings_meet(store):
        assert wake_offices(redis, OFFICES) == 2
    wait_for(
        lambda: all(d.status == DeliveryStatus.DELIVERED for d in deliveries(store)),
        timeout=60,
        what="every delivery",
    )
    assert len(deliveries(store)) == 2 * SUBMISSIONS
    with store.read() as session:
        statuses = list(session.scalars(select(Submission.status)))
    stuck = [s for s in statuses if s != SubmissionStatus.DELIVERED]
    assert stuck == [], f"{len(stuck)} of {SUBMISSIONS} submissions not delivered: {set(stuck)}"
