"""Liveness and readiness: /healthz answers while alive, /readyz names what is unreachable or
missing (the database, Redis, a live delivery worker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge import create_app
from domain.settings import Settings
from harness.redis_servers import RedisServer, redis_binary
from tests.conftest import ROOT


def _closed_port() -> int:
    """A local port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app_with() -> Iterator[list[Flask]]:
    """Apps built from changed environments; their stores are closed afterwards."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        app.extensions["bridge"].store.dispose()


def _build(environ: dict[str, str], apps: list[Flask], **changes: str) -> FlaskClient:
    app = create_app(Settings.from_env({**environ, **changes}))
    apps.append(app)
    return app.test_client()


def test_healthz(client: FlaskClient) -> None:
    """The process answers that it is alive."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_readyz_503_without_a_live_worker(client: FlaskClient) -> None:
    """Store and Redis reachable but no worker alive: not ready, naming the workers (accepted
    cases would wait forever); the metrics say 0."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "redis": "ok",
            "workers": "none alive (no worker heartbeat in Redis)",
        },
        "workers": 0,
    }
    assert "bridge_workers 0.0" in client.get("/metrics").get_data(as_text=True)


def test_readyz_ready_with_a_live_worker(
    client: FlaskClient, environ: dict[str, str], redis_url: str
) -> None:
    """A real worker process registers with a heartbeat: ready, and counted in the metrics;
    once it has stopped, not ready again."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "work"],
        env={**os.environ, **environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "ok", "workers": "ok"},
            "workers": 1,
        }
        assert "bridge_workers 1.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    # A worker that stops unregisters at once.
    assert client.get("/readyz").get_json()["checks"]["workers"].startswith("none alive")


def test_readyz_503_when_redis_is_unreachable(
    environ: dict[str, str], app_with: list[Flask]
) -> None:
    """Redis on a closed port: not ready, and the answer says it is Redis."""
    client = _build(environ, app_with, REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable")
    assert body["checks"]["workers"] == "unknown (Redis unreachable)"
    # Alive is not ready: liveness does not depend on Redis.
    assert client.get("/healthz").status_code == 200


def test_readyz_503_when_the_database_is_unreachable(
    environ: dict[str, str], app_with: list[Flask]
) -> None:
    """The store on a closed port: not ready, and the answer says it is the database."""
    client = _build(
        environ,
        app_with,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_closed_port()}/test",
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["redis"] == "ok"


def test_readyz_does_not_leak_connection_details(
    environ: dict[str, str], app_with: list[Flask]
) -> None:
    """A failing check names the error type only, not URLs or credentials."""
    port = _closed_port()
    client = _build(environ, app_with, REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0")
    text = client.get("/readyz").get_data(as_text=True)
    assert "s3cret" not in text
    assert str(port) not in text


@pytest.mark.parametrize("login", ["", ":wrong@"], ids=["no-password", "wrong-password"])
def test_readyz_503_names_a_refused_redis_login(
    environ: dict[str, str], app_with: list[Flask], tmp_path: Path, login: str
) -> None:
    """A Redis that requires a password and REDIS_URL without it (or with a wrong one): not
    ready, and the answer says the login was refused, not that Redis is away."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    server = RedisServer(workdir=tmp_path, password="the-right-one").start()
    try:
        url = f"redis://{login}127.0.0.1:{server.port}/0"
        response = _build(environ, app_with, REDIS_URL=url).get("/readyz")
        assert response.status_code == 503
        checks = response.get_json()["checks"]
        assert checks["redis"] == (
            "login refused (AuthenticationError): REDIS_URL needs Redis's password"
        )
        assert checks["workers"] == "unknown (Redis unreachable)"
        assert "wrong" not in response.get_data(as_text=True)
    finally:
        server.stop()
