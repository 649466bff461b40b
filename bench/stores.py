"""The benchmarks' scratch stores: a fresh SQLite file or a PostgreSQL database, migrated.

Shared by bench.intake and bench.history (which seeds a store to measure queries against a
long history); the databases themselves are the harness's (harness.postgres).
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.postgres import DEFAULT_ADMIN_URL, create_database, database_url, drop_database
from store.engine import make_engine
from store.migrations import upgrade

DEFAULT_POSTGRES = DEFAULT_ADMIN_URL


def migrate(url: str) -> str:
    """Bring the database at `url` to the newest schema; returns `url`."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def prepare_sqlite(workdir: Path) -> str:
    """A fresh, migrated SQLite database file."""
    path = workdir / "bench-intake.db"
    remove_sqlite(path)
    return migrate(f"sqlite:///{path}")


def _database_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"--postgres-db must be a plain lower-case identifier, not {name!r}")
    return name


def recreate_postgres(admin_url: str, name: str, create: bool = True) -> str:
    """Drop the scratch database and (unless `create` is false) create and migrate it anew."""
    name = _database_name(name)
    if not create:
        drop_database(admin_url, name)
        return database_url(admin_url, name)
    return migrate(create_database(admin_url, name, replace=True))
