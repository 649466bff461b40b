"""A backlog of one office is shared by several workers; each delivery is still sent once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from harness.waiting import wait_for
from store.engine import Store
from store.models import DeliveryStatus
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, replace_office, submit
from worker.queue import delivery_queue, wake_offices

OFFICE = "usingen-steueramt"
# How long the office holds answers waiting for a second worker; far below the read timeout.
HOLD_S = 30.0


class GatedOffice(ThreadingHTTPServer):
    """A back office on loopback that answers nobody until two connections have sent a case.

    The first worker's first request is held, so that worker cannot drain the whole backlog
    alone however long the second worker takes to get CPU time on a loaded machine; only a
    second worker delivering opens the gate (after HOLD_S it opens anyway, and the test fails).
    """

    daemon_threads = True

    def __init__(self) -> None:
        """Bind to a free loopback port."""
        super().__init__(("127.0.0.1", 0), _GatedHandler)
        self.changed = threading.Condition()
        self.connections: set[int] = set()
        self.received: list[str] = []
        self.gave_up = False

    def open(self) -> bool:
        """Whether answers flow: a second connection came, or HOLD_S passed without one."""
        return len(self.connections) >= 2 or self.gave_up

    @property
    def url(self) -> str:
        """The URL the office's cases are posted to."""
        return f"http://127.0.0.1:{self.server_address[1]}/cases/{OFFICE}"


class _GatedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        office = cast(GatedOffice, self.server)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with office.changed:
            office.received.append(self.headers.get("webhook-id", ""))
            office.connections.add(self.client_address[1])
            office.changed.notify_all()
            if not office.changed.wait_for(office.open, timeout=HOLD_S):
                # Let the backlog drain, so the test fails on what it checks, not a timeout.
                office.gave_up = True
                office.changed.notify_all()
            number = len(office.received)
        body = json.dumps({"case_number": f"ST-{number}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what arrived from the office itself."""


@pytest.fixture
def office() -> Iterator[GatedOffice]:
    """The gated back office, serving in a thread."""
    server = GatedOffice()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def environ(environ: dict[str, str], office: GatedOffice) -> dict[str, str]:
    """Small batches (forty deliveries are twenty batches), the tax office behind the gate."""
    block = (
        f'[offices.{OFFICE}]\nname = "Steueramt Usingen"\nmunicipality = "usingen"\n'
        'task_area = "tax"\nchannel = "http-json"\n'
        f'options = {{ url = "{office.url}", connect_timeout_s = 1, read_timeout_s = 60 }}\n'
    )
    path = Path(environ["BRIDGE_CONFIG"])
    path.write_text(
        replace_office(path.read_text(encoding="utf-8"), OFFICE, block), encoding="utf-8"
    )
    environ["BRIDGE_DELIVERY_BATCH"] = "2"
    return environ


def test_two_workers_share_a_backlog(
    client: FlaskClient,
    store: Store,
    office: GatedOffice,
    processes: Processes,
    redis_url: str,
) -> None:
    """A drain job that finds a full batch wakes a second job, which the idle worker takes."""
    ids = [submit(client, "dog-registration", dog())["deliveries"][0]["id"] for _ in range(40)]
    redis = Redis.from_url(redis_url)
    # Start from one wake-up with both workers idle.
    processes.idle_workers(redis)
    assert wake_offices(redis, [OFFICE]) == 1
    wait_for(
        lambda: all(d.status == DeliveryStatus.DELIVERED for d in deliveries(store)),
        timeout=HOLD_S + 30,
        what="the backlog",
    )
    assert sorted(office.received) == sorted(ids)
    assert not office.gave_up, "no second worker delivered while the first one was held"
    queue = delivery_queue(redis)
    # The last drain jobs still look for more work after the last delivery: let them end.
    wait_for(
        lambda: queue.count == 0 and StartedJobRegistry(queue=queue).count == 0,
        what="the drain jobs to end",
    )
    finished = FinishedJobRegistry(queue=queue).get_job_ids()
    jobs = [queue.fetch_job(job_id) for job_id in finished]
    assert len({job.worker_name for job in jobs if job is not None}) == 2
