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
