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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, RootTransaction, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncTransaction, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

_BEGIN_OPTION = "tipline_begin"
_SYNC_OPTION = "tipline_synchronous"
# while another process holds SQLite's write lock (a CLI ``geo import``), BEGIN IMMEDIATE
# waits up to this long in SQLite's busy handler: in aiosqlite's worker thread of that
# connection, so the event loop goes on meanwhile (tests/test_db.py)
SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_POOL_SIZE = 16
SQLITE_READERS = 4

T = TypeVar("T")


class Work(Protocol):
    """A write transaction whose steps are plain synchronous functions of a SQLAlchemy
    ``Connection``: each ``run`` is one hand-off, whatever the number of statements in it
    (see :meth:`Database.work`)."""

    async def run(self, step: Callable[[Connection], T], /, *, last: bool = False) -> T:
        """Run ``step`` in the transaction; ``last``: commit right after it, in the same
        hand-off (nothing may run in this transaction afterwards)."""
        ...


class Database:
    """Owns the engine; hands out sessions for reading and transactions for writing."""

    _work_engine: Engine | None = None
    _work_thread: ThreadPoolExecutor | None = None
    _read_engine: Engine | None = None
    _read_threads: ThreadPoolExecutor | None = None

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
            _install_sqlite_pragmas(self.engine.sync_engine, self.busy_timeout_ms)
            self._write_lock = asyncio.Lock()
            # units of work (``work``) run on the standard sqlite3 driver in one thread of
            # their own: the whole step in one hand-off, instead of one per statement
            database = make_url(url).database
            if database and database != ":memory:":
                self._work_engine = create_engine(
                    make_url(url).set(drivername="sqlite"), echo=echo, hide_parameters=True,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                  "isolation_level": None, "check_same_thread": False},
                    pool_size=1, max_overflow=0,
                )
                _install_sqlite_pragmas(self._work_engine, self.busy_timeout_ms)
                self._work_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-work")
                # and reads (``read``) on a few threads and connections of their own
                self._read_engine = create_engine(
                    make_url(url).set(drivername="sqlite"), echo=echo, hide_parameters=True,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                  "isolation_level": None, "check_same_thread": False},
                    pool_size=SQLITE_READERS, max_overflow=0,
                )
                _install_sqlite_pragmas(self._read_engine, self.busy_timeout_ms)
                self._read_threads = ThreadPoolExecutor(
                    SQLITE_READERS, thread_name_prefix="sqlite-read")
        else:
            self.engine = create_async_engine(
                url, echo=echo, hide_parameters=True, pool_pre_ping=True
            )
        self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._durable_engine = self.engine.execution_options(
            **{_BEGIN_OPTION: "IMMEDIATE", _SYNC_OPTION: "FULL"}
        )

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine statements run on (for event listeners): the async engine's, and
        on SQLite the work thread's and the readers'."""
        engines = [self.engine.sync_engine]
        engines += [e for e in (self._work_engine, self._read_engine) if e is not None]
        return engines

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

    @asynccontextmanager
    async def work(self, *, durable: bool = False) -> AsyncIterator[Work]:
        """A write transaction run as synchronous steps (``Work.run``), committed at the end
        (or by the step run with ``last=True``) and rolled back on error.

        For the hot paths (a batch of tips, the outbox's claims and marks, a draft's step):
        on SQLite through aiosqlite every statement is a round trip between the event loop
        and the connection's thread, and a writer holds SQLite's (and this process's) write
        lock for as many turns of a busy loop as it has statements. Here a step of any
        number of statements is one hand-off to a thread of its own (the standard sqlite3
        driver through SQLAlchemy's public API). ``durable`` as for :meth:`transaction`.
        On PostgreSQL (and in-memory SQLite) a step runs through
        ``AsyncConnection.run_sync`` on the transaction's connection.
        """
        if self._work_engine is None or self._work_thread is None:
            engine = self._durable_engine if durable else self._write_engine
            async with contextlib.AsyncExitStack() as stack:
                if self._write_lock is not None:
                    await stack.enter_async_context(self._write_lock)
                connection = await stack.enter_async_context(engine.connect())
                work: _ConnectionWork | _ThreadWork = _ConnectionWork(await connection.begin())
                try:
                    yield work
                except BaseException:
                    await work.finish(commit=False)
                    raise
                await work.finish(commit=True)
            return
        assert self._write_lock is not None
        async with self._write_lock:
            work = _ThreadWork(self._work_engine, self._work_thread, durable)
            try:
                yield work
            except BaseException:
                await work.finish(commit=False)
                raise
            await work.finish(commit=True)

    async def read(self, step: Callable[[Connection], T]) -> T:
        """A read-only ``step`` (a plain function of a ``Connection``, any number of
        statements in one snapshot) in one hand-off: on SQLite on a reader thread of its
        own, on PostgreSQL through ``run_sync``. Nothing it writes is kept."""
        if self._read_engine is None or self._read_threads is None:
            async with self.engine.connect() as connection:
                return await connection.run_sync(step)
        engine = self._read_engine

        def run() -> T:
            with engine.connect() as connection:
                try:
                    return step(connection)
                finally:
                    connection.rollback()

        return await asyncio.get_running_loop().run_in_executor(self._read_threads, run)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._work_thread is not None:
            self._work_thread.shutdown(wait=True)
        if self._work_engine is not None:
            self._work_engine.dispose()
        if self._read_threads is not None:
            self._read_threads.shutdown(wait=True)
        if self._read_engine is not None:
            self._read_engine.dispose()


class _ConnectionWork:
    def __init__(self, transaction: AsyncTransaction) -> None:
        self._transaction = transaction
        self._done = False

    async def run(self, step: Callable[[Connection], T], /, *, last: bool = False) -> T:
        if self._done:
            raise RuntimeError("this unit of work has been committed")
        self._done = last
        result = await self._transaction.connection.run_sync(step)
        if last:
            await self._transaction.commit()
        return result

    async def finish(self, *, commit: bool) -> None:
        if self._transaction.is_active:
            await (self._transaction.commit() if commit else self._transaction.rollback())


class _ThreadWork:
    """The transaction lives on the work thread's connection between steps; each step, the
    BEGIN before the first and the COMMIT after the last are run there."""

    def __init__(self, engine: Engine, thread: ThreadPoolExecutor, durable: bool) -> None:
        self._engine = engine.execution_options(
            **{_BEGIN_OPTION: "IMMEDIATE", **({_SYNC_OPTION: "FULL"} if durable else {})}
        )
        self._thread = thread
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._done = False

    async def run(self, step: Callable[[Connection], T], /, *, last: bool = False) -> T:
        if self._done:
            raise RuntimeError("this unit of work has been committed")
        self._done = last
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._step, step, last)

    async def finish(self, *, commit: bool) -> None:
        if self._connection is not None:  # not ended by a last step (or the thread's end)
            loop = asyncio.get_running_loop()
            await asyncio.shield(loop.run_in_executor(self._thread, self._end, commit))

    # --- on the work thread ------------------------------------------------------------------

    def _step(self, step: Callable[[Connection], T], last: bool) -> T:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._transaction = self._connection.begin()
        try:
            result = step(self._connection)
        except BaseException:
            self._end(commit=False)
            raise
        if last:
            self._end(commit=True)
        return result

    def _end(self, commit: bool) -> None:
        connection, transaction = self._connection, self._transaction
        if connection is None or transaction is None:
            return
        self._connection = self._transaction = None
        try:
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
        finally:
            connection.close()


def _ensure_sqlite_dir(url: str) -> str | None:
    """The database file's path (its folder created), or None for in-memory/URI forms."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        return database
    return None


def _install_sqlite_pragmas(sync_engine: Engine, busy_timeout_ms: int) -> None:

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
