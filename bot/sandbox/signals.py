"""A tiny asyncio notification primitive: wake every waiter whenever something changed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class Signal:
    """Waiters sleep until the next `notify()` (or their timeout)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0

    def notify(self) -> None:
        """Wake everybody waiting now (and count the change in `version`)."""
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Sleep until the next notification; False if the timeout passed first."""
        event = self._event
        if seconds <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: it can swallow a cancel (3.11)
                await event.wait()
            return True
        return False

    async def wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Sleep until `predicate()` holds, re-checking after each notification."""
        deadline = time.monotonic() + seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await self.wait(min(remaining, 0.05))
        return True
