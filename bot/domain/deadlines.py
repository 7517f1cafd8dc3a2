"""Deadlines: set the moment a tip is committed, changed only by the rules below, and the
plain definitions of "overdue" and "on time" that the card, the reminders and the KPIs share.

- **Acknowledgement** (our service level, promise 3): 24 hours from receipt, 1 hour for an
  urgent tip (``TIPLINE_ACK_HOURS``, ``TIPLINE_URGENT_ACK_HOURS``); a category may set its
  own (``"ack_hours"``, ``"urgent_ack_hours"`` in ``categories.json``).
- **Settlement**, BLTTHS 2015 Art. 147: 20 days from receipt. A complex case (recorded by an
  officer, once, while the tip is open and its deadline not yet passed): 2 months from
  receipt. One extension (Art. 147(3)) of 1 to 60 days ("up to 2 months" taken as at most
  60 days), requested at least 5 days before the current deadline. At most 2 months + 60
  days, about the law's 4 months.
- **Transfer** to another commune or to the province changes none of these: the clock runs
  from the original receipt time (the new queue must take the tip up again, against the
  original acknowledgement deadline).

The arithmetic, written down (tested in tests/test_deadlines.py):

- Days and hours are exact durations: 20 days = 20 × 24 h after the receipt instant (Vietnam
  has no daylight saving time, so this is also "the same clock time 20 days later" in ICT).
- Months are calendar months in the police's time zone (ICT): the same day of the month and
  the same clock time, two months later; when that month has no such day, its last day
  (31 Jan → 31 Mar; 31 Dec → 28/29 Feb). A tip received at 01:00 ICT on 31 Dec (18:00 UTC on
  30 Dec) is due at 01:00 ICT on 28 Feb, not on 1 Mar as UTC arithmetic would say.
- An extension adds its days to the deadline it extends (exact days, as above).
- These deadlines are never later than the legal ones (BLTTHS Art. 128 counts from the next
  day and ends at 24:00); weekends and public holidays are not added.
- "Before a deadline" includes the deadline's own instant: acknowledged at exactly
  ``ack_due_at`` is on time; overdue means strictly after.

Everything here is a pure function of its arguments (``now`` comes from ``Services.clock``).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.status import OPEN_STATUSES, TipStatus

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
SETTLE_DAYS = 20  # BLTTHS 2015 Art. 147(1)
COMPLEX_MONTHS = 2  # Art. 147(2)
MAX_EXTENSION_DAYS = 60  # Art. 147(2)-(3): one extension of up to 2 months
EXTENSION_NOTICE = timedelta(days=5)  # Art. 147(3): requested at least 5 days before
DEFAULT_ACK_HOURS = 24.0
DEFAULT_URGENT_ACK_HOURS = 1.0
MAX_ACK_HOURS = SETTLE_DAYS * 24.0  # an acknowledgement window within the settlement one
PROCESSED_STATUSES: frozenset[str] = frozenset({TipStatus.PROCESSED, TipStatus.INVALID})


# --- what the rules read of a tip (a stored tip, a TipRecord, a test's dataclass) -------------


class DeadlineTip(Protocol):
    """The fields "overdue" and "on time" are decided on."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def urgent(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def ack_due_at(self) -> datetime: ...
    @property
    def settle_due_at(self) -> datetime: ...


class SettlementTip(DeadlineTip, Protocol):
    """And what a complex case or an extension needs to know."""

    @property
    def complex_at(self) -> datetime | None: ...
    @property
    def extended_at(self) -> datetime | None: ...
    @property
    def extension_days(self) -> int | None: ...


# --- the state of a tip: overdue, on time ------------------------------------------------------


def ack_overdue(tip: DeadlineTip, now: datetime) -> bool:
    """Still waiting to be taken up ("Mới") after its acknowledgement deadline. A
    transferred tip is "Mới" again and keeps its original deadline, so it may be overdue
    from the moment it arrives."""
    return tip.status == TipStatus.NEW and now > tip.ack_due_at


def settle_overdue(tip: DeadlineTip, now: datetime) -> bool:
    """Still open (new, taken up or being verified) after its settlement deadline."""
    return tip.status in OPEN_STATUSES and now > tip.settle_due_at


