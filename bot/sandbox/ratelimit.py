"""Sliding-window flood control for the messages the bot sends (Bot FAQ limits).

Three windows are checked for each send: all chats together (30/s), the target group
(20/min) or the target private chat (a short burst, then about one per second). A refused send
is not counted; the answer says how many whole seconds to wait.

``FloodControl`` also keeps what tests and benchmarks check the bot against: the accepted
sends (their times, the last ``MAX_KEPT_SENDS``), the refusals, and from those the most
sends accepted within any one second (``busiest``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from .errors import too_many_requests
from .models import RateLimits

MAX_KEPT_SENDS = 200_000


class SlidingWindow:
    """At most `capacity` events within any `window` seconds."""

    def __init__(self, capacity: int, window: float) -> None:
        self.capacity = max(capacity, 1)
        self.window = window
        self._events: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()

    def wait_time(self, now: float, units: int) -> float:
        """Seconds until `units` more events fit (0.0 if they fit now)."""
        self._prune(now)
        need = min(units, self.capacity)
        overflow = len(self._events) + need - self.capacity
        if overflow <= 0:
            return 0.0
        freeing = self._events[overflow - 1]
        return freeing + self.window - now

    def record(self, now: float, units: int) -> None:
        """Count `units` events at `now`."""
        self._events.extend([now] * units)


class FloodControl:
    """The global window plus one window per chat."""

    def __init__(
        self, limits: RateLimits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._global = SlidingWindow(limits.global_per_second, 1.0)
        self._chats: dict[int, SlidingWindow] = {}
        self.accepted: deque[float] = deque(maxlen=MAX_KEPT_SENDS)  # times of accepted sends
        self.refused = 0  # sends answered 429

    def busiest(self, window: float = 1.0) -> int:
        """The most sends accepted within any `window` seconds (of the kept ones)."""
        times, best, start = list(self.accepted), 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def _chat_window(self, chat_id: int, is_group: bool) -> SlidingWindow:
        window = self._chats.get(chat_id)
        if window is None:
            if is_group:
                window = SlidingWindow(self.limits.group_per_minute, 60.0)
            else:
                window = SlidingWindow(
                    self.limits.private_burst, self.limits.private_window_seconds
                )
            self._chats[chat_id] = window
        return window

    def acquire(self, chat_id: int, is_group: bool, units: int = 1) -> None:
        """Count a send of `units` messages or raise the 429 `ApiError`."""
        now = self.clock()
        if not self.limits.enabled:
            self.accepted.extend([now] * units)
            return
        windows = (self._global, self._chat_window(chat_id, is_group))
        wait = max(window.wait_time(now, units) for window in windows)
        if wait > 0:
            self.refused += 1
            retry = self.limits.retry_after
            raise too_many_requests(retry if retry is not None else max(1, math.ceil(wait)))
        for window in windows:
            window.record(now, units)
        self.accepted.extend([now] * units)

    def reset(self) -> None:
        """Forget every counted send."""
        self._global = SlidingWindow(self.limits.global_per_second, 1.0)
        self._chats.clear()
        self.accepted.clear()
        self.refused = 0
