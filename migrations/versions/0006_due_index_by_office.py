"""the due index leads with status, then office: flat sweeps and claims with any history

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:20:00

(status, next_attempt_at) served the sweeper and the claim on a young store. Once a store
holds a long history of delivered cases and has statistics (PostgreSQL's autovacuum analyses
on its own; SQLite after ANALYZE), a planner may prefer reading the whole office index to
avoid a sort for the sweeper's DISTINCT office_id (tests/store/test_query_plans.py). With
(status, office_id, next_attempt_at) both queries are one range over the pending rows.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the due index by one that leads with status, then office."""
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.create_index(
            "ix_deliveries_due_by_office", ["status", "office_id", "next_attempt_at"]
        )
        batch_op.drop_index("ix_deliveries_due")


def downgrade() -> None:
    """Back to the (status, next_attempt_at) index."""
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at"])
        batch_op.drop_index("ix_deliveries_due_by_office")
