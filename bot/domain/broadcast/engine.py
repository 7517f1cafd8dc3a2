"""The broadcast engine: one campaign run to every subscriber in its scope, paced under
Telegram's limits, resumable, without duplicates beyond the in-flight window.

- **Rows first.** Recipients are streamed from the database a page at a time
  (``page_size``): the next page's delivery rows are written *pending* (and the run's cursor
  moved) in one transaction before any of them is sent; each is marked sent / failed /
  inactive after its send, in batches (every ``flush_seconds`` or ``flush_size`` outcomes).
  Memory holds one page, the queue to the senders and the unflushed outcomes, whatever the
  audience.
- **Pacing.** ``Pacer`` (bot/domain/outbox/policy.py) spaces sends at ``rate`` per second
  overall (30 by default) and ``per_chat_seconds`` per chat. Each send then takes a bulk
  slot of the bot's ``SendBudget`` (bot/domain/sendbudget.py: 30 in any 1 s as Telegram
  counts them, whatever the jitter on the way), shared with everything else the bot sends
  (replies to residents, button answers, edits, cards, progress messages): the broadcast
  gets what the others leave, they never wait behind it, and at most ``int(rate)`` of its
  own are in any 1 s. While the outbox is sending (``Capacity.busy()``: tip cards, police
  notices, digests) the rate and that cap drop to ``yield_rate``: the slots are handed out
  at most ``senders`` ahead, so the outbox gets its share back within about half a
  second. Without a shared budget (``budget=None``) the engine keeps one of its own.
- **Errors.** 429: every sender holds for ``retry_after`` and the same message is tried
  again. 5xx / network: that message backs off (``DeliveryPolicy.retry_delay``) and is given
  up as *failed* after ``max_attempts``. 403 / "chat not found": *inactive*, and the
  subscriber becomes inactive (only a new opt-in re-activates). Another 400: *failed*.
- **Crash safety.** After a kill -9 the run is still *running*; the next start drives it
  again: first the rows left pending (in subscriber order), then the pages after the
  cursor. A row Telegram accepted but whose mark had not been committed is sent again:
  duplicates are bounded by the in-flight window, at most ``senders`` sends being attempted
  plus the outcomes not yet flushed (``flush_size``, and in practice ``rate × flush_seconds``
  ≈ 15): **≤ senders + flush_size** (16 + 100 by default; ≈ 31 at 30/s with a 0.5 s flush).
  (If the database refuses the marks for a while, the unflushed outcomes grow and so does
  the bound; they are retried with every flush.) Nothing is lost: a row is pending until
  marked. Measured in docs/benchmarks.md (bench/bench_broadcast.py).
- **Pause / cancel.** The run's status is read every ``status_seconds`` (the CLI and the
  admins' chat change it in the database): the senders stop taking rows (those stay
  pending), the ones in flight finish and are marked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.domain.broadcast.records import (
    CampaignRecord,
    Outcome,
    Recipient,
    RunCounts,
    RunRecord,
)
from bot.domain.broadcast.store import BroadcastStore
from bot.domain.broadcast.transport import (
    BroadcastTransport,
    ChatGone,
    RetryLater,
    Undeliverable,
)
from bot.domain.clock import Clock, SystemClock
from bot.domain.outbox.policy import DeliveryPolicy, Pacer
from bot.domain.sealing import ChatSealer, SealBroken
from bot.domain.sendbudget import SendBudget

log = logging.getLogger("bot.domain.broadcast")


@dataclass(frozen=True, slots=True)
class BroadcastSettings:
    rate: float = 30.0  # messages/s overall while the outbox is idle (Telegram: 30)
    yield_rate: float = 20.0  # while the outbox is sending: the rest is the outbox's
    per_chat_seconds: float = 1.0
    page_size: int = 200
    senders: int = 16
    flush_seconds: float = 0.5
    flush_size: int = 100
    progress_seconds: float = 5.0
    status_seconds: float = 1.0
    policy: DeliveryPolicy = field(
        default_factory=lambda: DeliveryPolicy(max_backoff_seconds=60.0, max_attempts=6))

    @property
    def duplicate_bound(self) -> int:
        """At most this many messages go out twice after a crash (see the module)."""
        return self.senders + self.flush_size


class Capacity(Protocol):
    """Whether the outbox is sending right now (``OutboxWorker.busy``)."""

    def busy(self) -> bool: ...


class ProgressSink(Protocol):
    async def progress(
        self, campaign: CampaignRecord, run: RunRecord, counts: RunCounts, rate: float,
        *, final: bool,
    ) -> None: ...


@dataclass
class BroadcastStats:
    sent: int = 0
    failed: int = 0
    inactive: int = 0
    too_many: int = 0  # 429 answers seen
    retried: int = 0


class BroadcastEngine:
    def __init__(
        self, store: BroadcastStore, transport: BroadcastTransport, sealer: ChatSealer,
        stop_button: Callable[[str | None], tuple[str, str]],
        *, settings: BroadcastSettings | None = None, capacity: Capacity | None = None,
        progress: ProgressSink | None = None, clock: Clock | None = None,
        province_of: Callable[[int], int | None] = lambda code: None,
        budget: SendBudget | None = None,
    ) -> None:
        self._budget = budget  # shared with the rest of the bot's sends (bot.ratelimit)
        self._province_of = province_of  # a commune's province (scope filtering)
        self._store = store
        self._transport = transport
        self._sealer = sealer
        self._stop_button = stop_button
        self.settings = settings or BroadcastSettings()
        self._capacity = capacity
        self._progress = progress
        self._clock: Clock = clock or SystemClock()
        self.stats = BroadcastStats()

    async def run(self, run_id: int) -> str:
        """Drive one run until it is done, paused or cancelled (its status is returned)."""
        run = await self._store.run(run_id)
        if run is None or run.status != "running":
            return run.status if run is not None else "missing"
        campaign = await self._store.campaign(run.campaign_id)
        if campaign is None:
            return "missing"
        return await _Drive(self, campaign, run).go()


class _Drive:
    """One run being driven (its queue, senders, outcomes and progress)."""

    def __init__(self, engine: BroadcastEngine, campaign: CampaignRecord, run: RunRecord) -> None:
        self.e = engine
        self.s = engine.settings
        self.campaign = campaign
        self.run = run
        self.stop = asyncio.Event()
        self.queue: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=2 * self.s.senders)
        self.pacer = Pacer(self.s.rate, self.s.per_chat_seconds)
        self.budget = engine._budget or SendBudget(max(int(self.s.rate), 1))
        self.cap = max(int(self.s.rate), 1)  # bulk slots live at once (lower while yielding)
        self.hold_until = 0.0
        self.photo: bytes | str | None = None
        self.outcomes: list[Outcome] = []
        self.flushed = asyncio.Event()
        self.counts = RunCounts()
        self.rate = 0.0

    async def go(self) -> str:
        store = self.e._store
        photo, file_id = await store.photo(self.campaign.id) if self.campaign.has_photo \
            else (None, None)
        self.photo = file_id or photo
        self.counts = await store.counts(self.run.id)
        senders = [asyncio.create_task(self._sender(), name="broadcast-sender")
                   for _ in range(self.s.senders)]
        helpers = [asyncio.create_task(self._watch(), name="broadcast-watch"),
                   asyncio.create_task(self._flusher(), name="broadcast-flush")]
        try:
            await self._produce()
        except asyncio.CancelledError:  # shutdown: what is in flight is sent and marked
            self.stop.set()
            raise
        finally:
            for _ in senders:
                await self.queue.put(None)
            await asyncio.gather(*senders, return_exceptions=True)
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            await self._flush(final=True)
        status = (await store.run(self.run.id) or self.run).status
        if status == "running" and not self.stop.is_set():
            await store.finish(self.run.id, self.e._clock.now())
            status = "done"
        self.counts = await store.counts(self.run.id)
        await self._report(final=True, status=status)
        log.info("broadcast run ended", extra={
            "run_id": self.run.id, "event": status, "count": self.counts.sent})
        return status

    async def _produce(self) -> None:
        store, last, exhausted = self.e._store, 0, False
        scope, code = self.campaign.scope, self.campaign.scope_code
        province = code if scope == "province" else (
            self.e._province_of(code) if scope == "commune" and code is not None else None)
        await store.set_audience(self.run.id, scope, code, province)
        self.counts = await store.counts(self.run.id)
        while not self.stop.is_set():
            page = await store.pending(self.run.id, last, self.s.page_size)
            if not page:
                if exhausted:
                    return
                written = await store.extend(self.run.id, scope, code, province,
                                             self.s.page_size)
                exhausted = written == 0
                continue
            for recipient in page:
                if self.stop.is_set():
                    return
                if isinstance(self.photo, bytes):  # the first upload alone: then its file id
                    self._record(await self._deliver(recipient))
                    continue
                await self.queue.put(recipient)
            last = page[-1].subscriber_id

    async def _sender(self) -> None:
        while True:
            recipient = await self.queue.get()
            if recipient is None:
                return
            if self.stop.is_set():
                continue  # stays pending: sent when the run is resumed
            try:
                self._record(await self._deliver(recipient))
            except Exception:  # never lose the sender: the row stays pending
                log.exception("broadcast send failed", extra={"run_id": self.run.id})

    def _record(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        self.outcomes.append(outcome)
        stats, counts = self.e.stats, self.counts
        if outcome.status == "sent":
            stats.sent += 1
            self.counts = _plus(counts, sent=1)
        elif outcome.status == "inactive":
            stats.inactive += 1
            self.counts = _plus(counts, inactive=1)
        else:
            stats.failed += 1
            self.counts = _plus(counts, failed=1)
        if len(self.outcomes) >= self.s.flush_size:
            self.flushed.set()

    async def _deliver(self, recipient: Recipient) -> Outcome | None:
        """Send one, with retries; None if the run stopped before it was sent."""
        try:
            address = self.e._sealer.open(recipient.sealed_chat)
        except SealBroken:
            return Outcome(recipient.delivery_id, recipient.subscriber_id, "failed", 0, "seal")
        text = self.campaign.text(recipient.language)
        button = self.e._stop_button(recipient.language)
        policy, attempts = self.s.policy, 0
        while True:
            await self._pace(recipient.subscriber_id)
            if self.stop.is_set():
                return None
            attempts += 1
            slot = await self.budget.acquire(bulk=True, cap=self.cap)
            try:
                with self.budget.holding(slot):
                    file_id = await self.e._transport.send_announcement(
                        address, text, photo=self.photo, button=button)
            except RetryLater as error:
                slot.release()
                if error.seconds is not None:  # 429: everybody waits, the same one again
                    self.e.stats.too_many += 1
                    self.hold_until = max(self.hold_until, time.monotonic() + error.seconds)
                    attempts -= 1
                    continue
                if policy.gives_up(attempts):
                    return Outcome(recipient.delivery_id, recipient.subscriber_id, "failed",
                                   attempts, str(error)[:120])
                self.e.stats.retried += 1
                await self._sleep(policy.retry_delay(attempts))
                continue
            except ChatGone as error:
                slot.release()
                return Outcome(recipient.delivery_id, recipient.subscriber_id, "inactive",
                               attempts, str(error)[:120])
            except Undeliverable as error:
                slot.release()
                return Outcome(recipient.delivery_id, recipient.subscriber_id, "failed",
                               attempts, str(error)[:120])
            except BaseException:
                slot.release()
                raise
            slot.release()
            if file_id and isinstance(self.photo, bytes):
                self.photo = file_id
                await self.e._store.set_photo_file_id(self.campaign.id, file_id)
            return Outcome(recipient.delivery_id, recipient.subscriber_id, "sent", attempts)

    async def _pace(self, chat_key: int) -> None:
        capacity = self.e._capacity
        busy = capacity is not None and capacity.busy()
        rate = self.s.yield_rate if busy else self.s.rate
        self.pacer.set_rate(rate)
        self.cap = max(int(rate), 1)
        await self.pacer.wait(chat_key)
        self.pacer.forget(chat_key)
        hold = self.hold_until - time.monotonic()
        while hold > 0:  # a 429: every sender waits for retry_after
            await asyncio.sleep(hold)
            hold = self.hold_until - time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop.wait()

    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.s.flush_seconds):
                    await self.flushed.wait()
            self.flushed.clear()
            await self._flush()

    async def _flush(self, *, final: bool = False) -> None:
        if not self.outcomes:
            return
        batch, self.outcomes = self.outcomes, []
        try:
            await self.e._store.mark(batch, self.e._clock.now())
        except Exception:
            self.outcomes[:0] = batch  # tried again with the next batch
            log.warning("could not mark broadcast deliveries", exc_info=True,
                        extra={"run_id": self.run.id, "count": len(batch)})
            if final:
                with contextlib.suppress(Exception):
                    await self.e._store.mark(self.outcomes, self.e._clock.now())
                    self.outcomes = []

    async def _watch(self) -> None:
        """Pause/cancel from outside (status read every ``status_seconds``); progress."""
        last_report = time.monotonic()
        done_then, then = self.counts.done, time.monotonic()
        while True:
            await asyncio.sleep(self.s.status_seconds)
            run = await self.e._store.run(self.run.id)
            if run is None or run.status != "running":
                self.stop.set()
                return
            now = time.monotonic()
            if now - last_report >= self.s.progress_seconds:
                self.rate = (self.counts.done - done_then) / max(now - then, 1e-6)
                done_then, then, last_report = self.counts.done, now, now
                self.run = run
                await self._report(final=False, status="running")

    async def _report(self, *, final: bool, status: str) -> None:
        sink = self.e._progress
        if sink is None:
            return
        run = await self.e._store.run(self.run.id) or self.run
        try:
            await sink.progress(self.campaign, run, self.counts, self.rate, final=final)
        except Exception:
            log.warning("could not show broadcast progress", exc_info=True,
                        extra={"run_id": self.run.id, "event": status})


def _plus(counts: RunCounts, *, sent: int = 0, failed: int = 0, inactive: int = 0) -> RunCounts:
    return RunCounts(counts.sent + sent, counts.failed + failed, counts.inactive + inactive,
                     max(counts.pending - sent - failed - inactive, 0), counts.audience)
