"""The run's Redis: one private redis-server, or a primary, a replica and three sentinels.

The servers are started with the harness's arguments (harness.redis_servers) under the run's
supervisor. Both keep their data in an append-only file under the run directory, so "restart
with data" replays it and "restart without data" deletes it first. Under Sentinel the fault is the death
of whichever node is primary at that moment; it comes back later as a replica.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from harness.ports import free_port
from harness.processes import Managed, Supervisor
from harness.redis_servers import MISSING, pings, redis_argv, redis_binary

MASTER_NAME = "mymaster"


def _synced(port: int) -> bool:
    """True when the replica on `port` has its link to the primary up."""
    try:
        client = Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return client.info("replication").get("master_link_status") == "up"
        finally:
            client.close()
    except RedisError:
        return False


@dataclass
class Node:
    """One redis-server of the run and its data directory."""

    managed: Managed
    port: int
    data: Path

    def restart(self, down_s: float, keep_data: bool) -> None:
        """SIGKILL, stay down `down_s`, optionally wipe the data, let the supervisor restart it."""
        self.managed.held = True
        self.managed.kill()
        time.sleep(down_s)
        if not keep_data:
            shutil.rmtree(self.data)
            self.data.mkdir()
        self.managed.held = False


@dataclass
class RedisSetup:
    """The Redis nodes of a run and the URL the bridge uses."""

    url: str
    nodes: list[Node] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)

    @classmethod
    def single(cls, sup: Supervisor, run_dir: Path, env: dict[str, str]) -> RedisSetup:
        """One redis-server on a free port."""
        node = _node(sup, run_dir, "redis", env, [])
        return cls(f"redis://127.0.0.1:{node.port}/0", [node])

    @classmethod
    def sentinel(cls, sup: Supervisor, run_dir: Path, env: dict[str, str]) -> RedisSetup:
        """A primary, a replica and three sentinels (quorum 2) on free loopback ports."""
        sentinel_bin = shutil.which("redis-sentinel")
        if sentinel_bin is None:
            raise RuntimeError(
                "redis-sentinel is missing: apt-get install -y redis-sentinel (as root)"
            )
        primary = _node(sup, run_dir, "redis-primary", env, [])
        replica = _node(
            sup, run_dir, "redis-replica", env, ["--replicaof", "127.0.0.1", str(primary.port)]
        )
        replica.managed.ready = lambda: _synced(replica.port)
        replica.managed.wait_ready()
        ports = []
        for n in range(3):
            port = free_port()
            conf = run_dir / f"sentinel-{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {run_dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            m = sup.add(
                Managed(
                    f"sentinel-{n}",
                    [sentinel_bin, str(conf)],
                    env,
                    run_dir / f"sentinel-{n}.log",
                    run_dir,
                )
            )
            m.ready = lambda port=port: pings(port)
            m.wait_ready()
            ports.append(port)
        hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
        return cls(f"redis+sentinel://{hosts}/{MASTER_NAME}/0", [primary, replica], ports)

    def primary(self) -> Node:
        """The node the sentinels name as primary now."""
        for port in self.sentinel_ports:
            try:
                client = Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
                address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                client.close()
            except RedisError:
                continue
            if isinstance(address, tuple | list) and address:
                node = next((n for n in self.nodes if n.port == int(address[1])), None)
                if node is not None:
                    return node
        raise RuntimeError("no sentinel names a primary")


def _node(sup: Supervisor, run_dir: Path, name: str, env: dict[str, str], extra: list[str]) -> Node:
    binary = redis_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    port = free_port()
    data = run_dir / name
    data.mkdir()
    m = sup.add(
        Managed(
            name,
            redis_argv(binary, port, data, *extra, persist=True),
            env,
            run_dir / f"{name}.log",
            run_dir,
        )
    )
    m.ready = lambda: pings(port)
    m.wait_ready()
    return Node(m, port, data)
