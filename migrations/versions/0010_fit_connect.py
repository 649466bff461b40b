"""FIT-Connect deliveries: the submission and case ids and the channel's progress per delivery

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:00:00

A FIT-Connect delivery is created at the Submission API before its attachments are uploaded;
the ids are committed first so that an attempt that crashes half-way is resumed, never
duplicated (ADR 15). The case id is indexed: a callback names the case it is about. The new
delivery status `awaiting_accept` fits the existing status column (16 characters).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the FIT-Connect columns to deliveries."""
    op.add_column("deliveries", sa.Column("fit_submission_id", sa.String(36), nullable=True))
    op.add_column("deliveries", sa.Column("fit_case_id", sa.String(36), nullable=True))
    op.add_column("deliveries", sa.Column("fit_state", sa.JSON(), nullable=True))
    op.create_index("ix_deliveries_fit_case_id", "deliveries", ["fit_case_id"])


def downgrade() -> None:
    """Drop the FIT-Connect columns."""
    op.drop_index("ix_deliveries_fit_case_id", table_name="deliveries")
    op.drop_column("deliveries", "fit_state")
    op.drop_column("deliveries", "fit_case_id")
    op.drop_column("deliveries", "fit_submission_id")
