"""Foundation: group links, residents (by pseudonym), inbound webhook updates.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("province_code", sa.Integer(), nullable=False),
        sa.Column("linked_by", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scope", "code", name="uq_group_links_scope_code"),
    )
    op.create_index("ix_group_links_chat_id", "group_links", ["chat_id"], unique=True)
    op.create_index("ix_group_links_province_code", "group_links", ["province_code"])
    op.create_table(
        "residents",
        sa.Column("pseudonym", sa.String(length=64), primary_key=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("last_commune_code", sa.Integer(), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbound_updates",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("inbound_updates")
    op.drop_table("residents")
    op.drop_index("ix_group_links_province_code", table_name="group_links")
    op.drop_index("ix_group_links_chat_id", table_name="group_links")
    op.drop_table("group_links")
