"""Scratch PostgreSQL databases: made next to the administrative one and dropped afterwards."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from harness.postgres import (
    admin_engine,
    create_database,
    drop_databases,
    scratch_database,
    unique_name,
)

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ADMIN_URL, reason="PostgreSQL not configured (TEST_POSTGRES_URL)"),
]


def databases(prefix: str) -> set[str]:
    """The names of the server's databases starting with `prefix`."""
    with admin_engine(ADMIN_URL) as admin, admin.connect() as conn:
        rows = conn.execute(text("SELECT datname FROM pg_database")).scalars()
        return {str(name) for name in rows if str(name).startswith(prefix)}


def test_scratch_database_is_dropped_afterwards() -> None:
    """The database exists and takes writes inside the block, and is gone after it."""
    prefix = unique_name("harness_test_") + "_"
    with scratch_database(ADMIN_URL, prefix) as url:
        (name,) = databases(prefix)
        assert url.endswith(f"/{name}")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x int)"))
        engine.dispose()
    assert databases(prefix) == set()


def test_scratch_database_is_dropped_with_connections_open() -> None:
    """A connection the caller left open does not keep the database alive (WITH FORCE)."""
    prefix = unique_name("harness_test_") + "_"
    engine = None
    with scratch_database(ADMIN_URL, prefix) as url:
        engine = create_engine(url)
        open_conn = engine.connect()
        open_conn.execute(text("SELECT 1"))
    assert databases(prefix) == set()
    engine.dispose()


def test_template_copy_and_drop_by_prefix() -> None:
    """A database made from a template holds its tables; drop_databases removes both."""
    prefix = unique_name("harness_test_") + "_"
    url = create_database(ADMIN_URL, f"{prefix}tpl")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
        conn.execute(text("INSERT INTO t VALUES (7)"))
    engine.dispose()
    copy = create_engine(create_database(ADMIN_URL, f"{prefix}copy", template=f"{prefix}tpl"))
    with copy.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 7
    copy.dispose()
    assert sorted(drop_databases(ADMIN_URL, prefix)) == [f"{prefix}copy", f"{prefix}tpl"]
    assert databases(prefix) == set()
