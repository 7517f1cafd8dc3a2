"""One per-second budget for every message the bot sends (Telegram: 30 a second overall).

``SendBudget`` hands out *slots*: a send starts only while fewer than ``limit`` slots are
live, a slot being live from when it is taken until ``window`` seconds after its send was
answered. The server receives a send after it starts and before its answer comes back, so
however the network or a loaded machine bunches the requests on the way, no ``window`` of
the server's holds more than ``limit`` of them. (Costs one round trip per ``limit`` sends:
30/s becomes ~29.8/s at 5 ms.)

Two kinds of takers share it:

- **the bot's own traffic** (replies to residents, edits, tip
  cards, notices, the admins' progress messages): PTB's rate limiter
  (``bot.ratelimit.TiplineRateLimiter``) takes a slot for each before it goes out, first
  come first served, ahead of any bulk taker waiting;
- **bulk** sends (the broadcast engine): ``acquire(bulk=True, cap=n)`` waits while anyone
  else waits, while the window is full, and while ``n`` bulk slots are live (the broadcast's
  own rate, lower while the outbox is busy). A broadcast thus takes only what the rest
  leaves of the 30, and the rest never waits behind it for more than one slot to free up.

A bulk taker that sends through the same rate limiter marks its call with ``holding(slot)``
so that the limiter counts it on that slot instead of taking a second one (a context
variable: it follows the send's task, and tasks started from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar


class Slot:
    """One send's place in the budget, live until ``window`` seconds after its answer."""

    __slots__ = ("_budget", "answered_at", "bulk", "taken_at", "used")

    def __init__(self, budget: SendBudget, *, bulk: bool) -> None:
        self._budget = budget
        self.bulk = bulk
        self.taken_at = time.monotonic()
        self.answered_at: float | None = None
        self.used = False  # a rate limiter has sent one request on it (``holding``)

    @property
    def budget(self) -> SendBudget:
        return self._budget

    def release(self) -> None:
        """The send was answered (or failed before reaching the server); idempotent."""
        if self.answered_at is None:
            self.answered_at = time.monotonic()
            self._budget._changed()


# a slot never released (a bug in a caller) is forgotten after this long, not kept for ever
STALE_SECONDS = 120.0
_HELD: ContextVar[Slot | None] = ContextVar("tipline_send_slot", default=None)


class SendBudget:
    def __init__(self, limit: int = 30, window: float = 1.0) -> None:
        self.limit = max(int(limit), 1)
        self.window = window
        self._slots: list[Slot] = []
        self._others_waiting = 0
        self._locks = {False: asyncio.Lock(), True: asyncio.Lock()}  # FIFO within each kind
        self._change = asyncio.Event()

    def live(self) -> tuple[int, int]:
        """(slots live, bulk ones among them) right now."""
        now = time.monotonic()
        self._slots = [s for s in self._slots if self._expiry(s) > now]
        return len(self._slots), sum(1 for s in self._slots if s.bulk)

    def idle(self) -> bool:
        """No slot live and nobody waiting: forgetting this budget changes nothing."""
        return self.live()[0] == 0 and not any(lock.locked() for lock in self._locks.values())

    async def acquire(self, *, bulk: bool = False, cap: int | None = None) -> Slot:
        """A slot for one send; ``release()`` it once the send is answered. ``cap``: at
        most that many bulk slots live at once (bulk takers only)."""
        if not bulk:
            self._others_waiting += 1
        try:
            async with self._locks[bulk]:
                while True:
                    total, bulk_live = self.live()
                    fits = total < self.limit and (not bulk or (
                        self._others_waiting == 0
                        and bulk_live < max(min(cap or self.limit, self.limit), 1)))
                    if fits:
                        slot = Slot(self, bulk=bulk)
                        self._slots.append(slot)
                        return slot
                    await self._wait_for_change()
        finally:
            if not bulk:
                self._others_waiting -= 1
                self._changed()

    @contextlib.contextmanager
    def holding(self, slot: Slot) -> Iterator[None]:
        """The request sent within this block (in this task) goes out on ``slot``."""
        token = _HELD.set(slot)
        try:
            yield
        finally:
            _HELD.reset(token)

    def take_held(self) -> Slot | None:
        """The slot this task holds for its next request, if any and not used yet (a second
        request, e.g. a retry after a 429, takes a slot of its own)."""
        slot = _HELD.get()
        if slot is None or slot.budget is not self or slot.used or slot.answered_at is not None:
            return None
        slot.used = True
        return slot

    def _expiry(self, slot: Slot) -> float:
        if slot.answered_at is not None:
            return slot.answered_at + self.window
        return slot.taken_at + STALE_SECONDS

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _wait_for_change(self) -> None:
        """Until a slot is released, a waiter leaves, or the next answered slot expires."""
        change = self._change
        timeout = max(min(self._expiry(s) for s in self._slots) - time.monotonic(), 0.0) \
            if self._slots else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await change.wait()
