"""SQLite writers take turns through the lock file beside the database, and give them back."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from store.engine import READONLY, make_engine


def _engine(tmp_path: Path, **kwargs: int) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}", **kwargs)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (name TEXT)"))
    return engine


def test_a_writer_waits_for_the_turn_another_process_holds(tmp_path: Path) -> None:
    """The lock file held elsewhere (another process's writer): this write waits, then commits."""
    engine = _engine(tmp_path)
    holder = os.open(f"{tmp_path / 'turns.db'}-writers.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES ('waited')"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not done.wait(0.5)
        # Readers take no turn: they read while the writer waits.
        with engine.execution_options(**{READONLY: True}).connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert done.wait(10)
    writer.join(10)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM t")).scalars().all() == ["waited"]
    engine.dispose()


def test_commit_and_rollback_give_the_turn_back(tmp_path: Path) -> None:
    """After a commit, a rollback and a failed statement, the lock file is free again."""
    engine = _engine(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('a')"))
    with pytest.raises(OperationalError), engine.begin() as conn:
        conn.execute(text("INSERT INTO missing VALUES (1)"))
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES ('b')"))
        conn.rollback()
    probe = os.open(f"{tmp_path / 'turns.db'}-writers.lock", os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a turn was kept
    finally:
        os.close(probe)
    engine.dispose()


def test_a_turn_never_given_back_ends_in_database_is_locked(tmp_path: Path) -> None:
    """A writer that never gives its turn back: the next one fails after the busy timeout."""
    engine = _engine(tmp_path, sqlite_busy_timeout_ms=300)
    holder = os.open(f"{tmp_path / 'turns.db'}-writers.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(OperationalError, match="database is locked"), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES ('x')"))
    finally:
        os.close(holder)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('y')"))
    engine.dispose()
