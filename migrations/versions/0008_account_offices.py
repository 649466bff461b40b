"""accounts and tokens limited to offices; one-time links to set a password

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 02:00:00

Only new tables (issue 19): `account_offices` and `api_token_offices` limit an account or a
staff token to some offices (no row: every office, as before), `password_links` keeps the
SHA-256 of one-time links with which a new account's holder sets the password.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "account_offices",
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "office_id"),
    )
    op.create_table(
        "api_token_offices",
        sa.Column("token_id", BIG_ID, nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("token_id", "office_id"),
    )
    op.create_table(
        "password_links",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("password_links") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_links_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    """Drop the three tables."""
    with op.batch_alter_table("password_links") as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_links_account_id"))
    op.drop_table("password_links")
    op.drop_table("api_token_offices")
    op.drop_table("account_offices")
