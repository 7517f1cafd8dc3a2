"""aiosqlite's interface with SQLite's calls made on the event loop itself.

aiosqlite runs every sqlite3 call (cursor, execute, fetch, close, commit) in a worker thread
and wakes the event loop when it is done: four thread hops per SQL statement, which on our
2-core VM cost ~0.4 ms of event-loop CPU per statement — more than the SQL itself, and the
largest share of a tip's cost (docs/benchmarks.md). Our SQLite work is small indexed reads
and writes on a local WAL file (tens of microseconds each; commits do not fsync with
``synchronous=NORMAL``), so calling sqlite3 directly is cheaper than handing it to a thread.
The exception are durable commits (a tip's, a webhook update's: ``synchronous=FULL``): their
fsync, ~0.2-0.5 ms typically and several ms at worst on our VM, is taken on the event loop.

The care this needs: SQLite's busy handler would sleep on the event loop while *another
process* holds the write lock (a CLI ``geo import`` writes a whole boundary file in one
transaction). So inline connections wait at most 20 ms inside SQLite, and
``Database.transaction()`` retries the ``BEGIN IMMEDIATE`` with asyncio sleeps (up to 15 s in
all): the bot keeps answering meanwhile (tests/test_db.py). Writers of this process never
wait there (they queue on ``Database``'s writer lock first). ``TIPLINE_SQLITE_THREADS=true``
switches back to aiosqlite's threads.

This overrides two internal methods of ``aiosqlite.Connection`` (``_execute`` and
``_connect``), stable since aiosqlite 0.17; the dependency is pinned to versions tested here
and tests/test_db.py checks that no worker thread is started.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """An ``aiosqlite.Connection`` whose calls run synchronously in the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)  # its worker thread is never started

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:  # nothing to wait for: no thread
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def inline_connector(database: str) -> Callable[[], Awaitable[InlineConnection]]:
    """What ``create_async_engine(async_creator=…)`` calls for each new pooled connection.
    Transactions are ours (``BEGIN IMMEDIATE`` in storage/db.py): the sqlite3 module's own
    transaction handling is off (``isolation_level=None``) from the start."""

    async def connect() -> InlineConnection:
        return await InlineConnection(
            lambda: sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        )

    return connect
