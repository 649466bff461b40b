"""The run's store: a fresh SQLite file or PostgreSQL database, and how to make it unreachable.

PostgreSQL goes away for its clients by refusing new connections to the run's database
(`ALLOW_CONNECTIONS false`) and terminating the bridge's backends with `pg_terminate_backend`,
again and again while the outage lasts; SQLite by another connection holding the write lock
(`BEGIN IMMEDIATE`), which writers wait for up to their busy timeout and then give up.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from harness.postgres import (
    DEFAULT_ADMIN_URL,
    admin_engine,
    create_database,
    drop_database,
    unique_name,
)
from harness.processes import Supervisor
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


class StoreRun:
    """One store's run of a chaos run made per store: its directory, supervisor and store.

    A subclass starts what it needs in `_run` (its stand-ins there, stopped in a `finally`) and
    sets `self.store`; `execute` then stops the processes, drops the store, adds `seconds` and
    `run_dir` to the result and removes the directory when the run passed.
    """

    prefix = "chaos"

    def __init__(self, kind: str, cases: int, seed: int, postgres_url: str) -> None:
        """Nothing started yet."""
        self.kind, self.cases, self.seed, self.postgres_url = kind, cases, seed, postgres_url
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-{kind}-"))
        self.sup = Supervisor()
        self.store: RunStore | None = None
        self.secret = secrets.token_urlsafe(32)

    def execute(self) -> dict[str, Any]:
        """Run it; the summary (the run directory is kept when it failed)."""
        started = time.monotonic()
        try:
            result = self._run()
        finally:
            self.sup.shutdown()
            if self.store is not None:
                self.store.drop()
        result["seconds"] = round(time.monotonic() - started, 1)
        result["run_dir"] = str(self.dir)
        if result["passed"]:
            shutil.rmtree(self.dir, ignore_errors=True)
        return result

    def _run(self) -> dict[str, Any]:
        raise NotImplementedError
