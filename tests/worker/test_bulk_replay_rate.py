"""Bulk replay of 1,000 failed deliveries after the back offices recover, with real processes.

Two offices with 500 failed deliveries each; the back office (the demo one, on loopback)
stamps every arrival. The bulk replay is started and followed through the API and the CLI;
every delivery must arrive exactly once and no office may see more than the configured rate
in any one-second window.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import insert, select, update

from demo_backoffice import DemoBackOffice
from demo_backoffice.ledger import Ledger
from domain.accounts.accounts import Role
from harness.waiting import wait_for
from store.engine import Store
from store.models import Delivery, Submission
from tests.conftest import OFFICE_SIGNING_SECRET, MakeToken, bridge_cli
from tests.factories import dog, traffic
from tests.worker.conftest import Processes, submit

RATE = 50.0
PER_OFFICE = 500
OFFICES = ("usingen-steueramt", "neu-anspach-ordnungsamt")


class StampedLedger(Ledger):
    """The demo office's memory, with the moment each delivery arrived."""

    def __init__(self) -> None:
        """Start empty."""
        super().__init__()
        self.stamps: list[tuple[float, str, str]] = []
        self._stamp_lock = threading.Lock()

    def arrived(self, office: str, delivery_id: str) -> None:
        """Stamp, then record as usual."""
        with self._stamp_lock:
            self.stamps.append((time.monotonic(), office, delivery_id))
        super().arrived(office, delivery_id)


@pytest.fixture
def backoffice() -> Iterator[DemoBackOffice]:
    """The demo back office with a stamping ledger (replaces the shared fixture)."""
    office = DemoBackOffice(signing_secret=OFFICE_SIGNING_SECRET, hang_s=5)
    office.ledger = StampedLedger()
    office.start()
    yield office
    office.stop()


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The delivery test environment with the replay rate under test."""
    environ["BRIDGE_REPLAY_RATE_PER_OFFICE"] = str(RATE)
    return environ


def _clone_failed(store: Store, copies: int) -> None:
    """Every delivery failed for good, and each submission copied until an office has `copies`."""
    with store.session() as session:
        session.execute(update(Delivery).values(status="failed", attempts=8, last_error="HTTP 503"))
        session.execute(update(Submission).values(status="failed"))
        for s in list(session.scalars(select(Submission))):
            (d,) = s.deliveries
            rows = [
                {"reference_prefix": s.reference_prefix, "reference_year": s.reference_year,
                 "service": s.service, "schema": s.schema, "sender": s.sender,
                 "idempotency_key": None, "fingerprint": None,
                 "municipality_ags": s.municipality_ags, "status": "failed", "flags": s.flags,
                 "data": s.data, "received_at": s.received_at, "updated_at": s.updated_at}
                for _ in range(copies - 1)
            ]  # fmt: skip
            ids = session.scalars(insert(Submission).returning(Submission.id), rows).all()
            session.execute(
                insert(Delivery),
                [
                    {"id": uuid.uuid4().hex, "submission_id": sid, "office_id": d.office_id,
                     "task_area": d.task_area, "channel": d.channel, "status": "failed",
                     "attempts": 8, "next_attempt_at": None, "last_error": "HTTP 503",
                     "created_at": d.created_at, "updated_at": d.updated_at}
                    for sid in ids
                ],
            )  # fmt: skip


def _max_in_one_second(times: list[float]) -> int:
    """The most arrivals in any window [t, t + 1 s) starting at an arrival."""
    times = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def test_bulk_replay_of_1000_is_paced_and_delivers_each_once(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    redis_url: str,
    environ: dict[str, str],
    api_token: MakeToken,
) -> None:
    """1,000 replayed: each arrives once, never above RATE per second per office, progress shown."""
    submit(client, "dog-registration", dog())
    submit(client, "traffic-order", traffic())
    _clone_failed(store, PER_OFFICE)
    redis = Redis.from_url(redis_url)
    processes.idle_workers(redis)
    processes.sweeper()
    operator = {"Authorization": f"Bearer {api_token(Role.OPERATOR)}"}
    body = {"filter": {}, "reason": "Back offices wieder erreichbar"}
    dry = client.post("/api/v1/replays", json={**body, "dry_run": True}, headers=operator)
    assert dry.get_json()["count"] == 2 * PER_OFFICE
    started = time.monotonic()
    answer = client.post("/api/v1/replays", json=body, headers=operator)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    location = answer.headers["Location"]
    viewer = {"Authorization": f"Bearer {api_token(Role.VIEWER)}"}
    seen: list[int] = []

    def progressed() -> bool:
        time.sleep(0.2)
        job = client.get(location, headers=viewer).get_json()
        seen.append(job["processed"])
        return bool(job["status"] == "done")

    wait_for(lambda: client.get(location, headers=viewer).get_json()["processed"] >= 300,
             timeout=30, what="300 processed")  # fmt: skip
    mid = bridge_cli(environ, "replay-status", location.rsplit("/", 1)[1])
    assert mid.returncode == 0, mid.stderr
    assert "of 1000 sent" in mid.stdout
    wait_for(progressed, timeout=60, what="the bulk replay done")
    elapsed = time.monotonic() - started
    job = client.get(location, headers=viewer).get_json()
    assert (job["total"], job["processed"], job["delivered"], job["failed"]) == (
        1000,
        1000,
        1000,
        0,
    )
    assert seen == sorted(seen)
    assert any(0 < n < 1000 for n in seen)
    ledger = backoffice.ledger
    assert isinstance(ledger, StampedLedger)
    with store.read() as session:
        expected = {o: set(session.scalars(select(Delivery.id).where(Delivery.office_id == o)))
                    for o in OFFICES}  # fmt: skip
        assert set(session.scalars(select(Delivery.status))) == {"delivered"}
    rates = {}
    for office in OFFICES:
        ids = ledger.received_ids(office)
        assert len(ids) == PER_OFFICE
        assert set(ids) == expected[office]
        rates[office] = _max_in_one_second([t for t, o, _ in ledger.stamps if o == office])
    print(f"bulk replay of 1000: {elapsed:.1f} s, max per office in 1 s: {rates} (rate {RATE:g})")
    assert max(rates.values()) <= RATE, rates
    # 500 at RATE per office cannot be done in less than (500 - 1) / 25 s.
    assert elapsed >= (PER_OFFICE - 1) / RATE
    final = bridge_cli(environ, "replay-status", location.rsplit("/", 1)[1])
    assert "1000 of 1000 sent, 1000 delivered, 0 failed again (status done)" in final.stdout
