"""The delivery benchmark's stores: migrated databases, templates and their copies.

A template holds N pending deliveries stored through the service's own intake; each measured
row starts from a copy (a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from bench.delivery.shared import PG_PREFIX, SENDER_HEADER, Bench
from bench.samples import form_body
from bench.stores import migrate, remove_sqlite
from domain.settings import Settings
from harness.postgres import create_database, database_url
from harness.postgres import drop_database as drop_database_named
from store.engine import make_engine, normalise_database_url


def pg_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the admin URL's server."""
    return database_url(admin_url, f"{PG_PREFIX}{name}")


def sqlite_path(bench: Bench, name: str) -> Path:
    """Where database `name` lives on SQLite."""
    return bench.workdir / f"{name}.db"


def fresh_database(bench: Bench, store: str, name: str) -> str:
    """A new, migrated, empty database called `name`; returns its URL."""
    if store == "sqlite":
        path = sqlite_path(bench, name)
        remove_sqlite(path)
        url = f"sqlite:///{path}"
    else:
        url = create_database(bench.opts.postgres_url, f"{PG_PREFIX}{name}", replace=True)
    return migrate(url)


def seal_template(store: str, url: str) -> None:
    """Make a prepared database copyable: SQLite's WAL folded into the main file."""
    if store == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def copy_database(bench: Bench, store: str, template: str, name: str) -> str:
    """A copy of database `template` called `name`; returns its URL."""
    if store == "sqlite":
        source, target = sqlite_path(bench, template), sqlite_path(bench, name)
        remove_sqlite(target)
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"
    return create_database(
        bench.opts.postgres_url,
        f"{PG_PREFIX}{name}",
        template=f"{PG_PREFIX}{template}",
        replace=True,
    )


def drop_database(bench: Bench, store: str, name: str) -> None:
    """Remove database `name`."""
    if store == "sqlite":
        remove_sqlite(sqlite_path(bench, name))
    else:
        drop_database_named(bench.opts.postgres_url, f"{PG_PREFIX}{name}")


def plain_engine(url: str) -> Engine:
    """An engine for the benchmark's own reads: no BEGIN IMMEDIATE, so it never takes the
    SQLite write lock that the workers need (the service's `make_engine` does at every BEGIN)."""
    return create_engine(normalise_database_url(url))


def delivery_statuses(engine: Engine) -> dict[str, int]:
    """Deliveries per status."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


def count_delivered(engine: Engine) -> int:
    """Deliveries in status delivered."""
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
        return int(conn.execute(query).scalar_one())


def sqlite_notes() -> dict[str, str]:
    """The pragmas the service's engine sets on SQLite (read back, not assumed)."""
    with tempfile.TemporaryDirectory(prefix="bench-delivery-probe-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/probe.db")
        try:
            with engine.connect() as conn:
                names = ("journal_mode", "synchronous", "busy_timeout")
                found = {n: str(conn.exec_driver_sql(f"PRAGMA {n}").scalar()) for n in names}
        finally:
            engine.dispose()
    levels = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
    found["synchronous"] = levels.get(found["synchronous"], found["synchronous"])
    return found


def postgres_notes(url: str) -> dict[str, str]:
    """Server settings that decide the cost of a commit."""
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers")
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as conn:
            return {n: str(conn.execute(text(f"SHOW {n}")).scalar()) for n in names}
    finally:
        engine.dispose()


def prepare_template(bench: Bench, store: str, kind: str, n: int) -> tuple[str, float]:
    """Store `n` submissions through the intake (no worker runs); returns (URL, seconds)."""
    from bridge import create_app

    name = f"tpl_{kind}"
    url = fresh_database(bench, store, name)
    bench.flush_redis(1)
    settings = Settings.from_env(
        bench.environ(url, redis_url=f"{bench.redis.base_url}/1", log_level="WARNING")
    )
    app = create_app(settings)
    client = app.test_client()
    bodies = {s: form_body(s) for s in ("dog-registration", "traffic-order")}
    started = time.perf_counter()
    try:
        for i in range(n):
            service = "dog-registration" if kind == "one" or i % 2 == 0 else "traffic-order"
            answer = client.post(
                f"/webhooks/formcycle/{service}",
                data=bodies[service],
                headers={
                    SENDER_HEADER: bench.keys.formcycle,
                    "Idempotency-Key": f"prep-{kind}-{i}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
            )
            if answer.status_code != 202 or answer.headers.get("Idempotent-Replayed"):
                raise SystemExit(
                    f"preparation: submission {i} got {answer.status_code}: "
                    f"{answer.get_data(as_text=True)[:500]}"
                )
    finally:
        bridge = app.extensions["bridge"]
        bridge.store.dispose()
        bridge.redis.close()
    seconds = time.perf_counter() - started
    bench.flush_redis(1)
    engine = plain_engine(url)
    try:
        statuses = delivery_statuses(engine)
    finally:
        engine.dispose()
    if statuses != {"pending": n}:
        raise SystemExit(f"preparation: expected {n} pending deliveries, found {statuses}")
    seal_template(store, url)
    return url, seconds
