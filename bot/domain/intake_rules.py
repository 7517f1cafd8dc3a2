"""The intake's rules as plain functions on plain data: which step accepts what, the ban,
the hourly and daily rate limits, the duplicate merge. No database here (storage/intake.py
reads and writes; bot/domain/intake.py puts the two together); tests/test_intake_rules.py
checks these without one."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.text import fold

DRAFT_TTL = timedelta(hours=2)
MAX_DESCRIPTION = 4000
MAX_PHOTOS = 10
# What a resident writes under a picture travels with it to the group, in the photo's own
# caption (Telegram allows 1,024 characters; "Ảnh 1/10 – tin báo XXXX-XXXX" comes first).
MAX_CAPTION = 900
DUPLICATE_WINDOW = timedelta(minutes=10)


class Step(StrEnum):
    COMMUNE = "commune"
    CATEGORY = "category"
    URGENCY = "urgency"
    DESCRIPTION = "description"
    ATTACHMENTS = "attachments"
    REVIEW = "review"


# pictures are added at the attachments step only (and a restart deletes the draft with them)
PICTURE_STEPS = frozenset({Step.ATTACHMENTS, Step.REVIEW})


class IntakeError(Exception):
    """A request the intake refuses; ``reason`` picks the sentence the resident sees."""

    def __init__(self, reason: str, **details: int | str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    tips_per_hour: int = 5
    tips_per_day: int = 20


@dataclass(frozen=True, slots=True)
class DraftRecord:
    """A draft as stored (what the rules look at)."""

    id: int
    pseudonym: str
    step: str
    language: str
    commune_code: int | None
    category: str | None
    urgent: bool
    description: str | None
    latitude: float | None
    longitude: float | None
    updated_at: datetime
    captions: tuple[str | None, ...] = ()  # its pictures' captions, in order (one per picture)


@dataclass(frozen=True, slots=True)
class PastTip:
    """One of a resident's recent tips, as the rate limits and duplicate check see it."""

    tip_id: int
    code: str
    content_hash: str
    reported_at: datetime
    created_at: datetime


def live(draft: DraftRecord | None, now: datetime) -> DraftRecord | None:
    """The draft unless it idled longer than ``DRAFT_TTL`` (an expired one counts as gone)."""
    if draft is None or draft.updated_at < now - DRAFT_TTL:
        return None
    return draft


def require_step(
    draft: DraftRecord | None, now: datetime, expected: Collection[Step]
) -> DraftRecord:
    """The live draft if it is at one of the ``expected`` steps (any step if empty)."""
    found = live(draft, now)
    if found is None:
        raise IntakeError("no_draft")
    if expected and found.step not in expected:
        raise IntakeError("wrong_step", step=found.step)
    return found


def check_location(latitude: float, longitude: float) -> None:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise IntakeError("bad_location")


def appended_text(description: str | None, text: str) -> str:
    """The description with more text (sent while attaching) appended; too long refused."""
    text = text.strip()
    if not text:
        raise IntakeError("empty_description")
    combined = f"{description}\n{text}" if description else text
    if len(combined) > MAX_DESCRIPTION:
        raise IntakeError("text_too_long", limit=MAX_DESCRIPTION, length=len(combined))
    return combined


def check_picture_room(count: int) -> None:
    if count >= MAX_PHOTOS:
        raise IntakeError("too_many_photos", limit=MAX_PHOTOS)


def checked_caption(caption: str | None) -> str | None:
    """A picture's caption as kept: stripped, None when empty; too long is refused (the
    picture with it: nothing is added)."""
    caption = (caption or "").strip()
    if len(caption) > MAX_CAPTION:
        raise IntakeError("caption_too_long", limit=MAX_CAPTION, length=len(caption))
    return caption or None


def check_banned(banned: bool) -> None:
    if banned:
        raise IntakeError("banned")


def check_rate(past: Sequence[PastTip], now: datetime, limits: IntakeLimits) -> None:
    """At most ``tips_per_hour`` in the last hour and ``tips_per_day`` in the last day."""
    for window, limit, reason in (
        (timedelta(hours=1), limits.tips_per_hour, "rate_hour"),
        (timedelta(days=1), limits.tips_per_day, "rate_day"),
    ):
        if sum(1 for tip in past if tip.reported_at > now - window) >= limit:
            raise IntakeError(reason, limit=limit)


def check_submit(
    draft: DraftRecord | None, *, banned: bool, past: Sequence[PastTip], now: datetime,
    limits: IntakeLimits,
) -> DraftRecord:
    """Why this submit is refused (raised), else the draft to commit."""
    found = require_step(draft, now, ())
    if found.step != Step.REVIEW:
        raise IntakeError("wrong_step", step=found.step)
    check_banned(banned)
    check_rate(past, now, limits)
    assert found.commune_code is not None and found.category is not None
    assert found.description is not None
    return found


def content_hash(commune_code: int | None, category: str | None, description: str | None) -> str:
    """What makes two tips "the same" (case, accents and spacing of the text aside)."""
    text = f"{commune_code}|{category}|{fold(description or '')}"
    return hashlib.sha256(text.encode()).hexdigest()


def duplicate_of(past: Sequence[PastTip], digest: str, now: datetime) -> PastTip | None:
    """The newest identical tip sent within ``DUPLICATE_WINDOW``: merged into, not re-sent."""
    same = [tip for tip in past
            if tip.content_hash == digest and tip.created_at > now - DUPLICATE_WINDOW]
    return max(same, key=lambda tip: tip.tip_id, default=None)
