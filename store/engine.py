"""The engine and sessions: SQLite (WAL, turns at the write lock) or PostgreSQL, one `Store`.

The database is the state machine; the queue only carries work. SQLite is the embedded default,
PostgreSQL the production store; both run the same code and the same migrations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError as DBAPIOperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from store.group_commit import GroupCommit
from store.sqlite_turns import connection_class

# An execution option: the transaction only reads, so SQLite needs no write lock for it.
READONLY = "bridge_readonly"


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, sqlite_busy_timeout_ms: int = 10_000, pool_size: int = 5) -> Engine:
    """Create the engine; on SQLite switch on WAL and take the write lock at BEGIN."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        # Writers take turns at SQLite's one write lock (store/sqlite_turns.py).
        factory = connection_class(make_url(url).database, sqlite_busy_timeout_ms / 1000)
        engine = create_engine(url, connect_args={"check_same_thread": False, "factory": factory})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            # pysqlite's own transaction handling is off so that BEGIN IMMEDIATE below is ours:
            # taking the write lock at the start avoids lock-upgrade deadlocks between writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(sqlite_busy_timeout_ms)}")
            cur.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives a power cut, which is what our 202 promises.
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Readers (Store.read) need no write lock: in WAL mode they never block writers.
            if conn.get_execution_options().get(READONLY, False):
                conn.exec_driver_sql("BEGIN")
                return
            dbapi_conn = conn.connection.dbapi_connection
            try:
                dbapi_conn.take_turn()
            except sqlite3.OperationalError as exc:
                # Raised as SQLAlchemy raises SQLite's own "database is locked": a 503 upstream.
                raise DBAPIOperationalError("BEGIN IMMEDIATE", None, exc) from None
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                dbapi_conn.give_turn()
                raise

        return engine
    # No pre-ping: it costs a round trip per checkout on the intake's hot path; connections
    # are recycled before server-side timeouts, and a dropped one fails that request with 503.
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_recycle=1800)


class Store:
    """The engine and a session factory; sessions are short and explicit."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine (see `make_engine`)."""
        self.engine = engine
        # The intake's writes: concurrent submissions share a transaction (one fsync).
        self.commits = GroupCommit(engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(
            engine.execution_options(**{READONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        """Create a store for a database URL."""
        return cls(make_engine(url, **kwargs))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def read(self) -> Session:
        """A session for reading only (the caller closes it)."""
        return self._readers()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
