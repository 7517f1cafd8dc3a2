"""Async database access: one engine per process, created and closed by the composition root.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions
start with ``BEGIN IMMEDIATE`` so that concurrent read-modify-write cycles queue instead of
failing with "database is locked" or losing updates (see shared/docs/platform-limits.md).
PostgreSQL is used as is, by URL. Both engines hide bound values from their errors
(``hide_parameters``): an error's text ends up in logs, and the values are drafts' text and
stored updates (bot/logs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.sqlite_inline import inline_connector

_BEGIN_OPTION = "tipline_begin"
_SYNC_OPTION = "tipline_synchronous"
SQLITE_BUSY_TIMEOUT_MS = 15_000
# inline SQLite (storage/sqlite_inline.py): SQLite's busy handler would sleep on the event
# loop, so it waits only briefly and ``transaction()`` retries the BEGIN with asyncio sleeps
INLINE_BUSY_TIMEOUT_MS = 20
INLINE_BUSY_RETRY_SECONDS = 0.05
SQLITE_POOL_SIZE = 16


class Database:
    """Owns the engine; hands out sessions for reading and transactions for writing."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_threads: bool = False) -> None:
        """``sqlite_threads``: run SQLite calls in aiosqlite's worker threads instead of on
        the event loop (see storage/sqlite_inline.py)."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time: writers of this process queue on a lock instead
        # of sleeping in SQLite's busy handler (other processes still get busy_timeout)
        self._write_lock: asyncio.Lock | None = None
        self.sqlite_inline = False
        self.busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
        if self.is_sqlite:
            database = _ensure_sqlite_dir(url)
            self.sqlite_inline = not sqlite_threads and database is not None
            inline = {"async_creator": inline_connector(database)} if database and \
                self.sqlite_inline else {}
            self.engine: AsyncEngine = create_async_engine(
                url, echo=echo, hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                pool_size=SQLITE_POOL_SIZE, max_overflow=0,  # no connect/PRAGMA churn
                **inline,
            )
            self.busy_timeout_ms = (
                INLINE_BUSY_TIMEOUT_MS if self.sqlite_inline else SQLITE_BUSY_TIMEOUT_MS
            )
            _install_sqlite_pragmas(self.engine, self.busy_timeout_ms)
            self._write_lock = asyncio.Lock()
        else:
            self.engine = create_async_engine(
                url, echo=echo, hide_parameters=True, pool_pre_ping=True
            )
        self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._durable_engine = self.engine.execution_options(
            **{_BEGIN_OPTION: "IMMEDIATE", _SYNC_OPTION: "FULL"}
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (and writes that need no read-modify-write guarantee)."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed on success and rolled back on error.

        On SQLite it starts with BEGIN IMMEDIATE: the write lock is taken up front.
        ``durable``: the commit survives a power loss, for commits that someone is told
        about (a receipt code, the 200 for a webhook update). SQLite commits with
        ``synchronous=NORMAL`` (the WAL is synced at checkpoints only: the last commits can
        be lost with the power, not the database's consistency); a durable one runs with
        ``synchronous=FULL``, which syncs the WAL before COMMIT returns (and so also every
        commit before it). PostgreSQL commits durably anyway (``synchronous_commit=on``).
        """
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            engine = self._durable_engine if durable else self._write_engine
            session = await stack.enter_async_context(
                AsyncSession(engine, expire_on_commit=False)
            )
            await stack.enter_async_context(session.begin())
            if self.sqlite_inline:
                await _begin_when_free(session)
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


async def _begin_when_free(session: AsyncSession) -> None:
    """BEGIN IMMEDIATE now; while another process holds the write lock, wait with the event
    loop free (up to SQLITE_BUSY_TIMEOUT_MS in all, as the threaded driver would)."""
    deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await session.connection()  # the "begin" event below emits BEGIN IMMEDIATE
            return
        except OperationalError as error:
            locked = "locked" in str(error) or "busy" in str(error)
            if not locked or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(INLINE_BUSY_RETRY_SECONDS)


def _ensure_sqlite_dir(url: str) -> str | None:
    """The database file's path (its folder created), or None for in-memory/URI forms."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        return database
    return None


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # take transaction control away from the sqlite3 module: we emit BEGIN ourselves
        # (inline connections are opened that way already)
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        record.info[_SYNC_OPTION] = "NORMAL"
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        # SQLite refuses to change the level inside a transaction: before BEGIN, and only
        # when it differs from the connection's current one
        level = options.get(_SYNC_OPTION, "NORMAL")
        if connection.info.get(_SYNC_OPTION) != level:
            connection.exec_driver_sql(f"PRAGMA synchronous={level}")
            connection.info[_SYNC_OPTION] = level
        mode = options.get(_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())
