"""Fault tests: whatever fails on the way, each delivery ends delivered (or failed) and the
office sees each delivery id once after dropping duplicates."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event
from tests.conftest import ROOT
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit

OFFICE = "usingen-steueramt"


def _events(store: Store, delivery_id: str) -> list[Event]:
    with store.read() as session:
        return list(
            session.scalars(
                select(Event).where(Event.delivery_id == delivery_id).order_by(Event.id)
            )
        )


def _status(store: Store) -> str:
    [delivery] = deliveries(store)
    return delivery.status


def _one_case(backoffice: DemoBackOffice, delivery_id: str) -> None:
    """The office filed exactly one case and saw no other delivery id."""
    assert [c["delivery_id"] for c in backoffice.cases(OFFICE)] == [delivery_id]
    assert set(backoffice.received_ids(OFFICE)) == {delivery_id}


def test_worker_killed_mid_delivery(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """SIGKILL while the office holds the request: the lease lapses and another worker delivers."""
    backoffice.set_fault(OFFICE, "hang", count=1)
    victim = processes.worker()
    processes.sweeper()
    answer = submit(client, "dog-registration", dog())
    delivery_id = answer["deliveries"][0]["id"]
    wait_for(
        lambda: ("POST", f"/cases/{OFFICE}") in backoffice.requests(),
        timeout=10,
        what="the request to reach the office",
    )
    processes.kill(victim)
    [in_flight] = deliveries(store)
    assert in_flight.status == DeliveryStatus.PENDING
    assert in_flight.lease_until is not None
    processes.worker()
    wait_for(lambda: _status(store) == DeliveryStatus.DELIVERED, what="redelivery")
    _one_case(backoffice, delivery_id)
    [delivery] = deliveries(store)
    # The killed attempt could not be recorded; the one that succeeded is.
    assert delivery.attempts == 1
    assert [e.kind for e in _events(store, delivery_id)] == [
        "delivery.routed",
        "delivery.delivered",
    ]


def test_redis_flushed_after_commit(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    redis_url: str,
) -> None:
    """The queued job is lost with Redis' data; the sweeper finds the due delivery again."""
    answer = submit(client, "dog-registration", dog())
    redis = Redis.from_url(redis_url)
    assert redis.llen("rq:queue:deliveries") == 1
    redis.flushdb()
    processes.worker()
    processes.sweeper()
    wait_for(lambda: _status(store) == DeliveryStatus.DELIVERED, what="delivery after the flush")
    _one_case(backoffice, answer["deliveries"][0]["id"])


def test_office_refuses_fails_hangs_then_recovers(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """Refused connection, 500, a hang past the timeout: retried on schedule, then delivered."""
    processes.worker()
    processes.sweeper()
    backoffice.set_fault(OFFICE, "refuse", count=1)
    answer = submit(client, "dog-registration", dog())
    delivery_id = answer["deliveries"][0]["id"]
    wait_for(lambda: deliveries(store)[0].attempts >= 1, what="the first attempt")
    backoffice.set_fault(OFFICE, "status", count=1, status=500)
    wait_for(lambda: deliveries(store)[0].attempts >= 2, what="the second attempt")
    backoffice.set_fault(OFFICE, "hang", count=1)
    wait_for(lambda: _status(store) == DeliveryStatus.DELIVERED, timeout=30, what="recovery")
    [delivery] = deliveries(store)
    assert delivery.attempts == 4
    assert delivery.last_error is None
    events = [e for e in _events(store, delivery_id) if e.kind != "delivery.routed"]
    assert [e.kind for e in events] == ["delivery.retry_scheduled"] * 3 + ["delivery.delivered"]
    assert [e.detail["status_code"] for e in events] == [None, 500, None, 201]
    assert all("duration_ms" in e.detail for e in events)
    _one_case(backoffice, delivery_id)


def test_permanent_error_fails_at_once_and_replay_delivers(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    environ: dict[str, str],
) -> None:
    """A 400 goes straight to failed (no retries); a CLI replay resets it and delivers."""
    backoffice.set_fault(OFFICE, "status", status=400)
    processes.worker()
    processes.sweeper()
    answer = submit(client, "dog-registration", dog())
    delivery_id = answer["deliveries"][0]["id"]
    wait_for(lambda: _status(store) == DeliveryStatus.FAILED, what="the permanent failure")
    # Five retry intervals later nothing has been tried again.
    time.sleep(1.5)
    [delivery] = deliveries(store)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 400)
    assert backoffice.cases(OFFICE) == []
    failed = _events(store, delivery_id)[-1]
    assert (failed.kind, failed.detail["permanent"]) == ("delivery.failed", True)

    backoffice.set_fault(OFFICE, "ok")
    env = {**processes.env}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "replay", "--delivery", delivery_id, "--by", "erika",
         "--reason", "Amt hat Schnittstelle repariert"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"replayed {delivery_id}" in result.stdout
    wait_for(lambda: _status(store) == DeliveryStatus.DELIVERED, what="the replayed delivery")
    kinds = [(e.kind, e.actor) for e in _events(store, delivery_id)]
    assert ("delivery.replayed", "cli:erika") in kinds
    replayed = next(e for e in _events(store, delivery_id) if e.kind == "delivery.replayed")
    assert replayed.detail["reason"] == "Amt hat Schnittstelle repariert"
    assert replayed.detail["previous_attempts"] == 1
    [delivery] = deliveries(store)
    assert delivery.office_id == OFFICE
    _one_case(backoffice, delivery_id)


