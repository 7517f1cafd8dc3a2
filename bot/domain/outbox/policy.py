"""How long a worker holds a message it is sending, and when it tries again.

The outbox worker uses one ``DeliveryPolicy``; a broadcast engine (one message to many
chats, paced) is meant to take the same piece: the lease that keeps two workers from sending
one message at once, the back-off after a failure (or Telegram's own ``retry_after``), when
to give up, and the pacing between sends to one chat and overall.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    # a claimed message is taken again after this if its worker died on another host (on
    # this host the next start takes it back at once); urgent ones sooner
    lease: timedelta = timedelta(minutes=2)
    urgent_lease: timedelta = timedelta(seconds=30)
    max_backoff_seconds: float = 300.0
    # attempts before a message is given up (~30 min of back-off); None: never (tip cards)
    max_attempts: int | None = 12

    def lease_for(self, *, urgent: bool) -> timedelta:
        return self.urgent_lease if urgent else self.lease

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds until the next attempt after ``attempts`` tries: what Telegram asked for
        (``retry_after``), else doubling from 2 s up to ``max_backoff_seconds``."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        return min(2.0 ** attempts, self.max_backoff_seconds)

    def gives_up(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts

    def never_giving_up(self) -> DeliveryPolicy:
        """The same lease and back-off, retried for ever (what a tip card needs)."""
        return DeliveryPolicy(self.lease, self.urgent_lease, self.max_backoff_seconds, None)


class Pacer:
    """Spacing of sends: at most ``per_second`` overall and one per ``per_chat_seconds`` to a
    chat, for a sender that owns its own pacing (the outbox relies on PTB's rate limiter;
    a broadcast to many groups would pace itself with this). ``wait(chat_id)`` returns when
    the next send to that chat may go."""

    def __init__(self, per_second: float = 25.0, per_chat_seconds: float = 3.0) -> None:
        self._gap = 1.0 / per_second if per_second > 0 else 0.0
        self._per_chat = per_chat_seconds
        self._next_any = 0.0
        self._next_for: dict[int, float] = {}
        self._lock = asyncio.Lock()

    def set_rate(self, per_second: float) -> None:
        """Change the overall rate from the next slot on (a broadcast yielding to the outbox)."""
        self._gap = 1.0 / per_second if per_second > 0 else 0.0

    def forget(self, chat_id: int) -> None:
        """Drop a chat's slot once it is in the past (a broadcast touches each chat once)."""
        self._next_for.pop(chat_id, None)

    def delay(self, chat_id: int, now: float) -> float:
        """How long a send to ``chat_id`` at ``now`` must wait; the slot is taken."""
        start = max(now, self._next_any, self._next_for.get(chat_id, 0.0))
        self._next_any = start + self._gap
        self._next_for[chat_id] = start + self._per_chat
        return start - now

    async def wait(self, chat_id: int) -> None:
        async with self._lock:
            delay = self.delay(chat_id, time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
