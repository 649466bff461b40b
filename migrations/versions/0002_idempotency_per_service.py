"""idempotency keys per (sender, service, key) and the fingerprint of what was accepted

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:30:00

Existing rows keep their keys and get no fingerprint (NULL): a repeat of a submission stored
before this revision is answered with the original whatever its content, as it was when it
was accepted (ADR 6). Downgrading fails if one sender used the same key for two services.

SQLite cannot drop a constraint in place, so the table is rebuilt: copied aside, dropped and
created anew. Deferring the foreign keys for this transaction lets the children point at no
table for a moment; inserting the rows again satisfies them before the commit checks. The
AUTOINCREMENT counter is carried over, so no reference number is ever handed out twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD = ("uq_submissions_sender_key", ["sender", "idempotency_key"])
NEW = ("uq_submissions_sender_service_key", ["sender", "service", "idempotency_key"])
COLUMNS = (
    "id, reference_prefix, reference_year, service, schema, sender, idempotency_key, "
    "municipality_ags, status, flags, data, received_at, updated_at"
)


def _columns(with_fingerprint: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("reference_prefix", sa.String(length=4), nullable=False),
        sa.Column("reference_year", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("schema", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("municipality_ags", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]
    if with_fingerprint:
        columns.append(sa.Column("fingerprint", sa.String(length=64), nullable=True))
    return columns


def _rebuild_sqlite(unique: tuple[str, list[str]], with_fingerprint: bool) -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    sequence = bind.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = 'submissions'"
    ).scalar()
    bind.exec_driver_sql("CREATE TABLE _submissions_0002 AS SELECT * FROM submissions")
    op.drop_table("submissions")
    op.create_table(
        "submissions",
        *_columns(with_fingerprint),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(*unique[1], name=unique[0]),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_submissions_service_received", "submissions", ["service", "received_at"], unique=False
    )
    bind.exec_driver_sql(
        f"INSERT INTO submissions ({COLUMNS}) SELECT {COLUMNS} FROM _submissions_0002"  # noqa: S608
    )
    bind.exec_driver_sql("DROP TABLE _submissions_0002")
    if sequence is not None:
        # The copy only carries the highest number still stored; the counter may be ahead.
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'submissions'")
        bind.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) "
            "SELECT 'submissions', max(?, coalesce(max(id), 0)) FROM submissions",
            (int(sequence),),
        )


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(NEW, with_fingerprint=True)
        return
    op.add_column("submissions", sa.Column("fingerprint", sa.String(length=64), nullable=True))
    op.drop_constraint(OLD[0], "submissions", type_="unique")
    op.create_unique_constraint(NEW[0], "submissions", NEW[1])


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(OLD, with_fingerprint=False)
        return
    op.drop_constraint(NEW[0], "submissions", type_="unique")
    op.create_unique_constraint(OLD[0], "submissions", OLD[1])
    op.drop_column("submissions", "fingerprint")
