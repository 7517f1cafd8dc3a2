"""Write transactions do not lose concurrent read-modify-write updates (SQLite: BEGIN
IMMEDIATE + WAL + busy timeout; PostgreSQL: row lock taken by the update)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.db import Database
from storage.models import Resident


async def test_sixty_concurrent_increments_are_all_kept(database: Database) -> None:
    async with database.transaction() as session:
        session.add(Resident(pseudonym="counter", last_commune_code=0))

    async def increment() -> None:
        async with database.transaction() as session:
            if not database.is_sqlite:
                lock = text("SELECT 1 FROM residents WHERE pseudonym='counter' FOR UPDATE")
                await session.exec(lock)  # type: ignore[call-overload]
            row = await session.get(Resident, "counter")
            assert row is not None and row.last_commune_code is not None
            await asyncio.sleep(0)  # let the others interleave
            row.last_commune_code += 1

    await asyncio.gather(*(increment() for _ in range(60)))
    async with database.session() as session:
        row = await session.get(Resident, "counter")
    assert row is not None and row.last_commune_code == 60


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.session() as session:
            mode = (await session.exec(text("PRAGMA journal_mode"))).scalar()  # type: ignore[call-overload]
        assert mode == "wal"
    finally:
        await db.close()


async def test_sqlite_calls_run_on_the_event_loop_unless_threads_are_asked_for(
    sqlite_url: str,
) -> None:
    """The default SQLite engine makes its calls inline (no aiosqlite worker thread per
    connection, see storage/sqlite_inline.py); ``sqlite_threads=True`` keeps aiosqlite's."""
    import threading

    from storage.models import SQLModel

    async def threads_while_used(db: Database, who: str) -> int:
        async with db.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        async with db.transaction() as session:
            session.add(Resident(pseudonym=who, last_commune_code=1))
        async with db.session() as session:
            row = await session.get(Resident, who)
            assert row is not None and row.last_commune_code == 1
            return threading.active_count()

    before = threading.active_count()
    inline = Database(sqlite_url)
    try:
        assert await threads_while_used(inline, "inline") == before
    finally:
        await inline.close()
    threaded = Database(sqlite_url, sqlite_threads=True)
    try:
        assert await threads_while_used(threaded, "threaded") > before
    finally:
        await threaded.close()
