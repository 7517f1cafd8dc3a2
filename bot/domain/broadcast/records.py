"""Plain records of campaigns, their runs and deliveries (storage/campaigns.py fills them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: int
    key: str | None  # built-ins: their key in the campaigns file ("19-08")
    kind: str  # builtin | custom
    title: str
    text_vi: str
    text_en: str | None
    has_photo: bool
    scope: str  # all | province | commune
    scope_code: int | None
    send_at: datetime | None
    status: str  # yearly | draft | scheduled | paused | cancelled | running | done | expired

    def text(self, language: str | None) -> str:
        return self.text_en if language == "en" and self.text_en else self.text_vi

    @property
    def scope_label(self) -> str:
        return self.scope if self.scope_code is None else f"{self.scope}:{self.scope_code}"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    campaign_id: int
    year: int
    status: str  # running | paused | cancelled | done
    audience: int
    started_at: datetime
    finished_at: datetime | None
    progress_chat_id: int | None
    progress_message_id: int | None


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    sealed_chat: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery ended: sent, failed (given up) or inactive (403/400: the subscriber
    is made inactive)."""

    delivery_id: int
    subscriber_id: int
    status: str
    attempts: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunCounts:
    sent: int = 0
    failed: int = 0
    inactive: int = 0
    pending: int = 0  # written, not yet marked
    audience: int = 0  # active subscribers in scope when the run started

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.inactive

    @property
    def remaining(self) -> int:
        return max(self.audience - self.done, self.pending, 0)
