"""Private redis-servers on free loopback ports, which a caller may stop, restart and flush.

A private server keeps parallel test runs (and anything else on the machine) from flushing each
other's queues, and lets a test or a fault take Redis away without touching the shared one.
Without persistence a restart comes back empty, as a Redis without persistence (or with a lost
disk) does; with it, the server keeps an append-only file in its data folder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from harness.ports import free_port
from harness.waiting import wait_for

MISSING = "redis-server is not installed (apt-get install -y redis-server, as root)"


def redis_binary() -> str | None:
    """The path of redis-server, or None when it is not installed."""
    return shutil.which("redis-server")


def redis_argv(binary: str, port: int, data: Path | None, *extra: str, persist: bool) -> list[str]:
    """A loopback redis-server; with `persist`, an append-only file (fsync each second) in
    `data`, no eviction and replicas synced without delay, else nothing kept at all."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1"]
    if data is not None:
        argv += ["--dir", str(data)]
    if persist:
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        argv += ["--maxmemory-policy", "noeviction", "--repl-diskless-sync-delay", "0"]
    else:
        argv += ["--save", "", "--appendonly", "no"]
    return [*argv, *extra]


def pings(port: int, password: str | None = None) -> bool:
    """True when a Redis answers on `port` (logging in with `password`, when given)."""
    try:
        client = Redis(port=port, password=password, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except RedisError:
        return False


class RedisServer:
    """A redis-server without persistence on a port of its own; nothing runs until `start()`.

    The port stays the server's across restarts, so clients holding its URL reconnect to the
    new process. With a `password` the server requires it (`requirepass`), and its URLs carry it.
    """

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        log: Path | None = None,
        binary: str | None = None,
        password: str | None = None,
    ) -> None:
        """A server on `port` (a free one by default) working in `workdir`, logging to `log`
        (discarded by default), requiring `password` when given; raises RuntimeError when
        redis-server is not installed."""
        found = binary or redis_binary()
        if found is None:
            raise RuntimeError(MISSING)
        self.binary = found
        self.port = port or free_port()
        self.workdir = workdir
        self.log = log
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """redis://[:password@]127.0.0.1:<port>, to which a caller appends `/<database>`."""
        login = f":{self.password}@" if self.password else ""
        return f"redis://{login}127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL of database 0 on this server."""
        return f"{self.base_url}/0"

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        if self.proc is None:
            raise RuntimeError("the redis-server is not running")
        return self.proc.pid

    def start(self) -> RedisServer:
        """Start the server and wait until it answers (10 s at most)."""
        extra = ("--requirepass", self.password) if self.password else ()
        argv = redis_argv(self.binary, self.port, self.workdir, *extra, persist=False)
        if self.log is None:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        else:
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        wait_for(
            lambda: pings(self.port, self.password),
            timeout=10,
            what=f"redis-server on port {self.port}",
        )
        return self

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Stop the server and start an empty one on the same port."""
        self.stop()
        self.start()

    def flush(self, db: int | None = None) -> None:
        """Empty database `db`, or every database when it is None."""
        client = Redis(port=self.port, db=db or 0, password=self.password)
        try:
            if db is None:
                client.flushall()
            else:
                client.flushdb()
        finally:
            client.close()
