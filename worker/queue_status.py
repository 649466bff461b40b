"""Queue depth and live workers for the administrators' overview, None when Redis is away."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from worker.queue import delivery_queue
from worker.runner import live_workers


@dataclass(frozen=True)
class QueueStatus:
    """Jobs waiting and workers alive; None each means "unbekannt" (Redis not reachable)."""

    depth: int | None
    workers: int | None


def queue_status(redis: Redis) -> QueueStatus:
    """Read both figures; a Redis outage degrades to unknown instead of failing the page."""
    try:
        depth = int(delivery_queue(redis).count)
    except RedisError:
        return QueueStatus(None, None)
    try:
        workers: int | None = live_workers(redis)
    except RedisError:
        workers = None
    return QueueStatus(depth, workers)
