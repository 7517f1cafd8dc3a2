"""The persistent outbox: every message the bot owes a police group is a row first.

A worker sends due rows through a ``Transport`` (Telegram today), records progress of
multi-part sends (card, photos, location) step by step, and retries with back-off on
network errors, 5xx and 429 (honouring retry_after). Rows survive restarts; a tip card is
never given up: a gone group is routed around (commune -> province -> ops), and a tip with
nowhere to go waits, logged loudly, until a group is linked.

The resident's receipt is a row too ("receipt", committed with the tip, due ``RECEIPT_DELAY``
later in bot/domain/intake.py): the confirm handler sends the receipt itself at once and then
marks the row sent (``receipt_sent``); if that send fails it makes the row due now
(``receipt_missed``), and if the process dies first the row comes due by itself. A receipt
row stands outside its tip's line: it neither waits for the card nor holds anything back.

Leases: a row is claimed with a lease (``LEASE``, ``URGENT_LEASE`` for urgent tips) that names
the worker run holding it (``lease_owner`` = "<host>#<run id>"). A worker that starts takes
back at once the rows leased by an earlier run on the same host (that run died: kill -9,
power loss), instead of waiting for their leases to run out; rows leased on another host
wait for their lease (that worker may still be sending).

Delivery is at least once. Each step is sent and then recorded; a crash between Telegram
accepting a message and the record repeats that one step after the restart, never skips it.
This cannot be closed from our side (the Bot API has no idempotency key). A claimed row whose
attempt never finished (its lease owner is still set), or whose send timed out, may already
have been posted: the card sent again is marked "🔁 Gửi lại" so the police see that an
identical card may sit above it. Photos, locations, notices and relays repeated this way are
not marked (a repeated photo album is a reply to the same card with the same captions); a
receipt may reach the resident twice (the same code).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Integer, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ColumnElement, Exists, Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.batching import GroupCommit
from bot.domain.cards import CardRenderer, photo_caption
from bot.domain.notices import ReporterNotices
from bot.domain.routing import Destination, Router
from bot.domain.sealing import ReplyAddress, SealBroken
from storage import repositories as repo
from storage.db import Database
from storage.models import (
    OutboxMessage,
    Photo,
    RelayMessage,
    Tip,
    TipCard,
    TipEvent,
    TipReporter,
    UTCDateTime,
    utcnow,
)

log = logging.getLogger(__name__)

# a claimed row is retried after this if its worker died on another host (on this host the
# next start takes it back at once); urgent tips' rows sooner
LEASE = timedelta(minutes=2)
URGENT_LEASE = timedelta(seconds=30)
RECEIPT = "receipt"  # the kind of the receipt's safety-net row
# receipts the confirm handler delivered are marked in the outbox's next write (usually the
# record of the same tip's card), at the latest after this: no write transaction of their own
RECEIPT_MARK_LINGER_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 300.0
MAX_ATTEMPTS = 12  # for edits, notices and relays (~30 min of back-off); cards never give up
NO_DESTINATION_RETRY_SECONDS = 60.0


class DeliveryError(Exception):
    """Base of what a transport may raise."""


class RetryLater(DeliveryError):
    def __init__(
        self, reason: str, seconds: float | None = None, *, maybe_sent: bool = False
    ) -> None:
        super().__init__(reason)
        self.seconds = seconds  # None: use the back-off schedule
        self.maybe_sent = maybe_sent  # no answer (a timeout): Telegram may have posted it


class ChatGone(DeliveryError):
    """The bot was kicked/blocked or the chat does not exist."""


class ChatMoved(DeliveryError):
    def __init__(self, old_chat_id: int, new_chat_id: int) -> None:
        super().__init__(f"chat moved to {new_chat_id}")
        self.old_chat_id = old_chat_id
        self.new_chat_id = new_chat_id


Buttons = list[list[tuple[str, str]]]  # rows of (label, callback data)


class Transport(Protocol):
    async def send_html(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        buttons: Buttons | None = None,
    ) -> int: ...

    async def edit_html(
        self, chat_id: int, message_id: int, text: str, *, buttons: Buttons | None = None
    ) -> None: ...

    async def send_to_reporter(
        self, address: ReplyAddress, text: str, *, html: bool = False
    ) -> int: ...

    async def send_photos(
        self, chat_id: int, photos: Sequence[bytes], captions: Sequence[str],
        *, reply_to: int | None = None,
    ) -> list[int]: ...

    async def send_location(
        self, chat_id: int, latitude: float, longitude: float, *, reply_to: int | None = None
    ) -> int: ...


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0


@dataclass(frozen=True, slots=True)
class _Mark:
    row_id: int
    status: str


@dataclass(frozen=True, slots=True)
class _CardPosted:
    row_id: int
    tip_id: int
    chat_id: int
    message_id: int
    scope: str
    payload: str
    finished: bool  # the row's last step: marked sent in the same write


@dataclass(slots=True)
class _Claimed:
    """A row taken with a lease, and what was read for it in the same pass."""

    row: OutboxMessage
    more: bool = False  # the tip has later rows waiting for this one
    resend: bool = False  # an earlier claim never finished: its send may have gone out
    tip: Tip | None = None
    destination: Destination | None = None


class _Statements:
    """The worker's per-row bookkeeping, built once, run with lists of parameters."""

    def __init__(self) -> None:
        tips, outbox = Tip.__table__, OutboxMessage.__table__  # type: ignore[attr-defined]
        self.insert_cards = sa.insert(TipCard.__table__)  # type: ignore[attr-defined]
        self.insert_events = sa.insert(TipEvent.__table__)  # type: ignore[attr-defined]
        self.tip_delivered = sa.update(tips).where(tips.c.id == bindparam("tip")).values(
            delivered_at=bindparam("at"), queue_scope=bindparam("scope"),
            queue_chat_id=bindparam("chat"),
        )
        self.row_progress = sa.update(outbox).where(outbox.c.id == bindparam("row")).values(
            payload=bindparam("payload"), status=bindparam("status"),
            sent_at=bindparam("sent_at"),
        )
        self.mark_rows = (
            sa.update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))
            .values(status=bindparam("status"), sent_at=bindparam("at"))
        )
        self.receipts_sent = (
            sa.update(outbox)
            .where(outbox.c.tip_id.in_(bindparam("tips", expanding=True)),
                   outbox.c.kind == RECEIPT, outbox.c.status == "pending",
                   outbox.c.payload == "{}")  # the tip's own receipt, not a merge answer
            .values(status="sent", sent_at=bindparam("at"))
        )


