"""The outbox worker: takes due rows with a lease, hands each to the delivery of its kind,
and retries with back-off (``DeliveryPolicy``); see the package's docstring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from bot.domain.batching import GroupCommit
from bot.domain.cards import CardRenderer
from bot.domain.notices import ReporterNotices
from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.deliveries.card import TipCardDelivery
from bot.domain.outbox.deliveries.card_edits import CardRefreshDelivery, CardRetireDelivery
from bot.domain.outbox.deliveries.digest import DigestDelivery
from bot.domain.outbox.deliveries.notice import ReporterNoticeDelivery
from bot.domain.outbox.deliveries.receipt import ReceiptDelivery
from bot.domain.outbox.deliveries.relay import GroupRelayDelivery
from bot.domain.outbox.payloads import (
    OutboxKind,
    Payload,
    PayloadError,
    ReceiptPayload,
    TipCardPayload,
    parse_payload,
)
from bot.domain.outbox.policy import DeliveryPolicy
from bot.domain.outbox.store import CardPosted, Mark, OutboxRow, OutboxStore
from bot.domain.outbox.transport import ChatMoved, DeliveryError, RetryLater, Transport
from bot.domain.routing import Router

log = logging.getLogger("bot.domain.outbox")

# a claimed row is retried after this if its worker died on another host (on this host the
# next start takes it back at once); urgent tips' rows sooner
LEASE = DeliveryPolicy().lease
URGENT_LEASE = DeliveryPolicy().urgent_lease
# receipts the confirm handler delivered are marked in the outbox's next write (usually the
# record of the same tip's card), at the latest after this: no write transaction of their own
RECEIPT_MARK_LINGER_SECONDS = 0.25

P = TypeVar("P", bound=Payload)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0


class OutboxWorker:
    def __init__(
        self,
        store: OutboxStore,
        renderer: CardRenderer,
        router: Router,
        notices: ReporterNotices,
        *,
        poll_interval: float = 2.0,
        concurrency: int = 32,
        node: str | None = None,
        run_id: str | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.router = router
        self.notices = notices
        # edits, notices, relays and receipts are given up after ``max_attempts``; a tip card
        # never is (same lease and back-off)
        self.policy = policy or DeliveryPolicy()
        self._card_policy = self.policy.never_giving_up()
        # the lease names this run (one start()); rows leased by another run of the same
        # node (host) are that run's leftovers once this one starts
        self._node = (node or socket.gethostname() or "node")[:40]
        self._run_id = run_id
        self.lease_owner = self._new_lease_owner()
        self._transport: Transport | None = None
        self._poll_interval = poll_interval
        # rows in flight at once; a claimed row waits at most this many sends of one group
        # (20/min) behind it, which should stay inside the lease (this worker never takes a
        # row it is still sending twice; another process could, once the lease ran out:
        # the urgent lease trades that risk for a faster take-over of urgent cards)
        self._concurrency = concurrency
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        # the bookkeeping after a send, batched across rows (one transaction per batch)
        self._marks: GroupCommit[Mark, None] = GroupCommit(self._write_marks, name="outbox-mark")
        self._posted: GroupCommit[CardPosted, None] = GroupCommit(
            self._write_cards_posted, name="outbox-card"
        )
        self._backlog = False
        self._in_flight: set[int] = set()
        self._receipts_done: set[int] = set()  # tips whose receipt row is still to be marked
        self._receipts_flush: asyncio.Task[None] | None = None
        self._deliveries: dict[OutboxKind, Delivery[Payload]] = {
            delivery.kind: delivery for delivery in (  # type: ignore[misc]
                TipCardDelivery(self), ReceiptDelivery(self), CardRefreshDelivery(self),
                CardRetireDelivery(self), ReporterNoticeDelivery(self), GroupRelayDelivery(self),
                DigestDelivery(self),
            )
        }
        self.stats = OutboxStats()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wakeup.set()

    def busy(self) -> bool:
        """Rows are being sent (or more are due than were taken): a broadcast running
        beside the outbox takes fewer of the bot's 30 messages/s meanwhile."""
        return bool(self._in_flight) or self._backlog

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
                    for job in await self._claim_due(room):
                        self._in_flight.add(job.row.id)
                        task = asyncio.create_task(self._process(job), name="outbox-row")
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
        count = await self.store.take_back_leases(
            node=self._node, owner=self.lease_owner, now=utcnow()
        )
        if count:
            log.warning("rows left leased by an earlier run are due again",
                        extra={"count": count})
        return count

    async def _claim_due(self, limit: int) -> list[Job[Payload]]:
        """Take up to ``limit`` due rows with a lease, so two workers never send a row at once.

        Only the first pending row of each tip is due: a tip's messages go out in order (its
        card before the card's refresh, "acknowledged" before "processed"), even when an
        earlier one waits for a retry; a row being sent keeps its tip's later rows back, since
        it stays pending until marked. A receipt row is outside that line (it neither waits
        nor holds anything back). Urgent tips first, with the shorter lease. A row whose
        previous lease was never given back (its worker died mid-attempt) is claimed as a
        possible re-send. The candidates are read without the write lock (most passes find
        nothing); the lease re-checks each row, so a row claimed meanwhile by another worker
        is skipped."""
        now = utcnow()
        heads = await self.store.due_heads(now, limit)
        # a row still being sent here (a slow group) may outlive its lease: never take it twice
        ids = [head.row_id for head in heads if head.row_id not in self._in_flight]
        more = {head.row_id for head in heads if head.later_waiting}
        # still leased by somebody: that attempt never finished (its worker died)
        unfinished = {head.row_id for head in heads if head.lease_owner is not None}
        self._backlog = len(heads) >= limit  # more may be due than were taken
        if not ids:
            return []
        receipts = self._take_receipts()
        try:
            claimed = await self.store.claim(
                ids, now=now, owner=self.lease_owner, lease_until=now + self.policy.lease,
                urgent_ids=[head.row_id for head in heads if head.urgent],
                urgent_lease_until=now + self.policy.urgent_lease, receipts=receipts,
                needs_route=_new_card, router=self.router,
            )
        except BaseException:
            self._receipts_done.update(receipts)  # not committed: the next write marks them
            raise
        return [Job(c.row, _no_payload(), c.tip, c.destination,
                    resend=c.row.id in unfinished, more=c.row.id in more) for c in claimed]

    async def _process(self, job: Job[Payload]) -> None:
        try:
            await self._process_row(job)
        finally:
            self._in_flight.discard(job.row.id)

    async def _process_row(self, job: Job[Payload]) -> None:
        row = job.row
        try:
            await self._deliver(job)
        except RetryLater as error:
            await self._reschedule(row, str(error), error.seconds,
                                   maybe_sent=error.maybe_sent or job.resend)
        except Exception as error:  # never lose the row: back off and alert via logs
            log.exception("outbox delivery failed", extra={"outbox_id": row.id})
            await self._reschedule(row, f"{type(error).__name__}: {error}", None,
                                   maybe_sent=job.resend)
        else:
            if job.more:
                self.wake()  # the tip's next row is due now

    async def _deliver(self, job: Job[Payload]) -> None:
        row = job.row
        job.payload = parse_payload(row.kind, row.payload)  # PayloadError: retried, given up
        delivery = self._deliveries[job.payload.kind]
        if job.payload.kind is OutboxKind.TIP_CARD:
            await delivery.deliver(job)  # follows a moved group and routes around a gone one
        else:
            try:
                await delivery.deliver(job)
            except ChatMoved as moved:  # the group became a supergroup: follow it, go again
                await self.chat_moved(moved.old_chat_id, moved.new_chat_id)
                raise RetryLater("group migrated to a supergroup", 0) from moved
        if row.status == "pending":  # a card without attachments was marked with its record
            await self.mark(row, "sent")

    async def _reschedule(
        self, row: OutboxRow, reason: str, seconds: float | None, *, maybe_sent: bool
    ) -> None:
        """The attempt is over (the lease is given back); the row is due again after the
        back-off. A card that may have gone out already is marked for the next attempt."""
        card = row.kind == OutboxKind.TIP_CARD
        policy = self._card_policy if card else self.policy
        if policy.gives_up(row.attempts):
            await self._give_up(row, reason)
            row.status = "failed"
            return
        delay = policy.retry_delay(row.attempts, seconds)
        payload = None
        if maybe_sent and card:
            with contextlib.suppress(PayloadError):  # a forged row: retried as it is
                progress = TipCardPayload.from_json(row.payload)
                if progress.card is None and not progress.resend:
                    payload = row.payload = replace(progress, resend=True).to_json()
        await self.store.reschedule(row.id, due=utcnow() + timedelta(seconds=delay),
                                    error=reason, payload=payload)
        self.stats.retried += 1
        log.warning("outbox delivery postponed", extra={
            "outbox_id": row.id, "tip_id": row.tip_id, "attempt": row.attempts,
            "retry_after": round(delay, 1), "error_type": reason[:80],
        })

    async def _give_up(self, row: OutboxRow, reason: str) -> None:
        """A card edit, notice, relay or receipt that keeps failing: recorded as failed,
        audited and shown to the admins; tip cards themselves are never given up."""
        await self.mark(row, "failed")
        if row.tip_id is not None:
            await self.store.add_event(row.tip_id, "delivery_failed", {"kind": row.kind})
        with contextlib.suppress(PayloadError):  # a forged row has nothing more to record
            payload = parse_payload(row.kind, row.payload)
            try:
                await self._deliveries[payload.kind].given_up(row, payload)
            except Exception:
                log.exception("could not record a given-up delivery",
                              extra={"outbox_id": row.id})
        log.error("outbox message given up", extra={
            "outbox_id": row.id, "tip_id": row.tip_id, "attempt": row.attempts,
            "error_type": reason[:80],
        })
        ops = self.router.ops_chat_id
        if ops is not None:
            with contextlib.suppress(DeliveryError):
                await self.transport.send_html(
                    ops, self.notices.delivery_failed(row.kind, row.tip_id, row.attempts, reason)
                )

    # --- the desk: what deliveries use -----------------------------------------------------

    async def save(self, job: Job[P], payload: P) -> None:
        text = payload.to_json()
        await self.store.save_payload(job.row.id, text)
        job.payload, job.row.payload = payload, text

    async def mark(self, row: OutboxRow, status: str) -> None:
        await self._marks.run(Mark(row.id, status))
        row.status = status
        if status == "sent":
            self.stats.sent += 1

    async def card_posted(self, posted: CardPosted) -> None:
        await self._posted.run(posted)
        if posted.finished:
            self.stats.sent += 1

    async def chat_moved(self, old_chat_id: int, new_chat_id: int) -> None:
        """Links, live cards, prompts and queues follow a group to its supergroup id."""
        await self.store.move_chat(old_chat_id, new_chat_id)
        log.info("group migrated during delivery",
                 extra={"chat_id": old_chat_id, "new_chat_id": new_chat_id})

    # --- batched bookkeeping -----------------------------------------------------------------

    async def _write_marks(self, marks: Sequence[Mark]) -> list[None]:
        receipts = self._take_receipts()
        try:
            await self.store.write_marks(marks, now=utcnow(), receipts=receipts)
        except BaseException:
            self._receipts_done.update(receipts)
            raise
        return [None] * len(marks)

    async def _write_cards_posted(
        self, posted: Sequence[CardPosted]
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

    async def _write_cards_posted_together(self, posted: Sequence[CardPosted]) -> list[None]:
        receipts = self._take_receipts()
        try:
            await self.store.write_cards_posted(posted, now=utcnow(), receipts=receipts)
        except BaseException:
            self._receipts_done.update(receipts)  # not committed: the next write marks them
            raise
        return [None] * len(posted)

    # --- the receipt's safety net ----------------------------------------------------------

    def _take_receipts(self) -> list[int]:
        """The tips whose receipt the handler has sent since the last write, to be marked in
        the next one (put back by the caller if that write fails)."""
        taken = sorted(self._receipts_done)
        self._receipts_done.clear()
        return taken

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
        receipts = self._take_receipts()
        try:
            await self.store.mark_receipts(receipts, now=utcnow())
        except Exception:  # the rows come due and the receipt is sent again: not lost
            self._receipts_done.update(receipts)
            log.warning("could not mark receipts as sent", exc_info=True,
                        extra={"count": len(receipts)})

    async def receipt_missed(
        self, tip_id: int, *, retry_after: float | None = None, duplicate: bool = False
    ) -> None:
        """The confirm handler could not send the receipt (5xx, timeout, 429): the outbox
        sends it now (or after ``retry_after``). For a merged duplicate (no new tip, so no
        row of its own) the "merged" message becomes a row of the earlier tip."""
        due = utcnow() + timedelta(seconds=max(retry_after or 0.0, 0.0))
        if duplicate:
            await self.store.add_row(OutboxKind.RECEIPT, tip_id,
                                     ReceiptPayload(duplicate=True).to_json(), due=due)
        else:
            await self.store.receipt_due(tip_id, due=due)
        self.wake()


def _new_card(row: OutboxRow) -> bool:
    """A card's first attempt: the plain route (commune, province, ops), read with the claim."""
    return row.kind == OutboxKind.TIP_CARD and row.payload in ("", "{}")


def _no_payload() -> Payload:
    """Placeholder until the delivery parses the row (``_deliver``)."""
    return ReceiptPayload()

