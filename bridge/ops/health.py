"""Operations endpoints: liveness and readiness (store, Redis and delivery workers)."""

from __future__ import annotations

from flask import Blueprint, Response
from redis.exceptions import AuthenticationError, RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bridge.respond import json_response
from bridge.state import current
from worker.runner import live_workers

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is alive and answering."""
    return json_response({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """The store and Redis are reachable and a delivery worker is alive; 503 names what is not.

    Accepted cases wait in the database while no worker runs, so this is also the signal that
    deliveries have stopped (`workers` is the number of live workers).
    """
    bridge = current()
    checks: dict[str, str] = {}
    try:
        with bridge.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    workers: int | None = None
    try:
        bridge.redis.ping()
        checks["redis"] = "ok"
        workers = live_workers(bridge.redis)
        checks["workers"] = "ok" if workers else "none alive (no worker heartbeat in Redis)"
    except AuthenticationError as exc:
        # Redis answers but refuses us: a missing or wrong password, not an outage.
        checks.setdefault(
            "redis", f"login refused ({type(exc).__name__}): REDIS_URL needs Redis's password"
        )
        checks["workers"] = "unknown (Redis unreachable)"
    except RedisError as exc:
        checks.setdefault("redis", f"unreachable ({type(exc).__name__})")
        checks["workers"] = "unknown (Redis unreachable)"
    ok = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks, "workers": workers},
        200 if ok else 503,
    )
