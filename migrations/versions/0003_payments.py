"""payments, the journal of provider callbacks, and deliveries that are held or notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:15:00

Existing deliveries become `kind = 'case'` (the server default) with no payment. The unique
index on `deliveries.payment_id` allows one payment notice per paid payment; case deliveries
have NULL there, which both stores leave out of the uniqueness.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "submission_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=200), nullable=True),
        sa.Column("transaction_reference", sa.String(length=200), nullable=True),
        sa.Column("pay_url", sa.Text(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "transaction_id", name="uq_payments_provider_transaction"),
    )
    op.create_index("ix_payments_check", "payments", ["status", "next_check_at"], unique=False)
    op.create_index("ix_payments_submission_id", "payments", ["submission_id"], unique=False)
    op.create_table(
        "payment_callbacks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.String(length=32), nullable=True),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_payment_callbacks_provider", "payment_callbacks", ["provider"], unique=False
    )
    op.create_index(
        "ix_payment_callbacks_payment_id", "payment_callbacks", ["payment_id"], unique=False
    )
    op.add_column(
        "deliveries",
        sa.Column("kind", sa.String(length=16), server_default="case", nullable=False),
    )
    op.add_column("deliveries", sa.Column("payment_id", sa.String(length=32), nullable=True))
    op.create_index("uq_deliveries_payment_id", "deliveries", ["payment_id"], unique=True)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("uq_deliveries_payment_id", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("payment_id")
        batch_op.drop_column("kind")
    op.drop_index("ix_payment_callbacks_payment_id", table_name="payment_callbacks")
    op.drop_index("ix_payment_callbacks_provider", table_name="payment_callbacks")
    op.drop_table("payment_callbacks")
    op.drop_index("ix_payments_submission_id", table_name="payments")
    op.drop_index("ix_payments_check", table_name="payments")
    op.drop_table("payments")