def test_replay_refuses_what_is_not_failed(
    client: FlaskClient, store: Store, processes: Processes
) -> None:
    """Replaying a pending delivery changes nothing and says why."""
    answer = submit(client, "dog-registration", dog())
    delivery_id = answer["deliveries"][0]["id"]
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "replay", "--delivery", delivery_id, "--by", "erika"],
        env=processes.env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "only failed ones are replayed" in result.stderr
    assert [e.kind for e in _events(store, delivery_id)] == ["delivery.routed"]


def test_retry_after_is_respected(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """429 with Retry-After: 2 waits two seconds, not the 0.3 s of the schedule."""
    backoffice.set_fault(OFFICE, "429", count=1, retry_after=2)
    processes.worker()
    processes.sweeper()
    answer = submit(client, "dog-registration", dog())
    delivery_id = answer["deliveries"][0]["id"]
    wait_for(lambda: _status(store) == DeliveryStatus.DELIVERED, what="delivery after 429")
    events = {e.kind: e for e in _events(store, delivery_id)}
    retry = events["delivery.retry_scheduled"]
    assert retry.detail["status_code"] == 429
    planned = dt.datetime.fromisoformat(retry.detail["next_attempt_at"])
    assert planned - retry.at >= dt.timedelta(seconds=1.99)
    assert events["delivery.delivered"].at >= planned
    _one_case(backoffice, delivery_id)


@pytest.mark.parametrize("status", [404, 410, 422])
def test_other_permanent_statuses(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    status: int,
) -> None:
    """Every 4xx but 408 and 429 is permanent."""
    backoffice.set_fault(OFFICE, "status", status=status)
    processes.worker()
    submit(client, "dog-registration", dog())
    wait_for(lambda: _status(store) == DeliveryStatus.FAILED, what="the failure")
    with store.read() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert (delivery.attempts, delivery.last_status_code) == (1, status)


def test_redirect_fails_at_once_with_the_location(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """A 308 is not retried for a day: one attempt, failed, the target in the dead-letter list."""
    backoffice.set_fault(OFFICE, "status", status=308)
    processes.worker()
    submit(client, "dog-registration", dog())
    wait_for(lambda: _status(store) == DeliveryStatus.FAILED, what="the failure")
    [delivery] = deliveries(store)
    assert (delivery.attempts, delivery.last_status_code) == (1, 308)
    assert delivery.last_error is not None
    assert f"{backoffice.url}/_moved/{OFFICE}" in delivery.last_error


def test_a_slow_batch_never_outlives_its_lease(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """Six hanging attempts in one batch take longer than one lease (2 s timeout + 1 s margin).

    Whatever the worker does not attempt within its lease it gives back, so no other worker
    takes a delivery that is still in flight: every request the office saw is a recorded
    attempt, and each case is filed once.
    """
    processes.env["BRIDGE_DELIVERY_BATCH"] = "6"
    ids = [submit(client, "dog-registration", dog())["deliveries"][0]["id"] for _ in range(6)]
    backoffice.set_fault(OFFICE, "hang", count=6)
    processes.worker()
    processes.worker()
    processes.sweeper()
    wait_for(
        lambda: all(d.status == DeliveryStatus.DELIVERED for d in deliveries(store)),
        timeout=60,
        what="every delivery",
    )
    recorded = sum(d.attempts for d in deliveries(store))
    assert len(backoffice.received_ids(OFFICE)) == recorded
    assert sorted(c["delivery_id"] for c in backoffice.cases(OFFICE)) == sorted(ids)
