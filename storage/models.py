"""SQLModel tables. The schema itself is created only by the Alembic migrations in
``storage/migrations``; a test checks that the migrations and these models agree.

Identity rule: no table here holds a resident's Telegram/Zalo id, username, name or phone.
Residents are known by a keyed pseudonym (see ``bot.domain.identity``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class GroupLink(SQLModel, table=True):
    """A police chat group acting as the queue of a commune, or the escalation group of a
    province. One group per commune/province; one link per group."""

    __tablename__ = "group_links"
    __table_args__ = (sa.UniqueConstraint("scope", "code", name="uq_group_links_scope_code"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger, unique=True, index=True)
    scope: str = Field(max_length=16)  # "commune" | "province"
    code: int  # commune code or province code, per scope
    province_code: int = Field(index=True)
    linked_by: int = Field(sa_type=sa.BigInteger)  # the admin's Telegram id (police side)
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Resident(SQLModel, table=True):
    """A resident's preferences, keyed by pseudonym (never by platform id)."""

    __tablename__ = "residents"

    pseudonym: str = Field(primary_key=True, max_length=64)
    language: str | None = Field(default=None, max_length=8)
    last_commune_code: int | None = None
    subscribed: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InboundUpdate(SQLModel, table=True):
    """Webhook updates persisted before Telegram gets its 200 and deduplicated by update_id.
    The payload (which holds platform ids) is wiped once handled; bare rows are purged later."""

    __tablename__ = "inbound_updates"

    update_id: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    payload: str | None = Field(default=None, sa_type=sa.Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Draft(SQLModel, table=True):
    """A tip being written. Kept in the database so a restart does not lose the resident's
    place; expired drafts are deleted by a scheduled job."""

    __tablename__ = "drafts"

    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(max_length=64, unique=True, index=True)
    step: str = Field(max_length=16)
    language: str = Field(default="vi", max_length=8)
    commune_code: int | None = None
    category: str | None = Field(default=None, max_length=32)
    urgent: bool = False
    description: str | None = Field(default=None, sa_type=sa.Text)
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


OPEN_TIP_CONDITION = "status IN ('new', 'acknowledged', 'verifying')"  # the partial index's


class Tip(SQLModel, table=True):
    """A committed tip. No identity of the reporter here (see TipReporter)."""

    __tablename__ = "tips"
    __table_args__ = (  # for the KPIs (storage/kpi.py; migration 0007)
        sa.Index("ix_tips_commune_created", "commune_code", "created_at"),
        sa.Index(  # covering: a province's period is counted from the index alone
            "ix_tips_province_kpi", "province_code", "created_at", "status", "category",
            "commune_code", "acknowledged_at", "closed_at", "ack_due_at", "settle_due_at"),
        sa.Index(
            "ix_tips_open_area",
            "province_code", "status", "commune_code", "ack_due_at", "settle_due_at",
            sqlite_where=sa.text(OPEN_TIP_CONDITION),
            postgresql_where=sa.text(OPEN_TIP_CONDITION),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True, index=True)
    channel: str = Field(max_length=16)  # "telegram" | "zalo"
    commune_code: int  # indexed with created_at (below)
    province_code: int
    category: str = Field(max_length=32)
    urgent: bool = False
    description: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64, index=True)
    latitude: float | None = None
    longitude: float | None = None
    photo_count: int = 0
    status: str = Field(default="new", max_length=16, index=True)
    queue_scope: str = Field(max_length=16)  # where it was routed: commune | province | ops | none
    queue_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    ack_due_at: datetime = Field(sa_type=UTCDateTime)
    settle_due_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # triage (police side: officers are identified, accountability)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    owner_name: str | None = Field(default=None, max_length=128)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=32)
    transfers: int = 0
    # the 100% target (BLTTHS 2015 Art. 147): a complex case (2 months), one extension
    complex_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    complex_reason: str | None = Field(default=None, sa_type=sa.Text)
    extended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extension_days: int | None = None
    extension_reason: str | None = Field(default=None, sa_type=sa.Text)
    overdue_marked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # card's mark
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # province told


class Photo(SQLModel, table=True):
    """A sanitised picture (JPEG rebuilt from pixels), first on a draft, then on its tip."""

    __tablename__ = "photos"

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int | None = Field(
        default=None, foreign_key="drafts.id", index=True, ondelete="CASCADE"
    )
    tip_id: int | None = Field(
        default=None, foreign_key="tips.id", index=True, ondelete="CASCADE"
    )
    position: int = 0
    data: bytes = Field(sa_type=sa.LargeBinary)
    width: int
    height: int
    caption: str | None = Field(default=None, sa_type=sa.Text)  # the resident's own words
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TipReporter(SQLModel, table=True):
    """The only link from a tip back to the person: pseudonym and the sealed (encrypted)
    chat to reply to. Kept apart from the tip and purged on the retention schedule."""

    __tablename__ = "tip_reporters"

    tip_id: int = Field(primary_key=True, foreign_key="tips.id", ondelete="CASCADE")
    pseudonym: str = Field(max_length=64, index=True)
    sealed_chat: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    purge_after: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class TipEvent(SQLModel, table=True):
    """Append-only audit trail. The code has no update or delete path for these rows and
    database triggers refuse both."""

    __tablename__ = "tip_events"

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor_kind: str = Field(max_length=16)  # resident | officer | admin | system
    actor_id: int | None = Field(default=None, sa_type=sa.BigInteger)  # officers only
    actor_name: str | None = Field(default=None, max_length=128)  # officers only
    event: str = Field(max_length=32)
    details: str | None = Field(default=None, sa_type=sa.Text)  # JSON


class OutboxMessage(SQLModel, table=True):
    """A message the bot owes somebody, sent by the outbox worker with retries."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # tip_card | receipt | reporter_notice | card_refresh | ...
    tip_id: int | None = Field(default=None, foreign_key="tips.id", index=True)
    payload: str = Field(default="{}", sa_type=sa.Text)  # JSON; progress of multi-part sends
    status: str = Field(default="pending", max_length=16, index=True)  # pending|sent|failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # who holds the lease ("<host>#<run id>" of the worker that claimed the row); cleared when
    # the attempt ends in a retry. Set on a pending row = an attempt that never finished (its
    # worker died): the message may have gone out already.
    lease_owner: str | None = Field(default=None, max_length=64)


class TipCard(SQLModel, table=True):
    """Where a tip's card was posted, so it can be edited in place later."""

    __tablename__ = "tip_cards"

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True)
    chat_id: int = Field(sa_type=sa.BigInteger, index=True)
    message_id: int = Field(sa_type=sa.BigInteger)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Ban(SQLModel, table=True):
    """A banned reporter, by pseudonym; admins ban through a tip code and never see who."""

    __tablename__ = "bans"

    pseudonym: str = Field(primary_key=True, max_length=64)
    banned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    banned_by: int = Field(sa_type=sa.BigInteger)
    tip_code: str = Field(max_length=16)


