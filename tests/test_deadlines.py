"""The deadline rules on plain data, no database: acknowledgement windows (settings, per
category), settlement arithmetic (20 days, 2 calendar months in ICT, extensions), the complex
case and extension refusals, and the shared "overdue" / "on time" definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.categories import Categories
from bot.domain.deadlines import (
    ICT,
    DeadlinePolicy,
    DeadlineRefusal,
    ack_overdue,
    acknowledged_on_time,
    add_months,
    is_on_time,
    latest_extension_request,
    overdue,
    policy_from,
    processed_on_time,
    settle_overdue,
    settlement_due,
)


def ict(*args: int) -> datetime:
    """A moment given in Vietnam time, as aware UTC."""
    return datetime(*args, tzinfo=ICT).astimezone(UTC)  # type: ignore[misc]


RECEIVED = ict(2026, 3, 1, 9, 0)
TAKEN_UP = ict(2026, 3, 1, 10, 0)


@dataclass(frozen=True)
class Tip:
    created_at: datetime = RECEIVED
    urgent: bool = False
    status: str = "acknowledged"
    acknowledged_at: datetime | None = TAKEN_UP
    closed_at: datetime | None = None
    ack_due_at: datetime = RECEIVED + timedelta(hours=24)
    settle_due_at: datetime = RECEIVED + timedelta(days=20)
    complex_at: datetime | None = None
    extended_at: datetime | None = None
    extension_days: int | None = None


POLICY = DeadlinePolicy()


# --- arithmetic --------------------------------------------------------------------------------


def test_twenty_days_are_exact_days_from_the_receipt_instant() -> None:
    received = ict(2026, 3, 1, 23, 30)
    assert POLICY.settle_due(received) == ict(2026, 3, 21, 23, 30)
    just_after_midnight = ict(2026, 3, 2, 0, 15)  # still 1 March in UTC (17:15)
    assert POLICY.settle_due(just_after_midnight) == ict(2026, 3, 22, 0, 15)
    assert POLICY.settle_due(just_after_midnight).astimezone(ICT).date().isoformat() \
        == "2026-03-22"


def test_acknowledgement_across_ict_midnight() -> None:
    received = ict(2026, 5, 31, 23, 30)
    assert POLICY.ack_due(received, urgent=True) == ict(2026, 6, 1, 0, 30)
    assert POLICY.ack_due(received, urgent=False) == ict(2026, 6, 1, 23, 30)


@pytest.mark.parametrize(("received", "due"), [
    (ict(2026, 1, 31, 14, 0), ict(2026, 3, 31, 14, 0)),  # 31 Jan + 2 months = 31 Mar
    (ict(2025, 12, 31, 14, 0), ict(2026, 2, 28, 14, 0)),  # no 31 Feb: its last day
    (ict(2027, 12, 31, 8, 0), ict(2028, 2, 29, 8, 0)),  # a leap year
    (ict(2026, 12, 30, 9, 0), ict(2027, 2, 28, 9, 0)),  # across the new year
    (ict(2026, 4, 30, 9, 0), ict(2026, 6, 30, 9, 0)),
    (ict(2026, 11, 15, 9, 0), ict(2027, 1, 15, 9, 0)),
])
def test_two_calendar_months_in_ict(received: datetime, due: datetime) -> None:
    assert add_months(received, 2) == due
    assert settlement_due(received, complex_case=True) == due


def test_months_are_counted_on_the_ict_calendar_not_utc() -> None:
    # 01:00 ICT on 31 Dec is 18:00 UTC on 30 Dec: UTC arithmetic would land on 1 March ICT
    received = ict(2026, 12, 31, 1, 0)
    assert received.day == 30
    assert add_months(received, 2) == ict(2027, 2, 28, 1, 0)
    assert add_months(received, 2, ZoneInfo("UTC")) == ict(2027, 3, 1, 1, 0)


def test_an_extension_adds_its_days_to_the_deadline_in_force() -> None:
    received = ict(2026, 1, 31, 14, 0)
    assert settlement_due(received, extension_days=30) == ict(2026, 3, 22, 14, 0)
    assert settlement_due(received, complex_case=True, extension_days=60) \
        == ict(2026, 5, 30, 14, 0)  # 31 Mar + 60 days: about the law's 4 months


# --- acknowledgement windows: settings, then the category's own --------------------------------


def test_acknowledgement_windows_from_settings_and_categories(tmp_path: Path) -> None:
    rows = [{"key": "drugs", "vi": "Ma túy", "ack_hours": 12},
            {"key": "child_abuse", "vi": "Xâm hại trẻ em", "urgent_ack_hours": 0.5},
            {"key": "other", "vi": "Khác", "en": "Other"}]
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    categories = Categories.load(path)
    assert categories.get("other") is not None and categories.get("other").labels == {  # type: ignore[union-attr]
        "vi": "Khác", "en": "Other"}
    policy = policy_from(ack_hours=48, urgent_ack_hours=2,
                         category_windows=categories.ack_windows(), zone=ICT)
    received = ict(2026, 3, 1, 9, 0)
    assert policy.ack_due(received, urgent=False, category="other") - received \
        == timedelta(hours=48)
    assert policy.ack_due(received, urgent=True, category="other") - received \
        == timedelta(hours=2)
    assert policy.ack_due(received, urgent=False, category="drugs") - received \
        == timedelta(hours=12)
    assert policy.ack_due(received, urgent=True, category="drugs") - received \
        == timedelta(hours=2)  # the category sets only its normal window
    assert policy.ack_due(received, urgent=True, category="child_abuse") - received \
        == timedelta(minutes=30)
    assert policy.ack_due(received, urgent=False, category="child_abuse") - received \
        == timedelta(hours=48)
    assert policy.ack_due(received, urgent=False, category="unknown") - received \
        == timedelta(hours=48)


@pytest.mark.parametrize("bad", [0, -1, "12", True, 481, None])
def test_a_wrong_category_window_stops_loading(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "categories.json"
    row: dict[str, object] = {"key": "drugs", "vi": "Ma túy", "ack_hours": bad}
    if bad is None:
        row = {"key": "drugs", "vi": "Ma túy", "ack_hour": 12}  # a misspelt key
    path.write_text(json.dumps([row]), encoding="utf-8")
    with pytest.raises(ValueError, match="drugs"):
        Categories.load(path)


def test_the_shipped_categories_keep_the_general_windows() -> None:
    categories = Categories.load()
    assert categories.get("drugs") is not None
    for category in categories.all():
        assert set(category.labels) == {"vi", "en"}


# --- complex case ------------------------------------------------------------------------------


def test_a_complex_case_runs_two_months_from_receipt() -> None:
    tip = Tip(created_at=ict(2026, 1, 31, 14, 0), settle_due_at=ict(2026, 2, 20, 14, 0))
    change = POLICY.complex_case(tip, ict(2026, 2, 10, 8, 0), "nhiều địa điểm")
    assert (change.old_due, change.new_due) == (ict(2026, 2, 20, 14, 0), ict(2026, 3, 31, 14, 0))


def test_a_complex_case_after_an_extension_keeps_the_extension() -> None:
    tip = Tip(created_at=ict(2026, 1, 31, 14, 0), settle_due_at=ict(2026, 3, 12, 14, 0),
              extended_at=ict(2026, 2, 1), extension_days=20)
    change = POLICY.complex_case(tip, ict(2026, 2, 10), "lý do")
    assert change.new_due == ict(2026, 4, 20, 14, 0)  # 31 Mar + 20 days


@pytest.mark.parametrize(("tip", "now", "reason", "refusal"), [
    (Tip(status="processed", closed_at=ict(2026, 3, 5)), ict(2026, 3, 6), "x", "closed"),
    (Tip(status="invalid", closed_at=ict(2026, 3, 5)), ict(2026, 3, 6), "x", "closed"),
    (Tip(complex_at=ict(2026, 3, 2)), ict(2026, 3, 3), "x", "complex_already"),
    (Tip(), ict(2026, 3, 3), "  ", "no_reason"),
    (Tip(), ict(2026, 3, 21, 9, 1), "x", "complex_late"),  # the 20 days are over
    # not taken up yet: as on the card, where the button comes with the take-up
    (Tip(status="new", acknowledged_at=None), ict(2026, 3, 3), "x", "complex_not_taken_up"),
])
def test_complex_case_refusals(tip: Tip, now: datetime, reason: str, refusal: str) -> None:
    with pytest.raises(DeadlineRefusal) as raised:
        POLICY.complex_case(tip, now, reason)
    assert raised.value.reason == refusal
    assert raised.value.due == tip.settle_due_at


def test_a_complex_case_may_be_recorded_up_to_the_deadline_itself() -> None:
    tip = Tip(status="verifying")
    assert POLICY.complex_case(tip, tip.settle_due_at, "x").new_due == ict(2026, 5, 1, 9, 0)


# --- the one extension -------------------------------------------------------------------------


def test_an_extension_at_the_last_allowed_moment() -> None:
    tip = Tip()  # due 21 March 09:00 ICT: a request by 16 March 09:00 ICT
    assert latest_extension_request(tip) == ict(2026, 3, 16, 9, 0)
    change = POLICY.extension(tip, 60, ict(2026, 3, 16, 9, 0), "chờ giám định")
    assert change.new_due == ict(2026, 5, 20, 9, 0)
    assert POLICY.extension(tip, 1, ict(2026, 3, 2), "x").new_due == ict(2026, 3, 22, 9, 0)


def test_an_extension_of_a_complex_case_counts_from_its_two_months() -> None:
    tip = Tip(complex_at=ict(2026, 3, 5), settle_due_at=ict(2026, 5, 1, 9, 0))
    assert POLICY.extension(tip, 30, ict(2026, 4, 26, 9, 0), "x").new_due \
        == ict(2026, 5, 31, 9, 0)
    with pytest.raises(DeadlineRefusal) as raised:
        POLICY.extension(tip, 30, ict(2026, 4, 26, 9, 1), "x")
    assert raised.value.reason == "extension_late"
    assert raised.value.latest == ict(2026, 4, 26, 9, 0)


@pytest.mark.parametrize(("tip", "days", "now", "reason", "refusal"), [
    (Tip(status="processed", closed_at=ict(2026, 3, 5)), 10, ict(2026, 3, 6), "x", "closed"),
    (Tip(extended_at=ict(2026, 3, 2), extension_days=10, settle_due_at=ict(2026, 3, 31, 9)),
     10, ict(2026, 3, 3), "x", "extended_already"),
    (Tip(), 0, ict(2026, 3, 3), "x", "bad_days"),
    (Tip(), 61, ict(2026, 3, 3), "x", "bad_days"),
    (Tip(), -5, ict(2026, 3, 3), "x", "bad_days"),
    (Tip(), 10, ict(2026, 3, 3), "", "no_reason"),
    (Tip(), 10, ict(2026, 3, 16, 9, 0, 1), "x", "extension_late"),  # 5 days less one second
    (Tip(), 10, ict(2026, 3, 22), "x", "extension_late"),  # already overdue
])
def test_extension_refusals(tip: Tip, days: int, now: datetime, reason: str,
                            refusal: str) -> None:
    with pytest.raises(DeadlineRefusal) as raised:
        POLICY.extension(tip, days, now, reason)
    assert raised.value.reason == refusal
    if refusal == "extended_already":
        assert (raised.value.days, raised.value.at) == (10, ict(2026, 3, 2))


# --- overdue and on time (shared with the reminders and the KPIs) ------------------------------


def test_acknowledgement_overdue_only_while_new() -> None:
    new = Tip(status="new", acknowledged_at=None)
    assert not ack_overdue(new, new.ack_due_at)  # at the deadline itself: not yet
    assert ack_overdue(new, new.ack_due_at + timedelta(seconds=1))
    assert not ack_overdue(Tip(), Tip().ack_due_at + timedelta(days=1))  # taken up
    assert overdue(new, new.ack_due_at + timedelta(seconds=1))


def test_settlement_overdue_only_while_open() -> None:
    late = Tip().settle_due_at + timedelta(seconds=1)
    for status in ("new", "acknowledged", "verifying"):
        assert settle_overdue(Tip(status=status), late), status
    assert not settle_overdue(Tip(), Tip().settle_due_at)
    closed = Tip(status="processed", closed_at=late)
    assert not settle_overdue(closed, late + timedelta(days=1)) and not overdue(closed, late)


def test_on_time() -> None:
    done = Tip(status="processed", closed_at=ict(2026, 3, 10))
    assert acknowledged_on_time(done) and processed_on_time(done) and is_on_time(done)
    at_the_limits = replace(done, acknowledged_at=done.ack_due_at, closed_at=done.settle_due_at)
    assert is_on_time(at_the_limits)
    late_ack = replace(done, acknowledged_at=done.ack_due_at + timedelta(minutes=1))
    assert not acknowledged_on_time(late_ack) and processed_on_time(late_ack)
    assert not is_on_time(late_ack)
    late_close = replace(done, closed_at=done.settle_due_at + timedelta(minutes=1))
    assert acknowledged_on_time(late_close) and not processed_on_time(late_close)
    open_tip = Tip()
    assert acknowledged_on_time(open_tip) and not processed_on_time(open_tip)
    assert not is_on_time(open_tip)
    waiting = Tip(status="new", acknowledged_at=None)
    assert not acknowledged_on_time(waiting)
    # "Không hợp lệ" straight from "Mới": processed, and taken up when it was closed
    invalid = Tip(status="invalid", acknowledged_at=None, closed_at=ict(2026, 3, 1, 12, 0))
    assert is_on_time(invalid)
    invalid_late = replace(invalid, closed_at=ict(2026, 3, 3))
    assert not acknowledged_on_time(invalid_late) and processed_on_time(invalid_late)
    # a complex case is judged against its deadline in force
    complex_done = Tip(status="processed", complex_at=ict(2026, 3, 5),
                       settle_due_at=ict(2026, 5, 1, 9, 0), closed_at=ict(2026, 4, 20))
    assert is_on_time(complex_done)
