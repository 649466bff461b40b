"""The run's store: a fresh SQLite file or PostgreSQL database, and how to make it unreachable.

PostgreSQL goes away for its clients by refusing new connections to the run's database
(`ALLOW_CONNECTIONS false`) and terminating the bridge's backends with `pg_terminate_backend`,
again and again while the outage lasts; SQLite by another connection holding the write lock
(`BEGIN IMMEDIATE`), which writers wait for up to their busy timeout and then give up.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from store.engine import make_engine, normalise_database_url
from store.migrations import upgrade

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class RunStore:
    """A store made for one run; `drop()` removes it."""

    kind: str  # "sqlite" or "postgres"
    url: str
    admin_url: str = ""
    name: str = ""

    @classmethod
    def create(cls, kind: str, run_dir: Path, postgres_url: str) -> RunStore:
        """A fresh, migrated store of `kind`."""
        if kind == "sqlite":
            store = cls(kind, f"sqlite:///{run_dir / 'bridge.db'}")
        else:
            admin_url = normalise_database_url(postgres_url)
            name = f"chaos_{uuid.uuid4().hex[:10]}"
            with _admin(admin_url) as admin, admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            store = cls(kind, admin_url.rsplit("/", 1)[0] + f"/{name}", admin_url, name)
        engine = make_engine(store.url)
        upgrade(engine)
        engine.dispose()
        return store

    def engine(self) -> Engine:
        """An engine for reading what the run left behind."""
        return make_engine(self.url)

    def outage(self, seconds: float) -> None:
        """Make the store unusable for the bridge for `seconds` (blocks that long)."""
        if self.kind == "sqlite":
            self._hold_write_lock(seconds)
        else:
            self._refuse_connections(seconds)

    def _hold_write_lock(self, seconds: float) -> None:
        conn = sqlite3.connect(
            self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None
        )
        try:
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def _refuse_connections(self, seconds: float) -> None:
        with _admin(self.admin_url) as admin, admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false'))
            try:
                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": self.name},
                    )
                    time.sleep(0.2)
            finally:
                conn.execute(text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true'))

    def drop(self) -> None:
        """Remove a PostgreSQL database (a SQLite file goes with the run directory)."""
        if self.kind == "postgres":
            with _admin(self.admin_url) as admin, admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


@contextmanager
def _admin(url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the administrative database, disposed after use."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()
