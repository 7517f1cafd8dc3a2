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
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

_BEGIN_OPTION = "tipline_begin"
_SYNC_OPTION = "tipline_synchronous"
# while another process holds SQLite's write lock (a CLI ``geo import``), BEGIN IMMEDIATE
# waits up to this long in SQLite's busy handler: in aiosqlite's worker thread of that
# connection, so the event loop goes on meanwhile (tests/test_db.py)
SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_POOL_SIZE = 16


class Database:
    """Owns the engine; hands out sessions for reading and transactions for writing."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time: writers of this process queue on a lock instead
        # of sleeping in SQLite's busy handler (other processes still get busy_timeout)
        self._write_lock: asyncio.Lock | None = None
        self.busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            self.engine: AsyncEngine = create_async_engine(
                url, echo=echo, hide_parameters=True,
                # transactions are ours (BEGIN [IMMEDIATE] in the "begin" event below): the
                # sqlite3 module's own transaction handling is off from the start
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "isolation_level": None},
                pool_size=SQLITE_POOL_SIZE, max_overflow=0,  # no connect/PRAGMA churn
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
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


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
        # (connections are opened that way already, see connect_args)
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
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits on its own: no BEGIN (e.g. VACUUM)
        # SQLite refuses to change the level inside a transaction: before BEGIN, and only
        # when it differs from the connection's current one
        level = options.get(_SYNC_OPTION, "NORMAL")
        if connection.info.get(_SYNC_OPTION) != level:
            connection.exec_driver_sql(f"PRAGMA synchronous={level}")
            connection.info[_SYNC_OPTION] = level
        mode = options.get(_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())
