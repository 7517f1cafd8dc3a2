"""Plain, frozen records of what storage/ reads back for the domain and the handlers (no
ORM objects outside storage/). Field names are the columns' names, so code written against
the ORM rows reads these unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TipRecord:
    id: int
    code: str
    channel: str
    commune_code: int
    province_code: int
    category: str
    urgent: bool
    description: str
    content_hash: str
    latitude: float | None
    longitude: float | None
    photo_count: int
    status: str
    queue_scope: str
    queue_chat_id: int | None
    created_at: datetime
    ack_due_at: datetime
    settle_due_at: datetime
    delivered_at: datetime | None
    updated_at: datetime
    owner_id: int | None
    owner_name: str | None
    acknowledged_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    transfers: int
    overdue_marked_at: datetime | None = None  # the card's "⚠️ Quá hạn" (reminders.py)
    # the settlement deadline's changes (bot/domain/deadlines.py)
    complex_at: datetime | None = None
    complex_reason: str | None = None
    extended_at: datetime | None = None
    extension_days: int | None = None
    extension_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One row of a tip's audit trail."""

    id: int
    tip_id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    event: str
    details: str | None


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """A relayed message a reply can be tied back to (a police question, a force-reply)."""

    id: int
    tip_id: int
    side: str
    key: str
    message_id: int
    purpose: str
    officer_id: int | None


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A police group's link to a commune or province."""

    id: int
    chat_id: int
    scope: str
    code: int
    province_code: int
    linked_by: int
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class PictureRecord:
    """A tip's sanitised picture with what the resident wrote under it."""

    data: bytes
    width: int
    height: int
    caption: str | None
