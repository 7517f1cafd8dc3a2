"""Scheduled rounds: a job (reminders, escalations, a morning summary) runs at the slots of
its schedule; each run (a *round*) sends at most one digest per group, exactly once.

The ledger is the ``job_runs`` table (``storage/rounds.py``):

- a round is identified by ``(job, scope, round_key)``: the round's own row (scope
  ``"round"``, status ``done``) says the slot was handled, even when nothing was due; one row
  per group that got a digest (scope ``"chat:<id>"``, ``pending`` until the outbox delivered
  it, then ``sent``, or ``failed`` if the group is gone);
- all of a round's rows and its digests' outbox rows are written in **one transaction**,
  and the table's unique key refuses a second claim: a round is never queued twice, not by a
  restart, not by a second bot process (its whole claim is rolled back);
- a tick (every minute, ``scheduler/jobs.py``) asks which slots are due at ``now`` and not
  yet done. A slot missed while the bot was down is run when it is back if it is at most
  ``grace`` old (older ones are skipped for good); several missed slots of one job are
  coalesced into one round (one digest per group, keyed by the latest slot), the way
  APScheduler's ``coalesce`` would.

What a round says is the job's ``compose`` callback: given the slots it covers and ``now``,
it returns the digests (a group's chat and its messages). The engine knows nothing of tips;
``bot/domain/reminders.py`` composes the reminder and escalation digests, and the morning
summary plugs in the same way (``per_group`` builds a compose from a text per group).
See docs/rounds.md for the round keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.cards import TEXT_LIMIT

log = logging.getLogger(__name__)

ROUND_SCOPE = "round"  # the scope of a round's own "done" row in job_runs
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# a slot is run this long after its time, so that what was written just before the slot
# (a tip committed a moment after its created_at) is seen by the round
SETTLE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Slot:
    """One point of a schedule: its key in the ledger, its time, when it may run."""

    key: str
    at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class RoundWindow:
    """What one round covers: one slot, or the missed slots coalesced (oldest first)."""

    job: str
    slots: tuple[Slot, ...]

    @property
    def key(self) -> str:
        """The round's key: its latest slot's."""
        return self.slots[-1].key

    @property
    def first(self) -> datetime:
        return self.slots[0].at

    @property
    def last(self) -> datetime:
        return self.slots[-1].at

    def covers(self, at: datetime) -> bool:
        return any(slot.at == at for slot in self.slots)


@dataclass(frozen=True, slots=True)
class Digest:
    """One group's messages for one round (HTML, each within Telegram's 4,096)."""

    chat_id: int
    parts: tuple[str, ...]
    # the tips whose overdue state this digest tells the province of: their
    # ``escalated_at`` is set in the transaction that claims the round
    escalates: tuple[int, ...] = ()

    @property
    def scope(self) -> str:
        return f"chat:{self.chat_id}"


Compose = Callable[[RoundWindow, datetime], Awaitable[Sequence[Digest]]]


class Schedule(Protocol):
    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        """The slots whose ``due_at`` is in ``(start, end]``, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class EverySchedule:
    """A slot every ``every`` (counted from 1970-01-01 UTC, so 15 minutes gives :00, :15,
    :30, :45); key ``2026-12-02T10:15Z``."""

    every: timedelta

    def index(self, moment: datetime) -> int:
        """The slot at or before ``moment``."""
        return (moment - EPOCH) // self.every

    def at(self, index: int) -> datetime:
        return EPOCH + index * self.every

    def slot(self, index: int) -> Slot:
        at = self.at(index)
        return Slot(at.strftime("%Y-%m-%dT%H:%MZ"), at, at + SETTLE)

    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        first = self.index(start - SETTLE) + 1  # due strictly after start
        last = self.index(end - SETTLE)
        return [self.slot(index) for index in range(first, last + 1)]


@dataclass(frozen=True, slots=True)
class DailySchedule:
    """A slot every day at ``at`` local time in ``zone`` (07:30 ICT); key ``2026-12-02``
    (the local date)."""

    at: time
    zone: ZoneInfo

    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        found: list[Slot] = []
        day = (start - SETTLE).astimezone(self.zone).date()
        while True:
            moment = datetime.combine(day, self.at, self.zone).astimezone(UTC)
            slot = Slot(day.isoformat(), moment, moment + SETTLE)
            if slot.due_at > end:
                return found
            if slot.due_at > start:
                found.append(slot)
            day += timedelta(days=1)


@dataclass(frozen=True)
class RoundJob:
    name: str  # the job in the ledger (≤ 32 characters): "reminder", "escalation", ...
    schedule: Schedule
    compose: Compose


