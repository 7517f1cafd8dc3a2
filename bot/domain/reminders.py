"""Reminders and escalations: the 100% target chased inside Telegram's 20 messages a minute.

- **Reminders** (job ``reminder``): in each police group, one digest per round listing the
  tips of that group reaching a reminder point: a share of the acknowledgement window for
  tips not taken up yet (default 50% and 90%), and some days before the settlement deadline
  for open tips (default 5 and 1). Nothing is sent to a group with nothing due.
- **Escalations** (job ``escalation``): tips that went past a deadline (not taken up by
  ``ack_due_at``, not settled by ``settle_due_at``) in one digest per round to the province
  group of their commune (no province group: the ops chat).
- **The card's mark**: an overdue tip's card gets a "⚠️ Quá hạn" line, edited in place
  (``tips.overdue_marked_at``, once per missed deadline, and a ``CARD_REFRESH`` row).

Which round a tip appears in (docs/rounds.md): rounds are slots every ``every`` (15 min).
A reminder point ``p`` of a tip created at ``c`` belongs to slot
``max(slot_at_or_before(p), slot_after(c))``: the round at the start of the slot the point
falls in (up to one slot early, never after the point), or, for a point that falls in the
slot the tip was created in, the next one. A missed deadline ``d`` belongs to the first slot
after ``d``. Each (tip, point) and (tip, deadline) belongs to exactly one slot, and each slot
is run once (``bot/domain/rounds.py``), so a tip is reminded once per point and escalated
once per deadline. Whether it is still due is read when the round runs (a tip taken up
since is left out; a deadline already passed is an escalation's, not a reminder's).

Deadlines are read from the tip's columns (``ack_due_at``, ``settle_due_at``), whatever set
them (category, urgency, complex case, extension).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.receipts import tip_link
from bot.domain.rounds import EPOCH, Digest, EverySchedule, RoundJob, RoundWindow, split_lines
from bot.domain.status import OPEN_STATUSES, TipStatus
from bot.i18n import Gettext

log = logging.getLogger(__name__)

REMINDER_JOB = "reminder"
ESCALATION_JOB = "escalation"
# a digest lists at most this many tips (about four messages); the rest are counted
MAX_LISTED = 150

DeadlineKind = Literal["ack", "settle"]


@dataclass(frozen=True, slots=True)
class DueTip:
    """What a round reads of an open tip."""

    id: int
    code: str
    category: str
    commune_code: int
    province_code: int
    status: str
    owner_name: str | None
    created_at: datetime
    ack_due_at: datetime
    settle_due_at: datetime
    queue_chat_id: int | None  # the group its live card is in (None: not posted yet)
    escalated_at: datetime | None = None  # when the province was last told it is overdue


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    ack_points: tuple[float, ...] = (0.5, 0.9)  # shares of the acknowledgement window
    settle_days_before: tuple[int, ...] = (5, 1)  # days before the settlement deadline
    every: timedelta = timedelta(minutes=15)  # one round per slot of this length

    @property
    def schedule(self) -> EverySchedule:
        return EverySchedule(self.every)

    def reminder_points(self, tip: DueTip) -> list[tuple[DeadlineKind, datetime]]:
        """The tip's reminder points: (which deadline, when), none before its receipt."""
        points: list[tuple[DeadlineKind, datetime]] = []
        if tip.status == TipStatus.NEW and tip.ack_due_at > tip.created_at:
            window = tip.ack_due_at - tip.created_at
            points += [("ack", tip.created_at + window * share) for share in self.ack_points]
        if tip.status in OPEN_STATUSES:
            points += [("settle", tip.settle_due_at - timedelta(days=days))
                       for days in self.settle_days_before]
        return [(kind, at) for kind, at in points if at >= tip.created_at]

    def reminder_slot(self, point: datetime, created_at: datetime) -> datetime:
        """The slot whose round reminds of ``point`` (see the module's docstring)."""
        schedule = self.schedule
        return schedule.at(max(schedule.index(point), schedule.index(created_at) + 1))

    def escalation_slot(self, deadline: datetime) -> datetime:
        """The slot whose round escalates a tip that missed ``deadline``: the first after."""
        schedule = self.schedule
        return schedule.at(schedule.index(deadline) + 1)

    def settle_ranges(self, window: RoundWindow) -> list[tuple[datetime, datetime]]:
        """``settle_due_at`` ranges that may hold a settlement point of ``window``'s slots."""
        low, high = window.first - self.every, window.last + self.every
        return [(low + timedelta(days=days), high + timedelta(days=days))
                for days in self.settle_days_before]


def deadline_of(tip: DueTip, kind: DeadlineKind) -> datetime:
    return tip.ack_due_at if kind == "ack" else tip.settle_due_at