_SQL = _Statements()


def _due_heads_query() -> Select[Any, Any, Any, Any]:  # (id, later waiting, urgent, lease owner)
    """Ids of the due rows that are first in their tip's line, whether more of that tip
    wait behind them, the tip's urgency and who held the row's last lease (built once:
    ``now``, ``limit`` are parameters). Receipt rows are outside the line: always first,
    never in anybody's way."""
    other = aliased(OutboxMessage)

    def pending_of_same_tip(*where: ColumnElement[bool]) -> Exists:
        return select(other.id).where(
            col(other.tip_id) == col(OutboxMessage.tip_id), col(other.status) == "pending",
            col(other.kind) != RECEIPT, *where,
        ).exists()

    earlier_pending = pending_of_same_tip(col(other.id) < col(OutboxMessage.id))
    later_pending = pending_of_same_tip(col(other.id) > col(OutboxMessage.id))
    return (
        sa.select(col(OutboxMessage.id), later_pending, col(Tip.urgent),
                  col(OutboxMessage.lease_owner))
        .outerjoin(Tip, col(Tip.id) == col(OutboxMessage.tip_id))
        .where(col(OutboxMessage.status) == "pending",
               col(OutboxMessage.next_attempt_at) <= bindparam("now", type_=UTCDateTime),
               sa.or_(col(OutboxMessage.kind) == RECEIPT, ~earlier_pending))
        .order_by(col(Tip.urgent).desc(), col(OutboxMessage.id))
        .limit(bindparam("limit", type_=Integer))
    )


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        renderer: CardRenderer,
        router: Router,
        notices: ReporterNotices,
        *,
        poll_interval: float = 2.0,
        concurrency: int = 32,
        node: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self._db = db
        # the lease names this run (one start()); rows leased by another run of the same
        # node (host) are that run's leftovers once this one starts
        self._node = (node or socket.gethostname() or "node")[:40]
        self._run_id = run_id
        self.lease_owner = self._new_lease_owner()
        self._transport: Transport | None = None
        self._renderer = renderer
        self._router = router
        self._notices = notices
        self._poll_interval = poll_interval
        # rows in flight at once; a claimed row waits at most this many sends of one group
        # (20/min) behind it, which should stay inside the LEASE (this worker never takes a
        # row it is still sending twice; another process could, once the lease ran out:
        # URGENT_LEASE trades that risk for a faster take-over of urgent cards)
        self._concurrency = concurrency
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        # the bookkeeping after a send, batched across rows (one transaction per batch)
        self._marks: GroupCommit[_Mark, None] = GroupCommit(self._write_marks, name="outbox-mark")
        self._posted: GroupCommit[_CardPosted, None] = GroupCommit(
            self._write_cards_posted, name="outbox-card"
        )
        self._due_heads = _due_heads_query()
        self._backlog = False
        self._in_flight: set[int | None] = set()
        self._receipts_done: set[int] = set()  # tips whose receipt row is still to be marked
        self._receipts_flush: asyncio.Task[None] | None = None
        self.stats = OutboxStats()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wakeup.set()

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("the outbox has no transport yet: call start()")
        return self._transport

    def _new_lease_owner(self) -> str:
        return f"{self._node}#{self._run_id or uuid.uuid4().hex[:16]}"[:64]

    def start(self, transport: Transport) -> None:
        self._transport = transport
        self._stopping = False
        self.lease_owner = self._new_lease_owner()
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop taking new rows, let the rows being sent finish (up to ``grace_seconds``),
        then cancel what is left: a row cut off mid-send is taken back by the next start on
        this host (elsewhere: after its lease), and re-sent marked as possibly repeated."""
        self._stopping = True
        if self._task is not None:
            self.wake()  # the loop sees _stopping and ends; cancelled if it does not at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait({self._task}, timeout=1.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for bookkeeping in (self._posted, self._marks):  # what was sent is recorded
            await bookkeeping.wait_idle()
        if self._receipts_flush is not None:
            self._receipts_flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receipts_flush
            self._receipts_flush = None
        await self._flush_receipts()
        self._task = None
        self._tasks.clear()

    async def _run(self) -> None:
        try:
            await self._take_back_leftover_leases()
        except Exception:
            log.exception("could not take back the rows of an earlier run (their leases will)")
        while not self._stopping:
            self._wakeup.clear()
            try:
                room = self._concurrency - len(self._tasks)
                if room > 0:
                    for claimed in await self._claim_due(room):
                        self._in_flight.add(claimed.row.id)
                        task = asyncio.create_task(self._process(claimed), name="outbox-row")
                        self._tasks.add(task)
                        task.add_done_callback(self._row_done)
            except Exception:
                log.exception("outbox pass failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # lands as the event is set, and the worker then never stopped (a shutdown hang)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()

    def _row_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # rows the last pass had to leave: fetched again once half the slots are free (the
        # look for due rows scans every pending row: once per card would cost more than the
        # cards under a burst)
        if self._backlog and len(self._tasks) <= self._concurrency // 2:
            self.wake()

    async def _take_back_leftover_leases(self) -> int:
        """Rows an earlier run on this host had claimed and never finished are due now."""
        now = utcnow()
        async with self._db.transaction() as session:
            result = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == "pending",
                       col(OutboxMessage.lease_owner).startswith(f"{self._node}#",
                                                                 autoescape=True),
                       col(OutboxMessage.lease_owner) != self.lease_owner,
                       col(OutboxMessage.next_attempt_at) > now)
                .values(next_attempt_at=now)
            )
            count = int(result.rowcount or 0)
        if count:
            log.warning("rows left leased by an earlier run are due again",
                        extra={"count": count})
        return count

    async def _claim_due(self, limit: int) -> list[_Claimed]:
        """Take up to ``limit`` due rows with a lease, so two workers never send a row at once.

        Only the first pending row of each tip is due: a tip's messages go out in order (its
        card before the card's refresh, "acknowledged" before "processed"), even when an
        earlier one waits for a retry; a row being sent keeps its tip's later rows back, since
        it stays pending until marked. A receipt row is outside that line (it neither waits
        nor holds anything back). Urgent tips first, with the shorter lease. A row whose
        previous lease was never given back (its worker died mid-attempt) is claimed as a
        possible re-send. The candidates are read without the write lock (most passes find
        nothing); the lease is one ``UPDATE … RETURNING`` that re-checks each row, so a row
        claimed meanwhile by another worker is skipped."""
        now = utcnow()
        async with self._db.session() as session:
            heads = (await (await session.connection()).execute(
                self._due_heads, {"now": now, "limit": limit}
            )).all()
        # a row still being sent here (a slow group) may outlive its lease: never take it twice
        ids = [row_id for row_id, _later, _urgent, _owner in heads
               if row_id is not None and row_id not in self._in_flight]
        more = {row_id for row_id, later, _urgent, _owner in heads if later}
        urgent = [row_id for row_id, _later, is_urgent, _owner in heads if is_urgent]
        # still leased by somebody: that attempt never finished (its worker died)
        unfinished = {row_id for row_id, _later, _urgent, owner in heads if owner is not None}
        self._backlog = len(heads) >= limit  # more may be due than were taken
        if not ids:
            return []
        lease_until: Any = now + LEASE
        if urgent:
            lease_until = sa.case(
                (col(OutboxMessage.id).in_(urgent), sa.literal(now + URGENT_LEASE, UTCDateTime)),
                else_=sa.literal(now + LEASE, UTCDateTime),
            )
        receipts: list[int] = []
        try:
            async with self._db.transaction() as session:
                rows = (await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(ids),
                           col(OutboxMessage.status) == "pending",
                           col(OutboxMessage.next_attempt_at) <= now)
                    .values(next_attempt_at=lease_until, attempts=OutboxMessage.attempts + 1,
                            lease_owner=self.lease_owner)
                    .returning(OutboxMessage)
                    .execution_options(synchronize_session=False),
                )).scalars().all()
                order = {row_id: position for position, row_id in enumerate(ids)}
                claimed = [_Claimed(row, more=row.id in more, resend=row.id in unfinished)
                           for row in sorted(rows, key=lambda row: order[row.id or 0])]
                await self._prefetch(session, claimed)
                await self._mark_receipts(await session.connection(), now, receipts)
        except BaseException:
            self._receipts_done.update(receipts)  # not committed: the next write marks them
            raise
        return claimed

    async def _prefetch(self, session: AsyncSession, claimed: list[_Claimed]) -> None:
        """The tips of the claimed rows, and where new cards go, in two queries in all."""
        tip_ids = {c.row.tip_id for c in claimed if c.row.tip_id is not None}
        if not tip_ids:
            return
        tips = {tip.id: tip for tip in (await session.exec(
            select(Tip).where(col(Tip.id).in_(tip_ids))
        )).all()}
        new_cards: list[_Claimed] = []
        for item in claimed:
            item.tip = tips.get(item.row.tip_id)
            if (item.row.kind == "tip_card" and item.tip is not None
                    and item.row.payload in ("", "{}")):  # first attempt: plain routing
                new_cards.append(item)
        places = [(c.tip.commune_code, c.tip.province_code) for c in new_cards if c.tip]
        for item, destination in zip(
            new_cards, await self._router.destinations(session, places), strict=True
        ):
            item.destination = destination

    async def _process(self, claimed: _Claimed) -> None:
        try:
            await self._process_row(claimed)
        finally:
            self._in_flight.discard(claimed.row.id)

    async def _process_row(self, claimed: _Claimed) -> None:
        row = claimed.row
        try:
            await self._deliver(claimed)
        except RetryLater as error:
            await self._reschedule(row, str(error), error.seconds,
                                   maybe_sent=error.maybe_sent or claimed.resend)
        except Exception as error:  # never lose the row: back off and alert via logs
            log.exception("outbox delivery failed", extra={"outbox_id": row.id})
            await self._reschedule(row, f"{type(error).__name__}: {error}", None,
                                   maybe_sent=claimed.resend)
        else:
            if claimed.more:
                self.wake()  # the tip's next row is due now

    async def _reschedule(
        self, row: OutboxMessage, reason: str, seconds: float | None, *, maybe_sent: bool
    ) -> None:
        """The attempt is over (the lease is given back); the row is due again after the
        back-off. A card that may have gone out already is marked for the next attempt."""
        if row.kind != "tip_card" and row.attempts >= MAX_ATTEMPTS:
            await self._give_up(row, reason)
            row.status = "failed"
            return
        delay = seconds if seconds is not None else min(2.0 ** row.attempts, MAX_BACKOFF_SECONDS)
        values: dict[str, Any] = {
            "next_attempt_at": utcnow() + timedelta(seconds=delay), "last_error": reason[:300],
            "lease_owner": None,
        }
        if maybe_sent and row.kind == "tip_card":
            progress = json.loads(row.payload or "{}")
            if "card" not in progress and not progress.get("resend"):
                progress["resend"] = True
                values["payload"] = row.payload = json.dumps(progress)
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(**values)
            )
        self.stats.retried += 1
        log.warning("outbox delivery postponed", extra={
            "outbox_id": row.id, "tip_id": row.tip_id, "attempt": row.attempts,
            "retry_after": round(delay, 1), "error_type": reason[:80],
        })

    async def _give_up(self, row: OutboxMessage, reason: str) -> None:
        """A card edit, notice or relay that keeps failing: recorded as failed, audited and
        shown to the admins; tip cards themselves are never given up."""
        await self._mark(row, "failed")
        if row.tip_id is not None:
            async with self._db.transaction() as session:
                session.add(TipEvent(tip_id=row.tip_id, actor_kind="system",
                                     event="delivery_failed",
                                     details=json.dumps({"kind": row.kind})))
        log.error("outbox message given up", extra={
            "outbox_id": row.id, "tip_id": row.tip_id, "attempt": row.attempts,
            "error_type": reason[:80],
        })
        ops = self._router.ops_chat_id
        if ops is not None:
            with contextlib.suppress(DeliveryError):
                await self.transport.send_html(
                    ops, f"⚠️ Không gửi được ({html.escape(row.kind)}) cho tin báo số "
                    f"{row.tip_id} sau {row.attempts} lần thử: {html.escape(reason[:150])}"
                )

    async def _save_progress(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id).values(payload=json.dumps(progress))
            )
        row.payload = json.dumps(progress)

    async def _deliver(self, claimed: _Claimed) -> None:
        row = claimed.row
        progress: dict[str, Any] = json.loads(row.payload or "{}")
        if row.kind == "tip_card":
            while True:
                try:
                    await self._deliver_tip_card(claimed, progress)
                    break
                except ChatMoved as moved:
                    await self._follow_migration(row, progress, moved.new_chat_id)
                except ChatGone:
                    await self._route_around(row, progress)
                    claimed.resend = False  # the next group never had this card
                claimed.tip = claimed.destination = None  # read again for the next try
        else:
            deliver = {
                RECEIPT: self._send_receipt,
                "card_refresh": self._refresh_cards,
                "card_retire": self._retire_card,
                "reporter_notice": self._notify_reporter,
                "group_relay": self._relay_to_group,
            }.get(row.kind)
            if deliver is None:
                raise RuntimeError(f"unknown outbox kind {row.kind!r}")
            try:
                await deliver(row, progress)
            except ChatMoved as moved:  # the group became a supergroup: follow it, go again
                await self._chat_moved(moved.old_chat_id, moved.new_chat_id)
                raise RetryLater("group migrated to a supergroup", 0) from moved
        if row.status == "pending":  # a card without attachments was marked with its record
            await self._mark(row, "sent")

    async def _mark(self, row: OutboxMessage, status: str) -> None:
        assert row.id is not None
        await self._marks.run(_Mark(row.id, status))
        row.status = status
        if status == "sent":
            self.stats.sent += 1

    async def _write_marks(self, marks: Sequence[_Mark]) -> list[None]:
        now = utcnow()
        receipts: list[int] = []
        try:
            async with self._db.transaction() as session:
                sql = await session.connection()
                for status in sorted({mark.status for mark in marks}):
                    await sql.execute(_SQL.mark_rows, {
                        "ids": [m.row_id for m in marks if m.status == status],
                        "status": status, "at": now,
                    })
                await self._mark_receipts(sql, now, receipts)
        except BaseException:
            self._receipts_done.update(receipts)
            raise
        return [None] * len(marks)

    # --- the receipt's safety net ----------------------------------------------------------

    async def receipt_sent(self, tip_id: int) -> None:
        """The confirm handler got the receipt to the resident: its row is done. Marked in
        the worker's next write (no transaction of its own under load), at the latest after
        ``RECEIPT_MARK_LINGER_SECONDS``; at once when the worker is not running. A crash in
        between only means the resident gets the receipt a second time."""
        if self._task is None or self._stopping:
            self._receipts_done.add(tip_id)
            await self._flush_receipts()
            return
        self._receipts_done.add(tip_id)
        if self._receipts_flush is None or self._receipts_flush.done():
            self._receipts_flush = asyncio.create_task(
                self._flush_receipts_later(), name="outbox-receipts"
            )

    async def _flush_receipts_later(self) -> None:
        await asyncio.sleep(RECEIPT_MARK_LINGER_SECONDS)
        await self._flush_receipts()

    async def _flush_receipts(self) -> None:
        if not self._receipts_done:
            return
        receipts: list[int] = []
        try:
            async with self._db.transaction() as session:
                await self._mark_receipts(await session.connection(), utcnow(), receipts)
        except Exception:  # the rows come due and the receipt is sent again: not lost
            self._receipts_done.update(receipts)
            log.warning("could not mark receipts as sent", exc_info=True,
                        extra={"count": len(receipts)})

    async def _mark_receipts(self, sql: AsyncConnection, now: datetime, taken: list[int]) -> None:
        """Inside a write transaction: mark the receipt rows the handler has sent since the
        last write; their tips go into ``taken`` (put back by the caller if the write fails)."""
        if not self._receipts_done:
            return
        taken.extend(sorted(self._receipts_done))
        self._receipts_done.clear()
        await sql.execute(_SQL.receipts_sent, {"tips": taken, "at": now})

    async def receipt_missed(
        self, tip_id: int, *, retry_after: float | None = None, duplicate: bool = False
    ) -> None:
        """The confirm handler could not send the receipt (5xx, timeout, 429): the outbox
        sends it now (or after ``retry_after``). For a merged duplicate (no new tip, so no
        row of its own) the "merged" message becomes a row of the earlier tip."""
        due = utcnow() + timedelta(seconds=max(retry_after or 0.0, 0.0))
        async with self._db.transaction() as session:
            if duplicate:
                session.add(OutboxMessage(kind=RECEIPT, tip_id=tip_id, next_attempt_at=due,
                                          payload=json.dumps({"duplicate": True})))
            else:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.tip_id) == tip_id,
                           col(OutboxMessage.kind) == RECEIPT,
                           col(OutboxMessage.status) == "pending",
                           col(OutboxMessage.lease_owner).is_(None),
                           col(OutboxMessage.next_attempt_at) > due)
                    .values(next_attempt_at=due)
                )
        self.wake()

    async def _send_receipt(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        """The receipt the confirm handler could not give: the same words, through the
        sealed reply address."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            reporter = await session.get(TipReporter, row.tip_id)
            language = await self._notices.language_of(session, reporter)
        if tip is None or reporter is None:  # the reply link was purged: nobody to tell
            return
        text = self._notices.receipt(tip.code, language, duplicate=bool(progress.get("duplicate")))
        try:
            address = self._notices.open(reporter.sealed_chat)
            await self.transport.send_to_reporter(address, text, html=True)
        except (ChatGone, SealBroken):  # blocked the bot since: the code is in /mytips
            log.info("receipt undeliverable", extra={"tip_id": row.tip_id, "status": "gone"})
            await self._mark(row, "failed")
            return
        log.info("receipt sent by the outbox", extra={"tip_id": row.tip_id})

    async def _deliver_tip_card(self, claimed: _Claimed, progress: dict[str, Any]) -> None:
        row = claimed.row
        if claimed.resend and "card" not in progress:
            progress["resend"] = True
        assert row.tip_id is not None
        if claimed.tip is not None and (claimed.tip.photo_count == 0 or "photos" in progress) \
                and (claimed.destination is not None or progress.get("chat_id") is not None):
            tip, photos = claimed.tip, ()  # all read when the row was claimed
            if progress.get("chat_id") is None:
                assert claimed.destination is not None
                if claimed.destination.chat_id is None:
                    log.error("tip has no destination: link a group", extra={"tip_id": tip.id})
                    raise RetryLater("no group linked", NO_DESTINATION_RETRY_SECONDS)
                progress.update(chat_id=claimed.destination.chat_id,
                                scope=claimed.destination.scope)
        else:
            tip, photos = await self._read_tip_for_card(row, progress)  # type: ignore[assignment]
        await self._send_card(row, tip, photos, progress)

    async def _read_tip_for_card(
        self, row: OutboxMessage, progress: dict[str, Any]
    ) -> tuple[Tip, Sequence[Photo]]:
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            assert tip is not None and tip.id is not None
            if progress.get("chat_id") is None:
                destination = await self._router.destination(
                    session, commune_code=tip.commune_code, province_code=tip.province_code,
                    skip_chat_ids=frozenset(progress.get("gone", [])),
                    province_only=bool(progress.get("route", {}).get("province_only")),
                )
                if destination.chat_id is None:
                    log.error("tip has no destination: link a group", extra={"tip_id": tip.id})
                    if progress.pop("gone", None):  # try the groups again next time round
                        await self._save_progress(row, progress)
                    raise RetryLater("no group linked", NO_DESTINATION_RETRY_SECONDS)
                progress.update(chat_id=destination.chat_id, scope=destination.scope)
            photos = (await session.exec(
                select(Photo).where(col(Photo.tip_id) == tip.id).order_by(col(Photo.position))
            )).all() if tip.photo_count else []
        return tip, photos

    async def _send_card(
        self, row: OutboxMessage, tip: Tip, photos: Sequence[Photo], progress: dict[str, Any]
    ) -> None:
        chat_id: int = progress["chat_id"]
        if "card" not in progress:
            ids = []
            parts = self._renderer.render(tip, queue_scope=progress["scope"],
                                          resent=bool(progress.get("resend")))
            for index, part in enumerate(parts):
                buttons = self._renderer.buttons(tip) if index == 0 else None
                ids.append(await self.transport.send_html(chat_id, part, buttons=buttons))
            progress.pop("resend", None)
            progress["card"] = ids
            # nothing else to send: the row is finished in the same write
            last = not photos and (tip.latitude is None or tip.longitude is None)
            await self._record_card(row, tip, chat_id, ids[0], progress, finished=last)
        card_id = progress["card"][0]
        if photos and not progress.get("photos"):
            captions = [photo_caption(tip.code, i + 1, len(photos), photo.caption)
                        for i, photo in enumerate(photos)]
            await self.transport.send_photos(
                chat_id, [p.data for p in photos], captions, reply_to=card_id
            )
            progress["photos"] = True
            await self._save_progress(row, progress)
        if tip.latitude is not None and tip.longitude is not None and not progress.get("location"):
            await self.transport.send_location(
                chat_id, tip.latitude, tip.longitude, reply_to=card_id
            )
            progress["location"] = True
            await self._save_progress(row, progress)

    async def _record_card(
        self, row: OutboxMessage, tip: Tip, chat_id: int, message_id: int,
        progress: dict[str, Any], *, finished: bool,
    ) -> None:
        assert row.id is not None and tip.id is not None
        row.payload = json.dumps(progress)
        await self._posted.run(_CardPosted(
            row_id=row.id, tip_id=tip.id, chat_id=chat_id, message_id=message_id,
            scope=progress["scope"], payload=row.payload, finished=finished,
        ))
        if finished:
            row.status = "sent"
            self.stats.sent += 1
        log.info("tip card delivered", extra={"tip_id": tip.id, "scope": progress["scope"]})

    async def _write_cards_posted(
        self, posted: Sequence[_CardPosted]
    ) -> list[BaseException | None]:
        """The card's message id, the tip's queue, the audit event and the row's progress,
        for every card posted since the last batch; one by one if the batch fails, so one
        bad record does not make every card of the batch go out again."""
        try:
            return [*await self._write_cards_posted_together(posted)]
        except Exception as error:
            if len(posted) == 1:
                return [error]
        results: list[BaseException | None] = []
        for card in posted:
            try:
                results.extend(await self._write_cards_posted_together([card]))
            except Exception as error:
                results.append(error)
        return results

    async def _write_cards_posted_together(self, posted: Sequence[_CardPosted]) -> list[None]:
        now = utcnow()
        receipts: list[int] = []
        try:
            async with self._db.transaction() as session:
                sql = await session.connection()
                await sql.execute(_SQL.insert_cards, [
                    {"tip_id": card.tip_id, "chat_id": card.chat_id,
                     "message_id": card.message_id, "active": True, "created_at": now}
                    for card in posted
                ])
                await sql.execute(_SQL.insert_events, [
                    {"tip_id": card.tip_id, "actor_kind": "system", "event": "delivered",
                     "at": now, "details": json.dumps({"queue": card.scope})}
                    for card in posted
                ])
                await sql.execute(_SQL.tip_delivered, [
                    {"tip": card.tip_id, "at": now, "scope": card.scope, "chat": card.chat_id}
                    for card in posted
                ])
                await sql.execute(_SQL.row_progress, [
                    {"row": card.row_id, "payload": card.payload,
                     "status": "sent" if card.finished else "pending",
                     "sent_at": now if card.finished else None}
                    for card in posted
                ])
                await self._mark_receipts(sql, now, receipts)
        except BaseException:
            self._receipts_done.update(receipts)  # not committed: the next write marks them
            raise
        return [None] * len(posted)

    async def _follow_migration(
        self, row: OutboxMessage, progress: dict[str, Any], new_chat_id: int
    ) -> None:
        await self._chat_moved(progress["chat_id"], new_chat_id)
        progress["chat_id"] = new_chat_id
        await self._save_progress(row, progress)

    async def _chat_moved(self, old_chat_id: int, new_chat_id: int) -> None:
        """Links, live cards, prompts and queues follow a group to its supergroup id."""
        async with self._db.transaction() as session:
            if await repo.link_by_chat(session, chat_id=new_chat_id) is None:
                await repo.move_link_chat(
                    session, old_chat_id=old_chat_id, new_chat_id=new_chat_id
                )
        log.info("group migrated during delivery",
                 extra={"chat_id": old_chat_id, "new_chat_id": new_chat_id})

    async def _route_around(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        gone = progress.get("chat_id")
        progress["gone"] = sorted({*progress.get("gone", []), gone})
        for key in ("chat_id", "scope", "card", "photos", "location", "resend"):
            progress.pop(key, None)
        await self._save_progress(row, progress)
        assert row.tip_id is not None
        async with self._db.transaction() as session:
            # a card already posted there is no longer the live one: one queue per tip
            await session.exec(
                update(TipCard)
                .where(col(TipCard.tip_id) == row.tip_id, col(TipCard.chat_id) == gone)
                .values(active=False)
            )
            session.add(TipEvent(tip_id=row.tip_id, actor_kind="system",
                                 event="delivery_rerouted", details=json.dumps({"gone": gone})))
        log.warning("group unreachable, routing around it",
                    extra={"tip_id": row.tip_id, "chat_id": gone})

    # --- after triage: cards edited in place, the reporter told, answers relayed ----------

    async def _active_cards(self, tip_id: int) -> list[TipCard]:
        async with self._db.session() as session:
            return list((await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, col(TipCard.active).is_(True)
            ))).all())

    async def _refresh_cards(self, row: OutboxMessage, _progress: dict[str, Any]) -> None:
        """Edit every active card of the tip to its current state ("not modified" = done)."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
        assert tip is not None
        text = self._renderer.render(tip)[0]
        for card in await self._active_cards(row.tip_id):
            try:
                await self.transport.edit_html(
                    card.chat_id, card.message_id, text, buttons=self._renderer.buttons(tip)
                )
            except ChatGone:
                log.warning("card's group is gone", extra={"tip_id": tip.id})

    async def _retire_card(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        """An old card after a transfer: marked transferred, buttons removed."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
        assert tip is not None
        try:
            await self.transport.edit_html(
                progress["chat_id"], progress["message_id"],
                self._renderer.retired(tip, progress.get("to")),
                buttons=None,
            )
        except ChatGone:
            log.warning("retired card's group is gone", extra={"tip_id": tip.id})

    async def _notify_reporter(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            reporter = await session.get(TipReporter, row.tip_id)
            language = await self._notices.language_of(session, reporter)
        assert tip is not None
        text = self._notices.render(tip, progress, language)
        if reporter is None:
            await self._reporter_unreachable(row, tip, progress, "purged")
            return
        if progress.get("unreachable"):  # found out on an earlier attempt
            await self._reporter_unreachable(row, tip, progress, progress["unreachable"])
            return
        try:
            address = self._notices.open(reporter.sealed_chat)
            message_id = await self.transport.send_to_reporter(address, text)
        except (ChatGone, SealBroken):
            await self._reporter_unreachable(row, tip, progress, "gone")
            return
        async with self._db.transaction() as session:
            if progress.get("notice") == "question":
                session.add(RelayMessage(tip_id=row.tip_id, side="reporter",
                                         key=reporter.pseudonym, message_id=message_id,
                                         purpose="question"))
            session.add(TipEvent(tip_id=row.tip_id, actor_kind="system", event="reporter_notified",
                                 details=json.dumps({"notice": progress.get("notice")})))

    async def _reporter_unreachable(
        self, row: OutboxMessage, tip: Tip, progress: dict[str, Any], why: str
    ) -> None:
        """Audit once and warn each live card's group once, however often this is retried."""
        assert tip.id is not None
        if not progress.get("unreachable"):
            progress["unreachable"] = why
            async with self._db.transaction() as session:
                session.add(TipEvent(
                    tip_id=tip.id, actor_kind="system", event="reporter_unreachable",
                    details=json.dumps({"why": why}),
                ))
                await session.exec(
                    update(OutboxMessage).where(col(OutboxMessage.id) == row.id)
                    .values(payload=json.dumps(progress))
                )
            log.info("reporter unreachable", extra={"tip_id": tip.id, "status": why})
        for card in await self._active_cards(tip.id):
            if progress.get(f"warned:{card.id}"):
                continue
            try:
                await self.transport.send_html(
                    card.chat_id, self._notices.unreachable(tip), reply_to=card.message_id
                )
            except ChatGone:
                log.warning("card's group is gone", extra={"tip_id": tip.id})
            progress[f"warned:{card.id}"] = True
            await self._save_progress(row, progress)

    async def _relay_to_group(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        """The reporter's answer, as a reply to the card: text and sanitised photos only."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            photos = (await session.exec(
                select(Photo).where(col(Photo.id).in_(progress.get("photo_ids", [])))
                .order_by(col(Photo.position))
            )).all()
        assert tip is not None
        for card in await self._active_cards(row.tip_id):
            if not progress.get(f"text:{card.id}"):
                await self.transport.send_html(
                    card.chat_id, self._notices.answer_in_group(tip, progress.get("text")),
                    reply_to=card.message_id,
                )
                progress[f"text:{card.id}"] = True
                await self._save_progress(row, progress)
            if photos and not progress.get(f"photos:{card.id}"):
                captions = [photo_caption(tip.code, i + 1, len(photos))
                            for i in range(len(photos))]  # the answer's text went above
                await self.transport.send_photos(
                    card.chat_id, [p.data for p in photos], captions, reply_to=card.message_id
                )
                progress[f"photos:{card.id}"] = True
                await self._save_progress(row, progress)