class RelayMessage(SQLModel, table=True):
    """A message relayed for a tip, so a reply to it can be tied back to the tip: a police
    question in the reporter's chat (keyed by pseudonym, never by chat id), or an officer's
    force-reply prompt in a group."""

    __tablename__ = "relay_messages"
    __table_args__ = (sa.UniqueConstraint("side", "key", "message_id", name="uq_relay_message"),)

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True)
    side: str = Field(max_length=16)  # "reporter" | "group"
    key: str = Field(max_length=64)  # reporter: pseudonym; group: chat id
    message_id: int = Field(sa_type=sa.BigInteger)
    purpose: str = Field(max_length=16)  # question | ask_prompt | dup_prompt | move_prompt
    officer_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CommuneAreaRow(SQLModel, table=True):
    """An imported commune boundary (GeoJSON MultiPolygon) for location routing."""

    __tablename__ = "commune_areas"

    commune_code: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    geometry: str = Field(sa_type=sa.Text)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    """A scheduled round (a reminder digest, an escalation, a morning summary) for one scope
    (a group), written before it is sent: a round is sent at most once, and one missed
    while the bot was down is found and run once when it is back."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.UniqueConstraint("job", "scope", "round_key", name="uq_job_runs_round"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=32)
    scope: str = Field(max_length=64)  # e.g. "chat:-100123" (a group), "province:10"
    round_key: str = Field(max_length=64)  # e.g. "2026-12-02T07:30" or "ack50:2026-12-02T10"
    status: str = Field(max_length=16)  # pending | sent | skipped
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Subscriber(SQLModel, table=True):
    """A resident who opted in to announcements (campaigns), by pseudonym; the chat to write
    to is sealed (encrypted) as for tips. Inactive after a 403/400 or an opt-out; only a new
    opt-in makes it active again."""

    __tablename__ = "subscribers"

    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(max_length=64, unique=True, index=True)
    sealed_chat: str = Field(sa_type=sa.Text)
    scope: str = Field(max_length=16)  # commune | province | all
    language: str | None = Field(default=None, max_length=8)  # at opt-in (a later choice wins)
    commune_code: int | None = None
    province_code: int | None = None
    active: bool = Field(default=True, index=True)
    subscribed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    inactive_reason: str | None = Field(default=None, max_length=32)  # opt_out | blocked | ...


class Campaign(SQLModel, table=True):
    """An announcement: a built-in yearly one (``key`` = its entry in the campaigns file) or
    a custom one (text, one photo, scope, time)."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, max_length=32, unique=True)  # built-ins only
    kind: str = Field(max_length=16)  # builtin | custom
    title: str = Field(max_length=128)
    text_vi: str = Field(sa_type=sa.Text)
    text_en: str | None = Field(default=None, sa_type=sa.Text)
    photo: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    photo_file_id: str | None = Field(default=None, max_length=256)  # after the first upload
    scope: str = Field(default="all", max_length=16)  # all | province | commune
    scope_code: int | None = None
    send_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # custom ones
    status: str = Field(max_length=16, index=True)  # yearly|draft|scheduled|paused|...
    created_by: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignRun(SQLModel, table=True):
    """One sending of a campaign: (campaign, year), written before the first send."""

    __tablename__ = "campaign_runs"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "year", name="uq_campaign_runs_year"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    year: int
    status: str = Field(max_length=16, index=True)  # running | paused | cancelled | done
    cursor: int = 0  # the last subscriber id whose delivery row was written
    audience: int = 0  # active subscribers in scope when the run started
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    progress_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    progress_message_id: int | None = Field(default=None, sa_type=sa.BigInteger)


class CampaignDelivery(SQLModel, table=True):
    """One (run, subscriber) send: written pending before it is attempted, marked after."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "subscriber_id", name="uq_campaign_deliveries"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="campaign_runs.id", index=True)
    subscriber_id: int = Field(foreign_key="subscribers.id")
    status: str = Field(default="pending", max_length=16)  # pending|sent|failed|inactive
    attempts: int = 0
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=120)
