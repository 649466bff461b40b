"""Scratch PostgreSQL databases, created and dropped through an administrative URL.

The administrative URL names a database the caller may connect to (e.g. `test`); scratch
databases are made on the same server, next to it. Names are quoted but not escaped, so callers
use plain identifiers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from store.engine import normalise_database_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def admin_engine(admin_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the administrative database (CREATE DATABASE needs it)."""
    engine = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()


def execute(admin_url: str, *statements: str) -> None:
    """Run statements one after the other on the administrative database, in autocommit."""
    with admin_engine(admin_url) as admin, admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))


def database_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the administrative URL's server."""
    return normalise_database_url(admin_url).rsplit("/", 1)[0] + f"/{name}"


def create_database(
    admin_url: str, name: str, *, template: str | None = None, replace: bool = False
) -> str:
    """Create database `name` (a copy of `template`, if given; dropping an old one first, if
    `replace`) and return its URL."""
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    drop = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'] if replace else []
    execute(admin_url, *drop, create)
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` if it exists, ending the connections still open to it."""
    execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_databases(admin_url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with `prefix`; returns their names."""
    with admin_engine(admin_url) as admin, admin.connect() as conn:
        names = [
            str(n)
            for n in conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{prefix}%"}
            ).scalars()
        ]
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return names


def unique_name(prefix: str) -> str:
    """`prefix` and eight random hex digits, for a database no other run uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database named `prefix` + random digits; dropped when the block ends."""
    name = unique_name(prefix)
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)