def missed(tip: DueTip, now: datetime) -> list[DeadlineKind]:
    """The deadlines the tip has gone past, as of ``now``."""
    found: list[DeadlineKind] = []
    if tip.status == TipStatus.NEW and tip.ack_due_at <= now:
        found.append("ack")
    if tip.status in OPEN_STATUSES and tip.settle_due_at <= now:
        found.append("settle")
    return found


@dataclass(frozen=True, slots=True)
class Item:
    tip: DueTip
    kind: DeadlineKind

    @property
    def deadline(self) -> datetime:
        return deadline_of(self.tip, self.kind)


def _covered(window: RoundWindow, every: timedelta) -> set[int]:
    """The slot numbers (``EverySchedule.index``) of ``window``."""
    return {(slot.at - EPOCH) // every for slot in window.slots}


def reminder_items(
    tips: Iterable[DueTip], window: RoundWindow, now: datetime, policy: ReminderPolicy
) -> list[Item]:
    """The (tip, deadline) pairs ``window``'s round reminds of: a point of the tip belongs
    to one of its slots (``ReminderPolicy.reminder_slot``, inlined: a round may read
    thousands of tips), and that deadline is still ahead."""
    every = policy.every
    covered = _covered(window, every)
    items = []
    for tip in tips:
        after_receipt = (tip.created_at - EPOCH) // every + 1
        kinds = {kind for kind, point in policy.reminder_points(tip)
                 if max((point - EPOCH) // every, after_receipt) in covered}
        if "ack" in kinds and tip.ack_due_at > now:
            items.append(Item(tip, "ack"))
        if "settle" in kinds and tip.settle_due_at > now:
            items.append(Item(tip, "settle"))
    return items


def escalation_items(tips: Iterable[DueTip], now: datetime) -> list[Item]:
    """The overdue tips a round escalates: every deadline the tip has gone past and the
    province was not told of yet (``escalated_at`` before it), whichever round it fell in
    (a tip overdue on arrival after a transfer, a deadline passed during a long outage);
    a tip past both is listed once, for the settlement."""
    items = []
    for tip in tips:
        kinds = [kind for kind in missed(tip, now)
                 if tip.escalated_at is None or tip.escalated_at < deadline_of(tip, kind)]
        if kinds:
            items.append(Item(tip, kinds[-1]))
    return items


class ReminderStorage(Protocol):
    async def reminder_candidates(
        self, *, now: datetime, created_before: datetime,
        settle_ranges: Sequence[tuple[datetime, datetime]],
    ) -> list[DueTip]:
        """Open tips that may have a reminder point in a window: not taken up, created
        before ``created_before``, acknowledgement deadline after ``now``; or settlement
        deadline after ``now`` and within one of ``settle_ranges`` ([start, end))."""
        ...

    async def escalation_candidates(self, *, now: datetime) -> list[DueTip]:
        """Open tips past a deadline (≤ ``now``) the province was not told of yet
        (``escalated_at`` missing or before that deadline)."""
        ...

    async def province_chats(self, province_codes: Sequence[int]) -> dict[int, int]:
        """Province code -> its linked group's chat id."""
        ...

    async def mark_overdue(self, now: datetime) -> int:
        """Set ``overdue_marked_at`` on the tips past a deadline they were not marked for
        yet, and queue their cards' refresh, in one transaction; how many."""
        ...


@dataclass(frozen=True)
class DigestTexts:
    """The digests' words, through the Vietnamese catalogue (police groups)."""

    directory: CommuneDirectory
    categories: Categories
    zone: ZoneInfo
    texts: Gettext
    _names: dict[tuple[str, object], str] = field(  # escaped labels, looked up once each
        default_factory=dict, init=False, repr=False, compare=False)

    def span(self, delta: timedelta) -> str:
        """A duration as people say it: "2 ngày 3 giờ", "3 giờ 10 phút", "15 phút"."""
        _ = self.texts
        minutes = max(int(delta.total_seconds() // 60), 0)
        days, rest = divmod(minutes, 1440)
        hours, mins = divmod(rest, 60)
        if days:
            return (_("{days} d {hours} h").format(days=days, hours=hours) if hours
                    else _("{days} d").format(days=days))
        if hours:
            return (_("{hours} h {minutes} min").format(hours=hours, minutes=mins) if mins
                    else _("{hours} h").format(hours=hours))
        if mins:
            return _("{minutes} min").format(minutes=mins)
        return _("less than a minute")

    def _code(self, tip: DueTip) -> str:
        return html.escape(tip_link(tip.code))

    def _owner(self, tip: DueTip) -> str:
        return html.escape(tip.owner_name) if tip.owner_name else \
            self.texts("nobody has taken it up")

    def _category(self, tip: DueTip) -> str:
        name = self._names.get(("category", tip.category))
        if name is None:
            category = self.categories.get(tip.category)
            name = self._names[("category", tip.category)] = html.escape(
                category.label("vi") if category else tip.category)
        return name

    def _commune(self, tip: DueTip) -> str:
        name = self._names.get(("commune", tip.commune_code))
        if name is None:
            commune = self.directory.commune(tip.commune_code)
            name = self._names[("commune", tip.commune_code)] = html.escape(
                commune.name if commune else str(tip.commune_code))
        return name

    def _part(self, index: int, total: int) -> str:
        return self.texts("(part {index}/{total})").format(index=index, total=total)

    def _capped(self, lines: list[str]) -> list[str]:
        """At most ``MAX_LISTED`` lines; the tips left out are counted on one more."""
        if len(lines) <= MAX_LISTED:
            return lines
        left_out = sum(1 for line in lines[MAX_LISTED:] if line.startswith("•"))
        return [*lines[:MAX_LISTED],
                self.texts("… and {count} more").format(count=left_out)]

    def reminder(self, items: Sequence[Item], now: datetime) -> list[str]:
        """One group's reminder digest: tips to take up, then tips to settle, soonest first."""
        _ = self.texts
        lines: list[str] = []
        for kind, title in (("ack", _("<b>To be taken up</b>")),
                            ("settle", _("<b>To be settled</b>"))):
            chosen = sorted((i for i in items if i.kind == kind), key=lambda i: i.deadline)
            if not chosen:
                continue
            lines.append(title)
            lines += [" · ".join((
                f"• {self._code(i.tip)}", self._category(i.tip), self._owner(i.tip),
                _("{time} left").format(time=self.span(i.deadline - now)),
            )) for i in chosen]
        header = _("⏰ <b>Deadline reminder</b>: {count} tip(s) due soon").format(
            count=len(items))
        return split_lines(header, self._capped(lines), part_label=self._part)

    def escalation(self, items: Sequence[Item], now: datetime) -> list[str]:
        """One province group's escalation digest: the latest first."""
        _ = self.texts
        lines = []
        for item in sorted(items, key=lambda i: i.deadline):
            late = self.span(now - item.deadline)
            lines.append(" · ".join((
                f"• {self._code(item.tip)}", self._commune(item.tip), self._owner(item.tip),
                (_("{time} late to be taken up") if item.kind == "ack"
                 else _("{time} late to be settled")).format(time=late),
            )))
        header = _("🚨 <b>Overdue tips</b>: {count}").format(count=len(items))
        return split_lines(header, self._capped(lines), part_label=self._part)


class Reminders:
    """The reminder and escalation jobs (plugged into ``RoundEngine``) and the card mark."""

    def __init__(
        self, store: ReminderStorage, texts: DigestTexts, *,
        policy: ReminderPolicy | None = None, ops_chat_id: int | None = None,
    ) -> None:
        self._store = store
        self.texts = texts
        self.policy = policy or ReminderPolicy()
        self._ops_chat_id = ops_chat_id

    def jobs(self) -> list[RoundJob]:
        schedule = self.policy.schedule
        return [RoundJob(REMINDER_JOB, schedule, self.compose_reminders),
                RoundJob(ESCALATION_JOB, schedule, self.compose_escalations)]

    async def compose_reminders(self, window: RoundWindow, now: datetime) -> list[Digest]:
        tips = await self._store.reminder_candidates(
            now=now, created_before=window.last + self.policy.every,
            settle_ranges=self.policy.settle_ranges(window))
        by_chat: dict[int, list[Item]] = {}
        for item in reminder_items(tips, window, now, self.policy):
            if item.tip.queue_chat_id is not None:  # no card posted anywhere yet: no group
                by_chat.setdefault(item.tip.queue_chat_id, []).append(item)
        return [Digest(chat, tuple(self.texts.reminder(items, now)))
                for chat, items in sorted(by_chat.items())]

    async def compose_escalations(self, window: RoundWindow, now: datetime) -> list[Digest]:
        tips = await self._store.escalation_candidates(now=now)
        items = escalation_items(tips, now)
        chats = await self._store.province_chats(
            sorted({item.tip.province_code for item in items})) if items else {}
        by_chat: dict[int, list[Item]] = {}
        for item in items:
            chat = chats.get(item.tip.province_code, self._ops_chat_id)
            if chat is None:
                log.error("overdue tip has no province group and no ops chat",
                          extra={"tip_id": item.tip.id})
                continue
            by_chat.setdefault(chat, []).append(item)
        return [Digest(chat, tuple(self.texts.escalation(items, now)),
                       escalates=tuple(item.tip.id for item in items))
                for chat, items in sorted(by_chat.items())]

    async def mark_overdue(self, now: datetime) -> int:
        """The "⚠️ Quá hạn" line on the cards of tips that went past a deadline."""
        count = await self._store.mark_overdue(now)
        if count:
            log.info("overdue tips marked on their cards", extra={"count": count})
        return count
