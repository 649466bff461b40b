"""A private redis-server: answers on its own port, restarts there empty, stops for good."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis

from harness.redis_servers import RedisServer, pings, redis_binary

pytestmark = pytest.mark.skipif(redis_binary() is None, reason="needs redis-server")


def test_restart_keeps_the_port_and_no_data(tmp_path: Path) -> None:
    """A restarted server answers on the same port and has forgotten what it held."""
    server = RedisServer(workdir=tmp_path).start()
    try:
        port = server.port
        client = Redis.from_url(server.url)
        client.set("kept", "no")
        server.restart()
        assert server.port == port
        assert pings(port)
        assert client.get("kept") is None
        client.close()
    finally:
        server.stop()
    assert not pings(port)


def test_flush_empties_one_database_or_all(tmp_path: Path) -> None:
    """flush(db) empties that database alone; flush() empties every one."""
    server = RedisServer(workdir=tmp_path, log=tmp_path / "redis.log").start()
    try:
        zero, one = Redis.from_url(f"{server.base_url}/0"), Redis.from_url(f"{server.base_url}/1")
        zero.set("a", "1")
        one.set("b", "1")
        server.flush(1)
        assert (zero.get("a"), one.get("b")) == (b"1", None)
        one.set("b", "1")
        server.flush()
        assert (zero.get("a"), one.get("b")) == (None, None)
        zero.close()
        one.close()
    finally:
        server.stop()
    assert (tmp_path / "redis.log").read_text(errors="replace")


def test_two_servers_do_not_share_data(tmp_path: Path) -> None:
    """Each server is private: a key set on one is not on the other."""
    first, second = RedisServer().start(), RedisServer().start()
    try:
        assert first.port != second.port
        Redis(port=first.port).set("mine", "1")
        assert Redis(port=second.port).get("mine") is None
    finally:
        first.stop()
        second.stop()
