"""Bounded picture work: how many pictures are fetched and decoded at once, and where.

Sanitising a picture is CPU- and memory-heavy (see bot/domain/photos.py): it runs on a
dedicated pool of ``workers`` threads, never on asyncio's default executor (which other
work shares and which has min(32, cores + 4) threads). Before a picture is even
downloaded, :meth:`PictureJobs.reserve` counts it against its owner (a resident's
pseudonym): a draft that already holds ``limit`` pictures, with those still in work
counted in, takes no more, and nobody may have more than ``per_owner`` pictures waiting
or in work. The download itself waits for a turn (:meth:`PictureJobs.process`), so at most
``workers + fetch_ahead`` downloaded pictures are held in memory, however many arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final, Literal

from bot.domain.photos import SanitisedPhoto, sanitise_photo

# One thread: a picture's resize already runs in two bands on two threads
# (photos._downscaled_rgb_bands), and on the 2-core host a second worker brought no
# throughput (5 PNGs at the budget: 2.3 s with one, 2.7 s with two; 10 phone JPEGs 0.55 s
# and 0.49 s) for nearly twice the memory (peak +130 MB against +238 MB; see
# docs/benchmarks.md). Each decode needs at most photos.MAX_DECODED_BYTES of pixels, plus
# the codec's own buffers and the resized copy. Bigger hosts may pass workers=2.
PICTURE_WORKERS: Final = 1
# Downloaded pictures waiting for a worker (each at most 20 MB).
FETCH_AHEAD: Final = 2
# Pictures of one resident reserved at once (waiting, downloading, decoding, storing):
# a tip takes 10 pictures; an album is sent as up to 10 messages.
PER_OWNER: Final = 10
# Pictures reserved at once over everybody: each waiting one holds one of PTB's
# concurrent-update slots (256), so the rest of the bot keeps answering.
MAX_RESERVED: Final = 100

PictureLimitReason = Literal["too_many_photos", "busy"]


class PictureLimit(Exception):
    """A picture refused before download: ``too_many_photos`` (its draft is full, counting
    the pictures still in work) or ``busy`` (too many pictures in work)."""

    def __init__(self, reason: PictureLimitReason) -> None:
        super().__init__(reason)
        self.reason: PictureLimitReason = reason


class PictureJobs:
    """The picture pool and its admission rules. One per process (the composition root)."""

    def __init__(
        self,
        *,
        workers: int = PICTURE_WORKERS,
        fetch_ahead: int = FETCH_AHEAD,
        per_owner: int = PER_OWNER,
        max_reserved: int = MAX_RESERVED,
        sanitise: Callable[[bytes], SanitisedPhoto] = sanitise_photo,
    ) -> None:
        if min(workers, per_owner, max_reserved) < 1 or fetch_ahead < 0:
            raise ValueError("workers, per_owner and max_reserved must be positive")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="picture")
        self._turns = asyncio.Semaphore(workers + fetch_ahead)
        self._per_owner = per_owner
        self._max_reserved = max_reserved
        self._sanitise = sanitise
        self._reserved: Counter[str] = Counter()
        self._lock = threading.Lock()  # counters also read from worker threads (stats)
        self._running = 0
        self.busiest = 0  # most sanitisations ever running at once (benchmarks, tests)

    def reserved(self, owner: str) -> int:
        """Pictures of ``owner`` reserved now."""
        return self._reserved[owner]

    @contextlib.contextmanager
    def reserve(self, owner: str, *, already: int = 0, limit: int | None = None) -> Iterator[None]:
        """Hold a place for one picture of ``owner`` until the block ends (keep it until the
        picture is stored). ``already`` pictures are stored and ``limit`` is the most there
        may be: the place is refused when the stored and reserved ones reach it. Raises
        :class:`PictureLimit` at once: nothing is downloaded for a refused picture."""
        # Synchronous check-and-add: no await in between, so concurrent handlers of one
        # resident's album cannot all pass the same check.
        held = self._reserved[owner]
        if limit is not None and already + held >= limit:
            raise PictureLimit("too_many_photos")
        if held >= self._per_owner or self._reserved.total() >= self._max_reserved:
            raise PictureLimit("busy")
        self._reserved[owner] += 1
        try:
            yield
        finally:
            self._reserved[owner] -= 1
            if self._reserved[owner] <= 0:
                del self._reserved[owner]

    async def process(self, fetch: Callable[[], Awaitable[bytes]]) -> SanitisedPhoto:
        """Wait for a turn, ``fetch`` the picture's bytes, sanitise them on the pool.
        Raises what ``fetch`` and ``sanitise_photo`` raise (PhotoRejected...)."""
        async with self._turns:
            data = await fetch()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._run, data)

    def _run(self, data: bytes) -> SanitisedPhoto:
        with self._lock:
            self._running += 1
            self.busiest = max(self.busiest, self._running)
        try:
            return self._sanitise(data)
        finally:
            with self._lock:
                self._running -= 1

    def close(self) -> None:
        """Stop the pool: queued work is dropped; a decode under way ends on its own (the
        handlers waiting for it are finished or cancelled before this is called)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
