"""Triage: owner, acknowledgement/closing times, outcome, transfers; relayed messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("owner_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("owner_name", sa.String(128), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", TZ, nullable=True))
        batch.add_column(sa.Column("closed_at", TZ, nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("transfers", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "relay_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id"), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("officer_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("side", "key", "message_id", name="uq_relay_message"),
    )
    op.create_index("ix_relay_messages_tip_id", "relay_messages", ["tip_id"])


def downgrade() -> None:
    op.drop_index("ix_relay_messages_tip_id", table_name="relay_messages")
    op.drop_table("relay_messages")
    with op.batch_alter_table("tips") as batch:
        for column in ("transfers", "outcome", "closed_at", "acknowledged_at", "owner_name",
                       "owner_id"):
            batch.drop_column(column)
