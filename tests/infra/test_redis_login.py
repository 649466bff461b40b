"""A protected Redis: a password in REDIS_URL logs in, none is refused clearly; rediss:// is TLS.

Real redis-servers: one started with `requirepass`, one that speaks only TLS with a
certificate made here (its CA handed to the client with `?ssl_ca_certs=`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from redis.exceptions import AuthenticationError, ConnectionError

from domain.settings import Settings
from harness.ports import free_port
from harness.redis_servers import RedisServer, redis_binary
from harness.waiting import wait_for
from infra.redis_connection import connect, url_problem
from tests.conftest import base_environ
from tests.tls_support import certificate

PASSWORD = "s3cret-pass/with+signs"


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that requires PASSWORD."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    server = RedisServer(workdir=tmp_path, password=PASSWORD).start()
    yield server
    server.stop()


def test_a_url_with_the_password_logs_in(protected: RedisServer) -> None:
    """`redis://:PASSWORD@host:port/db` (the password URL-quoted) reaches a protected Redis."""
    url = f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{protected.port}/0"
    client = connect(url)
    try:
        assert client.ping()
        client.set("bridge:probe", "1")
    finally:
        client.close()


@pytest.mark.parametrize("login", ["", ":wrong@"], ids=["no-password", "wrong-password"])
def test_a_url_without_the_password_is_refused(protected: RedisServer, login: str) -> None:
    """No password or a wrong one: Redis refuses the login, which redis-py raises as an
    AuthenticationError (a connection error, so every process's outage handling covers it)."""
    client = connect(f"redis://{login}127.0.0.1:{protected.port}/0")
    try:
        with pytest.raises(AuthenticationError):
            client.ping()
    finally:
        client.close()


def _answers(url: str) -> bool:
    client = connect(url)
    try:
        return bool(client.ping())
    except ConnectionError:
        return False
    finally:
        client.close()


def test_a_rediss_url_speaks_tls_with_the_ca_it_names(tmp_path: Path) -> None:
    """`rediss://:PASSWORD@host:port/0?ssl_ca_certs=/path/ca.pem` is accepted by the settings
    and talks TLS to a Redis that listens for TLS only; plain redis:// gets no answer there."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    cert, key = certificate(tmp_path)
    port = free_port()
    argv = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    argv += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    argv += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    argv += ["--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        url = f"rediss://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
        assert url_problem(url) is None
        settings = Settings.from_env(base_environ(f"sqlite:///{tmp_path / 'b.db'}", url))
        wait_for(lambda: _answers(settings.redis_url), timeout=10, what="Redis over TLS")
        assert not _answers(f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0")
    finally:
        proc.terminate()
        proc.wait(10)
