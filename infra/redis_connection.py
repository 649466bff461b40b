"""The one way to connect to Redis: a plain server or the master a Redis Sentinel names.

Every process (web, workers, sweeper, CLI) connects through `connect`, so timeouts, health
checks and retries are the same everywhere and configured here only.

URL forms (REDIS_URL):

- `redis://[[user]:password@]host:port/db`, `rediss://...` (TLS), `unix:///path?db=0`
- `redis+sentinel://[[user]:password@]host1:26379,host2:26379/service/db[?sentinel_password=...]`:
  the sentinels to ask, the monitored service (master) name and the database (default 0).
  The user and password are those of the master and replicas; `sentinel_password` is the
  sentinels' own `requirepass`, when they have one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel://"
PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
# A command waits at most this long for Redis; RQ raises it for a worker's blocking dequeue.
SOCKET_TIMEOUT_S = 5.0
SOCKET_CONNECT_TIMEOUT_S = 2.0
# A connection idle for longer is pinged before use, so one broken by a Redis restart or a
# failover is replaced instead of failing the next command.
HEALTH_CHECK_INTERVAL_S = 15
# A Redis restart, a failover or a dropped connection is bridged by retrying the command a few
# times on a fresh connection (0.1 s, 0.2 s ... with jitter); a longer outage raises to the
# caller, which has its own answer (the sweeper rebuilds the queue from the database).
RETRIES = 3
RETRY_BACKOFF_BASE_S = 0.1
RETRY_BACKOFF_CAP_S = 1.0
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelAddress:
    """What a `redis+sentinel://` URL says: whom to ask for which master, and how to log in."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def connect(url: str) -> Redis:
    """A Redis client for REDIS_URL; no connection is made until the first command."""
    options = _connection_options()
    if not url.startswith("unix://"):
        # Lets the kernel notice a peer that vanished without a word (host down, partition).
        options["socket_keepalive"] = True
    if url.startswith(SENTINEL_SCHEME):
        address = parse_sentinel_url(url)
        sentinel_options: dict[str, Any] = {**options}
        if address.sentinel_password is not None:
            sentinel_options["password"] = address.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis.sentinel is unannotated
            list(address.sentinels), sentinel_kwargs=sentinel_options
        )
        master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]  # same
            address.service,
            db=address.db,
            username=address.username,
            password=address.password,
            **options,
        )
        return master
    return Redis.from_url(url, **options)


def url_problem(url: str) -> str | None:
    """Why REDIS_URL cannot be used, or None when it can (checked at start-up)."""
    if url.startswith(SENTINEL_SCHEME):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    if not url.startswith(PLAIN_SCHEMES):
        return (
            "must be redis://host:port/db, rediss://host:port/db, unix:///path "
            "or redis+sentinel://host:port[,host:port...]/service[/db]"
        )
    return None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Split `redis+sentinel://[[user]:password@]host:port,.../service[/db][?sentinel_password=]`.

    ValueError names what is wrong (never the password).
    """
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError(f"must start with {SENTINEL_SCHEME}")
    rest = url[len(SENTINEL_SCHEME) :]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(h) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise ValueError("redis+sentinel:// needs at least one sentinel as host:port")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise ValueError(
            "redis+sentinel:// needs the service name after the sentinels: "
            "redis+sentinel://host:26379/mymaster/0"
        )
    service = unquote(parts[0])
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError("the database after the service name must be a number")
        db = int(parts[1])
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"sentinel_password"})
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(unknown)} (known: sentinel_password)")
    sentinel_password = params["sentinel_password"][-1] if "sentinel_password" in params else None
    return SentinelAddress(sentinels, service, db, username, password, sentinel_password)


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # an IPv6 address: [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"sentinel {text!r} must be host:port")
    if not port:
        return host, DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel {text!r} has no valid port")
    return host, int(port)


def _connection_options() -> dict[str, Any]:
    return {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": Retry(
            ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE_S, cap=RETRY_BACKOFF_CAP_S),
            RETRIES,
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
