"""Tips: drafts, tips, photos, reporter links, audit events, outbox, cards, bans, areas.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("commune_code", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_drafts_pseudonym", "drafts", ["pseudonym"], unique=True)
    op.create_table(
        "tips",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("commune_code", sa.Integer(), nullable=False),
        sa.Column("province_code", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("photo_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("queue_scope", sa.String(16), nullable=False),
        sa.Column("queue_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ack_due_at", TZ, nullable=False),
        sa.Column("settle_due_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    for column, unique in (("code", True), ("commune_code", False), ("province_code", False),
                           ("status", False), ("content_hash", False), ("created_at", False)):
        op.create_index(f"ix_tips_{column}", "tips", [column], unique=unique)
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("draft_id", sa.Integer(), sa.ForeignKey("drafts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id", ondelete="CASCADE"), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_photos_draft_id", "photos", ["draft_id"])
    op.create_index("ix_photos_tip_id", "photos", ["tip_id"])
    op.create_table(
        "tip_reporters",
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("sealed_chat", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("purge_after", TZ, nullable=True),
    )
    op.create_index("ix_tip_reporters_pseudonym", "tip_reporters", ["pseudonym"])
    op.create_index("ix_tip_reporters_created_at", "tip_reporters", ["created_at"])
    op.create_index("ix_tip_reporters_purge_after", "tip_reporters", ["purge_after"])
    op.create_table(
        "tip_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(128), nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
    )
    op.create_index("ix_tip_events_tip_id", "tip_events", ["tip_id"])
    _append_only_triggers()
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id"), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
    )
    op.create_index("ix_outbox_tip_id", "outbox", ["tip_id"])
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
    op.create_table(
        "tip_cards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tip_id", sa.Integer(), sa.ForeignKey("tips.id"), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_tip_cards_tip_id", "tip_cards", ["tip_id"])
    op.create_index("ix_tip_cards_chat_id", "tip_cards", ["chat_id"])
    op.create_table(
        "bans",
        sa.Column("pseudonym", sa.String(64), primary_key=True),
        sa.Column("banned_at", TZ, nullable=False),
        sa.Column("banned_by", sa.BigInteger(), nullable=False),
        sa.Column("tip_code", sa.String(16), nullable=False),
    )
    op.create_table(
        "commune_areas",
        sa.Column("commune_code", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("imported_at", TZ, nullable=False),
    )


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER tip_events_no_{action.lower()} BEFORE {action} ON tip_events "
                "BEGIN SELECT RAISE(ABORT, 'tip_events is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION tip_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'tip_events is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER tip_events_append_only BEFORE UPDATE OR DELETE ON tip_events "
        "FOR EACH ROW EXECUTE FUNCTION tip_events_append_only()"
    )


def downgrade() -> None:
    op.drop_table("commune_areas")
    op.drop_table("bans")
    op.drop_table("tip_cards")
    op.drop_table("outbox")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS tip_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS tip_events_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS tip_events_append_only ON tip_events")
        op.execute("DROP FUNCTION IF EXISTS tip_events_append_only()")
    op.drop_table("tip_events")
    op.drop_table("tip_reporters")
    op.drop_table("photos")
    op.drop_table("tips")
    op.drop_table("drafts")
