"""Counters shared by every process (web, workers, hosts), kept in Redis for /metrics.

Prometheus client's in-process counters would split across gunicorn and RQ processes; a Redis
hash per metric adds one pipelined round trip per request or batch and survives restarts.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterable, Sequence

from redis import Redis
from redis.exceptions import RedisError

SUBMISSIONS = "bridge:metrics:submissions"
ATTEMPTS = "bridge:metrics:attempts"
DURATIONS = "bridge:metrics:attempt_duration"
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def count_submission(redis: Redis, service: str, outcome: str) -> None:
    """Count one webhook call that stored nothing new, by service and outcome (repeated, or
    the HTTP status of a refusal); accepted ones are counted in the store."""
    with contextlib.suppress(RedisError):  # metrics never fail a submission
        redis.hincrby(SUBMISSIONS, f"{service}|{outcome}", 1)


def count_attempts(redis: Redis, attempts: Iterable[tuple[str, str, float]]) -> None:
    """Count delivery attempts as (office, outcome, seconds) and their duration histogram."""
    pipe = redis.pipeline(transaction=False)
    n = 0
    for office, outcome, seconds in attempts:
        pipe.hincrby(ATTEMPTS, f"{office}|{outcome}", 1)
        index = bisect.bisect_left(DURATION_BUCKETS, seconds)
        bucket = "+Inf" if index == len(DURATION_BUCKETS) else repr(DURATION_BUCKETS[index])
        pipe.hincrby(DURATIONS, f"{office}|{bucket}", 1)
        pipe.hincrbyfloat(DURATIONS, f"{office}|sum", seconds)
        n += 1
    if n:
        with contextlib.suppress(RedisError):
            pipe.execute()


def read_hash(redis: Redis, key: str) -> dict[str, float]:
    """A metrics hash as {field: value}."""
    return {
        (k.decode() if isinstance(k, bytes) else k): float(v) for k, v in redis.hgetall(key).items()
    }


def cumulative(buckets: dict[str, float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Per-bucket counts to Prometheus' cumulative (le, count) pairs, ending with +Inf."""
    out: list[tuple[str, float]] = []
    total = 0.0
    for bound in bounds:
        total += buckets.get(repr(bound), 0.0)
        out.append((repr(bound), total))
    total += buckets.get("+Inf", 0.0)
    out.append(("+Inf", total))
    return out