def overdue(tip: DeadlineTip, now: datetime) -> bool:
    """Overdue in either way (``ack_overdue`` or ``settle_overdue``)."""
    return ack_overdue(tip, now) or settle_overdue(tip, now)


def taken_up_at(tip: DeadlineTip) -> datetime | None:
    """When the tip was taken up: ``acknowledged_at``; a tip closed without being taken up
    ("Không hợp lệ" straight from "Mới") counts as taken up when it was closed. A transfer
    clears ``acknowledged_at`` (the new queue takes it up again): the later time counts."""
    return tip.acknowledged_at or tip.closed_at


def acknowledged_on_time(tip: DeadlineTip) -> bool:
    """Taken up (``taken_up_at``) at or before ``ack_due_at``. False while not taken up."""
    at = taken_up_at(tip)
    return at is not None and at <= tip.ack_due_at


def processed_on_time(tip: DeadlineTip) -> bool:
    """Processed ("Xử lý xong", or "Không hợp lệ" with its reason) at or before
    ``settle_due_at`` (the deadline in force: 20 days, or 2 months for a complex case, plus
    an extension). False while open."""
    return (tip.status in PROCESSED_STATUSES and tip.closed_at is not None
            and tip.closed_at <= tip.settle_due_at)


def is_on_time(tip: DeadlineTip) -> bool:
    """The 100% target, per tip: acknowledged on time and processed on time."""
    return acknowledged_on_time(tip) and processed_on_time(tip)


# --- arithmetic ------------------------------------------------------------------------------


def add_months(moment: datetime, months: int, zone: ZoneInfo = ICT) -> datetime:
    """``months`` calendar months after ``moment`` in ``zone``: same day and clock time,
    or the month's last day when it is shorter. Aware UTC in, aware UTC out."""
    local = moment.astimezone(zone)
    years, month_index = divmod(local.month - 1 + months, 12)
    year, month = local.year + years, month_index + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


def settlement_due(
    received_at: datetime, *, complex_case: bool = False, extension_days: int | None = None,
    zone: ZoneInfo = ICT,
) -> datetime:
    """The settlement deadline from the facts: 20 days, or 2 months for a complex case,
    from receipt; plus the extension's days."""
    if complex_case:
        due = add_months(received_at, COMPLEX_MONTHS, zone)
    else:
        due = received_at + timedelta(days=SETTLE_DAYS)
    return due + timedelta(days=extension_days or 0)


