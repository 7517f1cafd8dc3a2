"""Group commit: calls made at the same time share one run of a batch function.

With SQLite there is one writer at a time, and most of the cost of a small write is per
statement and per transaction, not per row. So the work of many concurrent callers (say 40
residents confirming their tips in the same 100 ms) is done in one transaction with a
handful of statements. Nobody waits for a batch to fill: the first caller runs at once, and
whoever arrives while a batch is running goes into the next one, so a batch is exactly as
big as the load makes it (one under light load, dozens under a burst). The batch function
may finish without giving the loop a turn, so a batch first lets the callers that are ready
in the same turn of the loop join it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchRunner = Callable[[Sequence[Item]], Awaitable[Sequence["Result | BaseException"]]]


class GroupCommit(Generic[Item, Result]):
    """``await run(item)`` returns that item's result (or raises its exception).

    ``run_batch(items)`` must return one result or exception per item, in order; if it
    raises instead, every item of that batch gets the exception.
    """

    def __init__(
        self, run_batch: BatchRunner[Item, Result], *, max_batch: int = 200, name: str = "batch"
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # how many batches ran (tests check that callers shared them)

    async def run(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # no "exception never retrieved" if the caller left
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name=self._name)
        # shielded: a caller that gives up (shutdown) does not cancel the others' batch
        return await asyncio.shield(future)

    async def wait_idle(self) -> None:
        """Let the batch in flight (and any queued behind it) finish."""
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._runner)

    async def _drain(self) -> None:
        # one turn of the event loop first: callers that are ready to run now (say, the
        # handlers of one getUpdates answer) join this batch instead of each making their own
        await asyncio.sleep(0)
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self.batches += 1
            try:
                results = await self._run_batch([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self._name}: {len(results)} results for {len(batch)}")
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            except BaseException as error:  # cancelled (shutdown): nobody is left waiting
                for _, future in batch + self._waiting:
                    if not future.done():
                        future.set_exception(
                            error if isinstance(error, asyncio.CancelledError)
                            else RuntimeError(f"{self._name} stopped")
                        )
                self._waiting.clear()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
