"""Fixtures for end-to-end delivery: a real back office, real worker and sweeper processes."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import Worker
from sqlalchemy import select

import harness.processes
from demo_backoffice import DemoBackOffice
from demo_backoffice.ledger import Ledger
from harness.redis_servers import RedisServer, redis_binary
from harness.waiting import wait_for
from store.engine import Store
from store.models import Delivery, DeliveryStatus
from tests.conftest import OFFICE_SIGNING_SECRET, ROOT

SHIPPED_CONFIG = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
FAST = {
    "BRIDGE_RETRY_SCHEDULE": "0.3s,0.3s,0.3s,0.3s,0.3s",
    "BRIDGE_RETRY_JITTER": "0",
    "BRIDGE_SWEEP_INTERVAL_S": "0.2",
    "BRIDGE_LEASE_MARGIN_S": "1",
    "BRIDGE_LOG_FORMAT": "json",
}


def routing_config(backoffice_url: str, extra: str = "") -> str:
    """The shipped configuration, pointed at a test back office with short timeouts."""
    text = SHIPPED_CONFIG.replace("http://127.0.0.1:8090", backoffice_url)
    text = text.replace(
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING" }',
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING", connect_timeout_s = 1, '
        "read_timeout_s = 1 }",
    )
    # Delivery tests are not about the fee: the traffic order goes out at once there (the fee
    # is still announced and its payment open). tests/payments runs the shipped fee.
    text = text.replace("before_delivery = true", "before_delivery = false")
    return text + "\n" + extra


def replace_office(text: str, office: str, block: str) -> str:
    """The routing configuration `text` with the `[offices.<office>]` table replaced by `block`."""
    start = text.index(f"[offices.{office}]")
    end = text.index("\n\n", start)
    return text[:start] + block.strip() + text[end:]


@pytest.fixture
def backoffice() -> Iterator[DemoBackOffice]:
    """A demo back office on free loopback ports, checking our signatures."""
    office = DemoBackOffice(signing_secret=OFFICE_SIGNING_SECRET, hang_s=5).start()
    yield office
    office.stop()


@pytest.fixture
def config_extra() -> str:
    """TOML appended to the routing configuration (tests override this fixture)."""
    return ""


@pytest.fixture
def environ(
    environ: dict[str, str], backoffice: DemoBackOffice, tmp_path: Path, config_extra: str
) -> dict[str, str]:
    """The test environment with a routing configuration pointing at the demo back office."""
    path = tmp_path / "routing.toml"
    path.write_text(routing_config(backoffice.url, config_extra), encoding="utf-8")
    environ.update(FAST, BRIDGE_CONFIG=str(path))
    return environ


class Processes(harness.processes.Processes):
    """Worker and sweeper processes started for a test, stopped at its end."""

    def __init__(self, environ: dict[str, str], log_dir: Path) -> None:
        """Every process gets our environment with the test's on top (`env` may change)."""
        super().__init__(log_dir, {**os.environ, **environ})

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start `python -m <args>` (e.g. "worker", "work")."""
        return self.python("-".join(args), args)

    def worker(self) -> subprocess.Popen[bytes]:
        """Start a delivery worker."""
        return self.start("worker", "work")

    def idle_workers(self, redis: Redis) -> None:
        """Two delivery workers, both idle, on an empty queue (a wake-up then decides)."""
        # Drop the jobs earlier submissions queued, so the test's own wake-up is the only one.
        redis.flushdb()
        self.worker()
        self.worker()
        wait_for(
            lambda: [w.get_state() for w in Worker.all(connection=redis)] == ["idle", "idle"],
            what="two idle workers",
        )

    def sweeper(self) -> subprocess.Popen[bytes]:
        """Start the sweeper."""
        return self.start("worker", "sweep")


@pytest.fixture
def processes(environ: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Start worker/sweeper processes in a test; they are stopped afterwards."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Processes(environ, log_dir)
    yield procs
    procs.stop_all()
    # Shown by pytest only when the test failed.
    print(procs.logs())


def deliveries(store: Store, reference_number: int | None = None) -> list[Delivery]:
    """All deliveries (of one submission), in creation order."""
    with store.read() as session:
        query = select(Delivery).order_by(Delivery.created_at, Delivery.office_id)
        if reference_number is not None:
            query = query.where(Delivery.submission_id == reference_number)
        return list(session.scalars(query))


def all_delivered(store: Store, count: int) -> bool:
    """Whether there are exactly `count` deliveries, all delivered."""
    found = deliveries(store)
    return len(found) == count and all(d.status == DeliveryStatus.DELIVERED for d in found)


def submit(client: FlaskClient, service: str, body: dict[str, Any], key: str | None = None) -> Any:
    """Post a JSON submission with the sender secret; returns the 202 answer's JSON.

    It also waits until the web process's waker has woken the offices (the 202 does not), so
    that a test can reason about the queue as the submission left it.
    """
    from tests.conftest import FORMCYCLE_SECRET

    headers = {"X-Bridge-Secret": FORMCYCLE_SECRET}
    if key:
        headers["Idempotency-Key"] = key
    response = client.post(f"/webhooks/formcycle/{service}", json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert client.application.extensions["bridge"].waker.flush(30)
    return response.get_json()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone, which it may restart (skipped without the binary)."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir=workdir).start()
    yield server
    server.stop()


class GatedLedger(Ledger):
    """The demo office's memory, holding every case request until the test opens the gate.

    A held request is a slow back office: the worker sending it is mid-delivery for as long as
    the test wants, and the answer (a filed case) comes when the gate opens.
    """

    def __init__(self) -> None:
        """Start empty, with the gate closed."""
        super().__init__()
        self.gate = threading.Event()
        self._held_lock = threading.Lock()
        self._held: dict[str, int] = {}

    def arrived(self, office: str, delivery_id: str) -> None:
        """Hold the request until the gate opens, then record it as usual."""
        with self._held_lock:
            self._held[office] = self._held.get(office, 0) + 1
        self.gate.wait(60)
        super().arrived(office, delivery_id)

    def held(self, office: str) -> int:
        """How many requests to the office have arrived at the gate so far."""
        with self._held_lock:
            return self._held.get(office, 0)


@pytest.fixture
def gated_backoffice() -> Iterator[tuple[DemoBackOffice, GatedLedger]]:
    """A demo back office whose answers wait for the test (see GatedLedger)."""
    office = DemoBackOffice(signing_secret=OFFICE_SIGNING_SECRET, hang_s=5)
    ledger = GatedLedger()
    office.ledger = ledger
    office.start()
    yield office, ledger
    ledger.gate.set()
    office.stop()
