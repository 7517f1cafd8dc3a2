"""In-process sliding-window counters (lookup throttling). Per process, reset on restart:
good enough to make guessing 40-bit codes hopeless."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def blocked(self, key: str) -> bool:
        hits = self._prune(key)
        return len(hits) >= self._limit

    def hit(self, key: str) -> None:
        self._prune(key).append(self._clock())

    def _prune(self, key: str) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        horizon = self._clock() - self._window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if not hits and len(self._hits) > 10_000:
            self._hits.pop(key, None)
            hits = self._hits.setdefault(key, deque())
        return hits
