"""Alembic environment: runs migrations on the connection the caller passes in."""

from __future__ import annotations

from alembic import context

import store.accounts  # noqa: F401 - registers the administration tables on Base
from store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `python -m bridge migrate` (store.migrations)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
