"""administration: bulk replays, the digest's sent days, indexes of the admin lists

Revision ID: 0005
Revises: 0004 (accounts; the lead relinks on merge)
Create Date: 2026-12-01 11:30:00

The indexes back the admin lists (submissions newest first, by status or town; failed
deliveries newest first) and the failure counts per office and day. A partial unique index
lets only one bulk replay be `running` at a time, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "bulk_replays",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rate_per_office", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_bulk_replays_one_running",
        "bulk_replays",
        ["status"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    op.create_table(
        "bulk_replay_items",
        sa.Column("bulk_replay_id", BIG_ID, nullable=False),
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.Column("previous_attempts", sa.Integer(), nullable=False),
        sa.Column("release_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["bulk_replay_id"], ["bulk_replays.id"]),
        sa.PrimaryKeyConstraint("bulk_replay_id", "delivery_id"),
    )
    op.create_index(
        "ix_bulk_replay_items_delivery_id", "bulk_replay_items", ["delivery_id"], unique=False
    )
    op.create_table(
        "digests_sent",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_index("ix_submissions_received", "submissions", ["received_at"])
    op.create_index("ix_submissions_status_received", "submissions", ["status", "received_at"])
    op.create_index(
        "ix_submissions_municipality_received", "submissions", ["municipality_ags", "received_at"]
    )
    op.create_index("ix_deliveries_status_updated", "deliveries", ["status", "updated_at"])
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_events_kind_at", table_name="events")
    op.drop_index("ix_deliveries_status_updated", table_name="deliveries")
    op.drop_index("ix_submissions_municipality_received", table_name="submissions")
    op.drop_index("ix_submissions_status_received", table_name="submissions")
    op.drop_index("ix_submissions_received", table_name="submissions")
    op.drop_table("digests_sent")
    op.drop_index("ix_bulk_replay_items_delivery_id", table_name="bulk_replay_items")
    op.drop_table("bulk_replay_items")
    op.drop_index("uq_bulk_replays_one_running", table_name="bulk_replays")
    op.drop_table("bulk_replays")
