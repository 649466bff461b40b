"""The Redis factory: REDIS_URL forms, and a real Redis Sentinel (primary, replica, sentinel)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError

from domain.settings import Settings, SettingsError
from harness.ports import free_port
from infra.redis_connection import SentinelAddress, connect, parse_sentinel_url, url_problem
from tests.conftest import base_environ


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/0",
            SentinelAddress((("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 0),
            id="two-sentinels",
        ),
        pytest.param(
            "redis+sentinel://sentinel.example/bridge",
            SentinelAddress((("sentinel.example", 26379),), "bridge", 0),
            id="default-port-and-db",
        ),
        pytest.param(
            "redis+sentinel://:p%40ss@[::1]:26379,h2:1/mymaster/3?sentinel_password=s3",
            SentinelAddress(
                (("::1", 26379), ("h2", 1)), "mymaster", 3, None, "p@ss", sentinel_password="s3"
            ),
            id="password-ipv6-db",
        ),
        pytest.param(
            "redis+sentinel://bridge:pw@h:26379/mymaster",
            SentinelAddress((("h", 26379),), "mymaster", 0, "bridge", "pw"),
            id="user-and-password",
        ),
    ],
)
def test_sentinel_url_is_parsed(url: str, expected: SentinelAddress) -> None:
    """Sentinels, service name, database and credentials come out of the URL."""
    address = parse_sentinel_url(url)
    assert address == expected
    assert (address.password, address.sentinel_password) == (
        expected.password,
        expected.sentinel_password,
    )
    assert url_problem(url) is None


def test_settings_accept_a_sentinel_url(tmp_path: Path) -> None:
    """REDIS_URL may name sentinels instead of one server (refused before)."""
    url = "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
    settings = Settings.from_env(base_environ(f"sqlite:///{tmp_path / 'b.db'}", url))
    assert settings.redis_url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///mymaster/0", "needs at least one sentinel"),
        ("redis+sentinel://h:26379", "needs the service name"),
        ("redis+sentinel://h:26379/mymaster/0/1", "needs the service name"),
        ("redis+sentinel://h:26379/mymaster/zero", "must be a number"),
        ("redis+sentinel://h:port/mymaster", "has no valid port"),
        ("redis+sentinel://h:26379/mymaster?db=2", "unknown parameter db"),
        ("http://127.0.0.1:6379", "must be redis://host:port/db"),
    ],
)
def test_bad_redis_urls_are_refused_at_start(url: str, problem: str, tmp_path: Path) -> None:
    """A malformed REDIS_URL stops the start with what is wrong, never with the password."""
    environ = base_environ(f"sqlite:///{tmp_path / 'b.db'}", url.replace("h:", ":hunter2@h:", 1))
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert any(p.startswith("REDIS_URL: ") and problem in p for p in caught.value.problems)
    assert "hunter2" not in str(caught.value)


def test_plain_urls_get_the_shared_timeouts_and_retries(redis_url: str) -> None:
    """Every client has the same connect/command timeouts, health checks and retries."""
    client = connect(redis_url)
    assert client.ping()
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (5.0, 2.0)
    assert kwargs["health_check_interval"] == 15
    assert kwargs["retry"].get_retries() == 3
    client.close()


@dataclass
class SentinelSetup:
    """A primary, its replica and a sentinel watching them, all on private ports."""

    primary: int
    replica: int
    sentinel: int
    password: str = "primary-secret"
    sentinel_password: str = "sentinel-secret"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self) -> str:
        """The REDIS_URL a service would be given."""
        return (
            f"redis+sentinel://:{self.password}@127.0.0.1:{self.sentinel}/bridge/2"
            f"?sentinel_password={self.sentinel_password}"
        )

    def node(self, port: int, db: int = 0) -> Redis:
        """A direct client of one data node."""
        return Redis(port=port, db=db, password=self.password, socket_connect_timeout=1)


def _wait(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[SentinelSetup]:
    """Start the three servers (skipped only when redis-server or redis-sentinel is missing)."""
    server, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
    if server is None or sentinel is None:
        pytest.skip("needs redis-server and redis-sentinel (apt-get install -y redis-sentinel)")
    setup = SentinelSetup(free_port(), free_port(), free_port())
    # A replica writes the primary's snapshot to its directory: a temporary one.
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    auth = ["--requirepass", setup.password, "--masterauth", setup.password]
    procs = setup.procs
    procs += [
        subprocess.Popen(
            [server, "--port", str(setup.primary), *common, *auth], stdout=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [server, "--port", str(setup.replica), *common, *auth,
             "--replicaof", "127.0.0.1", str(setup.primary)],
            stdout=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        _wait(
            lambda: setup.node(setup.replica).info("replication")["master_link_status"] == "up",
            "the replica to follow the primary",
        )
        # Sentinel rewrites its configuration file, so it gets one of its own.
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {setup.sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"requirepass {setup.sentinel_password}\n"
            f"sentinel monitor bridge 127.0.0.1 {setup.primary} 1\n"
            f"sentinel auth-pass bridge {setup.password}\n"
            "sentinel down-after-milliseconds bridge 1000\n"
            "sentinel failover-timeout bridge 10000\n",
            encoding="utf-8",
        )
        procs.append(subprocess.Popen([sentinel, str(conf)], stdout=subprocess.DEVNULL))
        watcher = Redis(port=setup.sentinel, password=setup.sentinel_password)
        _wait(
            lambda: len(watcher.sentinel_slaves("bridge")) == 1,
            "the sentinel to know the replica",
        )
        watcher.close()
        yield setup
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(10)


def test_a_sentinel_url_reaches_the_primary_and_follows_a_failover(
    sentinel_setup: SentinelSetup,
) -> None:
    """The client asks the sentinel for the primary and writes there; when the primary dies,
    the sentinel promotes the replica and the same client writes to it, not rebuilt."""
    setup = sentinel_setup
    client = connect(setup.url())
    client.set("bridge:test", "before")
    assert setup.node(setup.primary, db=2).get("bridge:test") == b"before"
    assert setup.node(setup.primary, db=0).get("bridge:test") is None  # the URL's database
    _wait(
        lambda: setup.node(setup.replica, db=2).get("bridge:test") == b"before",
        "the write to reach the replica",
    )
    setup.procs[0].terminate()
    setup.procs[0].wait(10)
    # Writes fail while the sentinel notices and promotes (about two seconds here), then the
    # client finds the new primary by itself; a write to the replica before would be refused.
    _wait(lambda: client.set("bridge:test", "after"), "a write after the failover")
    promoted = setup.node(setup.replica, db=2)
    assert promoted.get("bridge:test") == b"after"
    assert promoted.info("replication")["role"] == "master"
    client.close()
    promoted.close()
