"""payments count their provider errors in a row apart from their checks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:20:00

`attempts` counts every check of a payment, also the ones the provider answered with "still
open". The error cap (12 in a row, then one last check at the expiry) read it as errors in a
row, so a payment polled twelve times was parked until its expiry (72 h) by a single provider
error, however short: a citizen who had paid, and whose notification was lost, waited for
days. `check_errors` counts the errors in a row; any answer resets it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add payments.check_errors (0 for every existing payment)."""
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(
            sa.Column("check_errors", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Drop payments.check_errors."""
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("check_errors")
