"""A worker whose REDIS_URL lacks the password of a protected Redis says so, without a traceback,
and starts working once Redis lets it in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.redis_servers import RedisServer, redis_binary
from harness.waiting import wait_for
from tests.worker.conftest import Processes


def _events(logs: str, event: str) -> list[dict[str, object]]:
    records = (json.loads(line) for line in logs.splitlines() if line.startswith("{"))
    return [r for r in records if r.get("event") == event]


def test_a_worker_without_the_redis_password_says_why(processes: Processes, tmp_path: Path) -> None:
    """The login is refused: the worker logs `worker.redis_unavailable` naming the refused
    login (never the URL), prints no traceback and keeps trying rather than exiting."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    server = RedisServer(workdir=tmp_path, password="the-right-one").start()
    try:
        processes.env["REDIS_URL"] = f"redis://:wrong-one@127.0.0.1:{server.port}/0"
        worker = processes.worker()
        wait_for(
            lambda: _events(processes.logs(), "worker.restarting"),
            what="the worker to try again",
        )
        [first, *_] = _events(processes.logs(), "worker.redis_unavailable")
        assert first["error"] == "AuthenticationError"
        assert first["hint"] == "Redis refused the login: REDIS_URL needs Redis's password"
        assert worker.poll() is None
        assert "Traceback" not in processes.logs()
        assert "wrong-one" not in processes.logs()
    finally:
        processes.stop_all()
        server.stop()
