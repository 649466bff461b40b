"""indexes on when deliveries and payments last changed: the daily report of a past moment

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:30:00

The daily report reads a past day's state from the rows not changed since that moment and,
for the rows changed after it, from their events (domain/admin/history.py). "Changed after
the moment" is a range on updated_at; without an index it reads every delivery and payment
ever stored, at every report and every daily mail (tests/store/test_query_plans.py).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index deliveries and payments by when they last changed."""
    op.create_index("ix_deliveries_updated", "deliveries", ["updated_at"])
    op.create_index("ix_payments_updated", "payments", ["updated_at"])


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_payments_updated", table_name="payments")
    op.drop_index("ix_deliveries_updated", table_name="deliveries")