class RoundsStorage(Protocol):
    async def done_keys(self, job: str, keys: Sequence[str]) -> set[str]:
        """Which of these rounds of ``job`` were handled already."""
        ...

    async def claim_round(
        self, job: str, keys: Sequence[str], digests: Sequence[Digest], *, now: datetime
    ) -> bool:
        """In one transaction: the rounds' ``done`` rows, one ``pending`` row per digest's
        group (keyed by the last key) and the digests' outbox rows. False (nothing
        written) if any of those rows exists already: somebody ran the round."""
        ...

    async def linked_groups(self) -> list[Group]:
        """Every linked police group (for a per-group round)."""
        ...


@dataclass
class RoundsReport:
    rounds: int = 0
    digests: int = 0
    taken: int = 0  # rounds another run had claimed first
    jobs: dict[str, int] = field(default_factory=dict)  # job -> digests queued


class RoundEngine:
    """Runs the due rounds of its jobs (``run_due(now)``, from the scheduler's tick)."""

    def __init__(
        self, store: RoundsStorage, *, grace: timedelta,
        jobs: Sequence[RoundJob] = (), queued: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self.grace = grace
        self._jobs: dict[str, RoundJob] = {}
        self._queued = queued  # tells the outbox to look now
        self._lock = asyncio.Lock()
        for job in jobs:
            self.add(job)

    @property
    def jobs(self) -> list[RoundJob]:
        return list(self._jobs.values())

    async def groups(self) -> list[Group]:
        """Every linked police group: ``per_group(services.rounds.groups, text)``."""
        return await self._store.linked_groups()

    def add(self, job: RoundJob) -> None:
        """Plug a job in (the morning summary: ``add(RoundJob("summary", DailySchedule(
        time(7, 30), zone), per_group(self.groups, text)))``); a job of the same name is
        replaced."""
        if not 0 < len(job.name) <= 32 or ":" in job.name:
            raise ValueError(f"bad round job name {job.name!r}")
        self._jobs[job.name] = job

    async def run_due(self, now: datetime) -> RoundsReport:
        """Run every job's slots that are due at ``now`` (within the grace) and not done.
        One tick at a time: a tick that finds the previous one still running returns."""
        report = RoundsReport()
        if self._lock.locked():
            return report
        async with self._lock:
            for job in list(self._jobs.values()):
                try:
                    await self._run_job(job, now, report)
                except Exception:  # one job failing must not stop the others
                    log.exception("round failed", extra={"event": job.name})
        if report.digests and self._queued is not None:
            self._queued()
        return report

    async def _run_job(self, job: RoundJob, now: datetime, report: RoundsReport) -> None:
        slots = job.schedule.slots(now - self.grace, now)
        if not slots:
            return
        done = await self._store.done_keys(job.name, [slot.key for slot in slots])
        missing = tuple(slot for slot in slots if slot.key not in done)
        if not missing:
            return
        window = RoundWindow(job.name, missing)
        digests = [d for d in await job.compose(window, now) if d.parts]
        if not await self._store.claim_round(
            job.name, [slot.key for slot in missing], digests, now=now
        ):
            report.taken += 1
            log.info("round already claimed", extra={"event": job.name})
            return
        report.rounds += 1
        report.digests += len(digests)
        report.jobs[job.name] = report.jobs.get(job.name, 0) + len(digests)
        if len(missing) > 1 or digests:
            log.info("round queued", extra={
                "event": job.name, "count": len(digests), "slots": len(missing)})


@dataclass(frozen=True, slots=True)
class Group:
    """A linked police group, for a per-group round (the morning summary)."""

    chat_id: int
    scope: str  # "commune" | "province"
    code: int


def per_group(
    groups: Callable[[], Awaitable[Sequence[Group]]],
    text: Callable[[Group, RoundWindow, datetime], Awaitable[str | None]],
) -> Compose:
    """A compose that asks ``text`` for each linked group's message (None: nothing for that
    group), e.g. the morning summary."""

    async def compose(window: RoundWindow, now: datetime) -> list[Digest]:
        digests = []
        for group in await groups():
            body = await text(group, window, now)
            if body:
                digests.append(Digest(group.chat_id, tuple(split_lines("", body.split("\n")))))
        return digests

    return compose


def split_lines(
    header: str, lines: Sequence[str], *, limit: int = TEXT_LIMIT,
    part_label: Callable[[int, int], str] | None = None,
) -> list[str]:
    """``header`` and ``lines`` in as few messages as fit within ``limit`` characters, never
    splitting a line (a longer line is cut); each message after the first repeats the
    header, and with several messages ``part_label(index, total)`` is added to it."""
    reserve = len(part_label(99, 99)) + 1 if part_label is not None else 0
    room = limit - len(header) - reserve - 1
    bodies: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line[:room]
        if bodies[-1] and size + len(line) + 1 > room:
            bodies.append([])
            size = 0
        bodies[-1].append(line)
        size += len(line) + 1
    parts = []
    for index, body in enumerate(bodies, start=1):
        head = header
        if part_label is not None and len(bodies) > 1:
            head = f"{header} {part_label(index, len(bodies))}" if header else \
                part_label(index, len(bodies))
        parts.append("\n".join(([head] if head else []) + body))
    return parts
