"""The intake's rules on plain data, no database: steps, the ban, the hourly and daily
limits, the duplicate merge, the picture count, text and captions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.intake_rules import (
    DRAFT_TTL,
    DUPLICATE_WINDOW,
    MAX_CAPTION,
    MAX_DESCRIPTION,
    MAX_PHOTOS,
    DraftRecord,
    IntakeError,
    IntakeLimits,
    PastTip,
    Step,
    appended_text,
    check_location,
    check_picture_room,
    check_rate,
    check_submit,
    checked_caption,
    content_hash,
    duplicate_of,
    live,
    require_step,
)
from bot.domain.routing import Destination, Router

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
LIMITS = IntakeLimits(tips_per_hour=2, tips_per_day=3)


def draft(step: Step = Step.REVIEW, *, idle: timedelta = timedelta(0)) -> DraftRecord:
    return DraftRecord(
        id=1, pseudonym="p", step=step, language="vi", commune_code=2998, category="theft",
        urgent=False, description="Xe máy bị trộm", latitude=None, longitude=None,
        updated_at=NOW - idle,
    )


def past(minutes_ago: float, tip_id: int = 1, digest: str = "h") -> PastTip:
    at = NOW - timedelta(minutes=minutes_ago)
    return PastTip(tip_id=tip_id, code=f"C{tip_id}", content_hash=digest, reported_at=at,
                   created_at=at)


def reason(call: object) -> str:
    assert callable(call)
    with pytest.raises(IntakeError) as caught:
        call()
    return caught.value.reason


def test_a_draft_idle_past_its_ttl_is_gone() -> None:
    assert live(draft(idle=DRAFT_TTL - timedelta(seconds=1)), NOW) is not None
    assert live(draft(idle=DRAFT_TTL + timedelta(seconds=1)), NOW) is None
    assert reason(lambda: require_step(draft(idle=DRAFT_TTL * 2), NOW, ())) == "no_draft"
    assert reason(lambda: require_step(None, NOW, (Step.REVIEW,))) == "no_draft"


def test_a_step_takes_only_what_it_expects() -> None:
    assert require_step(draft(Step.URGENCY), NOW, (Step.URGENCY,)).step == Step.URGENCY
    assert require_step(draft(Step.URGENCY), NOW, ()).step == Step.URGENCY  # any step
    with pytest.raises(IntakeError) as caught:
        require_step(draft(Step.URGENCY), NOW, (Step.CATEGORY,))
    assert caught.value.reason == "wrong_step" and caught.value.details == {"step": "urgency"}


def test_hourly_and_daily_limits() -> None:
    assert check_rate([past(30)], NOW, LIMITS) is None
    assert reason(lambda: check_rate([past(30), past(50)], NOW, LIMITS)) == "rate_hour"
    # two in the last day but over an hour ago, one just now: the daily limit of 3 holds
    assert reason(lambda: check_rate([past(300), past(600), past(5)], NOW, LIMITS)) == "rate_day"
    assert check_rate([past(61), past(120)], NOW, LIMITS) is None  # hourly window passed


def test_submit_refuses_banned_limited_unreviewed_and_missing() -> None:
    def submit(d: DraftRecord | None, *, banned: bool = False,
               history: list[PastTip] | None = None) -> DraftRecord:
        return check_submit(d, banned=banned, past=history or [], now=NOW, limits=LIMITS)

    assert submit(draft()).id == 1
    assert reason(lambda: submit(None)) == "no_draft"
    assert reason(lambda: submit(draft(Step.ATTACHMENTS))) == "wrong_step"
    assert reason(lambda: submit(draft(), banned=True)) == "banned"
    assert reason(lambda: submit(draft(), history=[past(1), past(2)])) == "rate_hour"


def test_the_same_tip_within_minutes_is_merged_into_the_newest() -> None:
    digest = content_hash(2998, "theft", "Xe máy bị trộm")
    assert content_hash(2998, "theft", "  xe MAY bi   trom ") == digest  # same words
    assert content_hash(2999, "theft", "Xe máy bị trộm") != digest
    history = [past(2, tip_id=4, digest=digest), past(5, tip_id=7, digest=digest),
               past(1, tip_id=9, digest="other")]
    found = duplicate_of(history, digest, NOW)
    assert found is not None and found.tip_id == 7
    old = [past(DUPLICATE_WINDOW.total_seconds() / 60 + 1, digest=digest)]
    assert duplicate_of(old, digest, NOW) is None


def test_text_pictures_captions_and_location() -> None:
    assert appended_text(None, "  Một  ") == "Một"
    assert appended_text("Một", "Hai") == "Một\nHai"
    assert reason(lambda: appended_text("x", "   ")) == "empty_description"
    assert reason(lambda: appended_text("x" * MAX_DESCRIPTION, "y")) == "text_too_long"
    check_picture_room(MAX_PHOTOS - 1)
    assert reason(lambda: check_picture_room(MAX_PHOTOS)) == "too_many_photos"
    assert checked_caption("  ") is None and checked_caption(" Ảnh ") == "Ảnh"
    assert reason(lambda: checked_caption("x" * (MAX_CAPTION + 1))) == "caption_too_long"
    check_location(21.0, 105.8)
    assert reason(lambda: check_location(91, 0)) == "bad_location"


def test_routing_commune_then_province_then_ops() -> None:
    links = [("commune", 1, -11), ("province", 10, -100), ("province", 20, -200)]
    router = Router(ops_chat_id=-999)
    assert router.choose([(1, 10), (2, 10), (3, 30)], links) == [
        Destination("commune", -11), Destination("province", -100), Destination("ops", -999)]
    assert router.choose([(1, 10)], links, province_only=True) == [Destination("province", -100)]
    assert router.choose([(1, 10)], links, skip_chat_ids=frozenset({-11, -100})) == [
        Destination("ops", -999)]
    assert Router(ops_chat_id=None).choose([(3, 30)], links) == [Destination("none", None)]
