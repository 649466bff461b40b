"""Turns at SQLite's one write lock: every writer of a database file queues through a lock file.

SQLite lets one transaction write at a time. A writer that finds the lock taken retries in
SQLite's busy handler, which sleeps 1, 2, 5 ... up to 100 ms between tries; a process that
commits back to back (the web process's committer, store/group_commit.py) re-takes the lock
in between, and the others starve: p99 3.0 s for the intake of the second web process, and
deliveries falling seconds behind intake. Here each write transaction first takes its turn
on `<database>-writers.lock` (flock, one descriptor per connection), which a writer releases
right after its COMMIT or ROLLBACK; a waiter looks again every half millisecond. SQLite's own
lock and busy timeout stay as they were, for writers that know nothing of the turns (the
sqlite3 shell, an older release).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

#: How often a waiting writer looks again: short, so that no turn is left unused for long.
POLL_S = 0.0005


class TurnConnection(sqlite3.Connection):
    """A sqlite3 connection that takes a writer's turn before BEGIN IMMEDIATE."""

    turns_path: str | None = None
    turns_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Open the connection and, for a database file, its own descriptor of the lock file."""
        super().__init__(*args, **kwargs)
        self._turn_fd: int | None = None
        self._holding = False
        if self.turns_path is not None:
            self._turn_fd = os.open(self.turns_path, os.O_RDWR | os.O_CREAT, 0o600)

    def take_turn(self) -> None:
        """Wait for this connection's turn to write; raises "database is locked" on timeout."""
        if self._turn_fd is None or self._holding:
            return
        deadline = time.monotonic() + self.turns_timeout_s
        while True:
            try:
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(POLL_S)

    def give_turn(self) -> None:
        """Let the next writer go (no-op when this connection holds no turn)."""
        if self._turn_fd is not None and self._holding:
            self._holding = False
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        """COMMIT, then give the turn to the next writer."""
        try:
            super().commit()
        finally:
            self.give_turn()

    def rollback(self) -> None:
        """ROLLBACK, then give the turn to the next writer."""
        try:
            super().rollback()
        finally:
            self.give_turn()

    def close(self) -> None:
        """Close the connection and its lock file descriptor."""
        try:
            super().close()
        finally:
            self.give_turn()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None


def connection_class(database: str | None, timeout_s: float) -> type[TurnConnection]:
    """The connection class for one database: turns beside a file, none for :memory:."""
    path = None if not database or database == ":memory:" else f"{database}-writers.lock"
    return type(
        "TurnConnection",
        (TurnConnection,),
        {"turns_path": path, "turns_timeout_s": timeout_s},
    )