@dataclass(frozen=True, slots=True)
class AckWindows:
    """A category's own acknowledgement windows (None: the general one)."""

    normal: timedelta | None = None
    urgent: timedelta | None = None


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """The acknowledgement windows (settings, then per category) and the time zone months
    are counted in. Built once in ``bot/app.py``."""

    ack_within: timedelta = timedelta(hours=DEFAULT_ACK_HOURS)
    urgent_ack_within: timedelta = timedelta(hours=DEFAULT_URGENT_ACK_HOURS)
    by_category: Mapping[str, AckWindows] = field(default_factory=dict)
    zone: ZoneInfo = ICT

    def ack_window(self, *, urgent: bool, category: str | None = None) -> timedelta:
        own = self.by_category.get(category) if category is not None else None
        if urgent:
            return (own.urgent if own else None) or self.urgent_ack_within
        return (own.normal if own else None) or self.ack_within

    def ack_due(self, received_at: datetime, *, urgent: bool,
                category: str | None = None) -> datetime:
        return received_at + self.ack_window(urgent=urgent, category=category)

    def settle_due(self, received_at: datetime) -> datetime:
        """A new tip's settlement deadline: 20 days (BLTTHS 2015 Art. 147(1))."""
        return settlement_due(received_at, zone=self.zone)

    # --- the changes -----------------------------------------------------------------------

    def complex_case(self, tip: SettlementTip, now: datetime, reason: str) -> DeadlineChange:
        """Recording a complex case: 2 months from receipt (plus an extension already
        granted). Refused (``DeadlineRefusal``) for a closed tip, one not taken up yet (the
        officer who takes it up judges it, as on the card, where the button comes with the
        take-up), a second time, without a reason, or once the current deadline has passed
        (a late tip is not made on time)."""
        _require_open(tip)
        if tip.status == TipStatus.NEW:
            raise DeadlineRefusal("complex_not_taken_up", tip.settle_due_at)
        if tip.complex_at is not None:
            raise DeadlineRefusal("complex_already", tip.settle_due_at, at=tip.complex_at)
        if not reason.strip():
            raise DeadlineRefusal("no_reason", tip.settle_due_at)
        if now > tip.settle_due_at:
            raise DeadlineRefusal("complex_late", tip.settle_due_at)
        new_due = settlement_due(tip.created_at, complex_case=True,
                                 extension_days=tip.extension_days, zone=self.zone)
        return DeadlineChange(tip.settle_due_at, max(new_due, tip.settle_due_at))

    def extension(self, tip: SettlementTip, days: int, now: datetime,
                  reason: str) -> DeadlineChange:
        """The one extension: ``days`` (1-60) added to the current deadline, requested at
        least 5 days before it. Refused for a closed tip, a second request, days out of
        range, no reason, or a request later than that."""
        _require_open(tip)
        if tip.extended_at is not None:
            raise DeadlineRefusal("extended_already", tip.settle_due_at, at=tip.extended_at,
                                  days=tip.extension_days)
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise DeadlineRefusal("bad_days", tip.settle_due_at)
        if not reason.strip():
            raise DeadlineRefusal("no_reason", tip.settle_due_at)
        latest = latest_extension_request(tip)
        if now > latest:
            raise DeadlineRefusal("extension_late", tip.settle_due_at, latest=latest)
        return DeadlineChange(tip.settle_due_at, tip.settle_due_at + timedelta(days=days))


def latest_extension_request(tip: DeadlineTip) -> datetime:
    """The last moment an extension may be requested: 5 days before the current deadline."""
    return tip.settle_due_at - EXTENSION_NOTICE


def _require_open(tip: DeadlineTip) -> None:
    if tip.status not in OPEN_STATUSES:
        raise DeadlineRefusal("closed", tip.settle_due_at)


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """The settlement deadline before and after (audited with the reason)."""

    old_due: datetime
    new_due: datetime


class DeadlineRefusal(Exception):
    """A deadline change the rules refuse; nothing changes. ``reason``: closed |
    complex_already | complex_late | extended_already | bad_days | extension_late |
    no_reason. ``due``: the current settlement deadline; ``at``: when the earlier complex
    case or extension was recorded; ``days``: the earlier extension's; ``latest``: the last
    moment an extension could have been requested."""

    def __init__(self, reason: str, due: datetime, *, at: datetime | None = None,
                 days: int | None = None, latest: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.due = due
        self.at = at
        self.days = days
        self.latest = latest


def policy_from(
    *, ack_hours: float, urgent_ack_hours: float,
    category_windows: Mapping[str, tuple[float | None, float | None]], zone: ZoneInfo,
) -> DeadlinePolicy:
    """The policy from the settings and each category's own hours (normal, urgent)."""
    def hours(value: float | None) -> timedelta | None:
        return timedelta(hours=value) if value is not None else None

    return DeadlinePolicy(
        ack_within=timedelta(hours=ack_hours),
        urgent_ack_within=timedelta(hours=urgent_ack_hours),
        by_category={key: AckWindows(hours(normal), hours(urgent))
                     for key, (normal, urgent) in category_windows.items()
                     if normal is not None or urgent is not None},
        zone=zone,
    )


__all__ = [
    "COMPLEX_MONTHS", "EXTENSION_NOTICE", "ICT", "MAX_EXTENSION_DAYS", "SETTLE_DAYS",
    "AckWindows", "DeadlineChange", "DeadlinePolicy", "DeadlineRefusal", "DeadlineTip",
    "SettlementTip", "ack_overdue", "acknowledged_on_time", "add_months", "is_on_time",
    "latest_extension_request", "overdue", "policy_from", "processed_on_time",
    "settle_overdue", "settlement_due", "taken_up_at",
]
