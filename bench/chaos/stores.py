"""The run's store: a fresh SQLite file or PostgreSQL database, and how to make it unreachable.

PostgreSQL goes away for its clients by refusing new connections to the run's database
(`ALLOW_CONNECTIONS false`) and terminating the bridge's backends with `pg_terminate_backend`,
again and again while the outage lasts; SQLite by another connection holding the write lock
(`BEGIN IMMEDIATE`), which writers wait for up to their busy timeout and then give up.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from harness.postgres import (
    DEFAULT_ADMIN_URL,
    admin_engine,
    create_database,
    drop_database,
    unique_name,
)
from store.engine import make_engine
from store.migrations import upgrade

DEFAULT_POSTGRES = DEFAULT_ADMIN_URL


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
            name = unique_name("chaos_")
            store = cls(kind, create_database(postgres_url, name), postgres_url, name)
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
        with admin_engine(self.admin_url) as admin, admin.connect() as conn:
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
            drop_database(self.admin_url, self.name)
