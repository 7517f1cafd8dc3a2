"""Write transactions do not lose concurrent read-modify-write updates (SQLite: BEGIN
IMMEDIATE + WAL + busy timeout; PostgreSQL: row lock taken by the update)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.intake import IntakeStore
from storage.models import InboundUpdate, Resident

NORMAL, FULL = 1, 2  # PRAGMA synchronous


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


async def test_an_autocommit_connection_works(database: Database) -> None:
    """SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` (e.g. for VACUUM, or PostgreSQL's
    CREATE INDEX CONCURRENTLY): each statement is committed at once, visible to another
    connection while this one is still open. (With the former inline SQLite driver this
    connection never came back.)"""

    async def use_autocommit() -> int:
        async with database.engine.connect() as plain:
            connection = await plain.execution_options(isolation_level="AUTOCOMMIT")
            now = datetime.now(UTC)
            await connection.execute(insert(Resident).values(
                pseudonym="auto", last_commune_code=3, subscribed=False,
                created_at=now, updated_at=now,
            ))
            async with database.session() as other:  # another pooled connection
                row = await other.get(Resident, "auto")
                assert row is not None and row.last_commune_code == 3
            if database.is_sqlite:
                await connection.execute(text("VACUUM"))  # refused inside a transaction
            return int((await connection.execute(text("SELECT 1"))).scalar_one())

    assert await asyncio.wait_for(use_autocommit(), 10) == 1
    async with database.transaction() as session:  # the pool's connections still work
        row = await session.get(Resident, "auto")
        assert row is not None
        row.last_commune_code = 4
    async with database.session() as session:
        row = await session.get(Resident, "auto")
    assert row is not None and row.last_commune_code == 4


async def test_a_write_waiting_for_another_process_leaves_the_event_loop_free(
    sqlite_url: str,
) -> None:
    """While another program holds SQLite's write lock, our write waits (in SQLite's busy
    handler, in aiosqlite's thread) with the loop running (other work goes on), then goes
    through once the lock is free."""
    import sqlite3

    from sqlalchemy.engine import make_url

    from storage.models import SQLModel

    db = Database(sqlite_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # e.g. a long `geo import`
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def write() -> None:
            async with db.transaction() as session:
                session.add(Resident(pseudonym="waited", last_commune_code=7))

        running = asyncio.create_task(ticker())
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        assert not writing.done() and ticks >= 20  # waiting, and the loop kept going
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writing, 5)
        running.cancel()
        async with db.session() as session:
            row = await session.get(Resident, "waited")
        assert row is not None and row.last_commune_code == 7
    finally:
        await db.close()


async def test_a_failed_statement_does_not_quote_its_values(database: Database) -> None:
    """The engines hide bound values from error messages (which end up in logs): a
    duplicate webhook update's error names the statement, not the payload it carried."""
    async with database.transaction() as session:
        session.add(InboundUpdate(update_id=5, payload="first"))
    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as session:
            session.add(InboundUpdate(update_id=5, payload='{"username": "xuyen_ta_1987"}'))
    assert "INSERT INTO inbound_updates" in str(caught.value)
    assert "xuyen_ta_1987" not in str(caught.value)


async def test_durable_transactions_commit_with_synchronous_full(sqlite_url: str) -> None:
    """SQLite: commits someone is told about (``durable=True``: a receipted tip, a stored
    webhook update) are synced before COMMIT returns (synchronous=FULL); the others keep
    NORMAL (synced at checkpoints), on the same pooled connections."""
    from storage.models import SQLModel

    db = Database(sqlite_url)
    levels: list[int] = []

    @event.listens_for(db.engine.sync_engine, "commit")
    def _level_at_commit(connection: Connection) -> None:
        levels.append(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())

    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        levels.clear()
        for durable, name in ((True, "a"), (False, "b"), (True, "c"), (False, "d")):
            async with db.transaction(durable=durable) as session:
                session.add(Resident(pseudonym=name, last_commune_code=1))
        assert levels == [FULL, NORMAL, FULL, NORMAL]
    finally:
        await db.close()


async def test_a_tip_is_committed_durably(sqlite_url: str) -> None:
    """The receipt code is given once the tip's commit returned: that commit is synced."""
    from bot.domain.categories import Categories
    from bot.domain.communes import CommuneDirectory
    from bot.domain.intake import IntakeService
    from bot.domain.routing import Router
    from bot.domain.sealing import ChatSealer, ReplyAddress
    from storage import migrate

    db = Database(sqlite_url)
    levels: list[int] = []

    @event.listens_for(db.engine.sync_engine, "commit")
    def _level_at_commit(connection: Connection) -> None:
        levels.append(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())

    try:
        await migrate.upgrade(db)
        intake = IntakeService(IntakeStore(db), CommuneDirectory.load(), Categories.load(),
                               ChatSealer(b"durable-test-secret-0123456789abcdef"),
                               Router(ops_chat_id=None))
        await intake.begin("p", "vi", commune_code=2998)
        await intake.choose_category("p", "theft")
        await intake.set_urgency("p", False)
        await intake.add_text("p", "Sự việc cụ thể")
        await intake.finish_attachments("p")
        assert set(levels) == {NORMAL}  # the draft's steps
        levels.clear()
        await intake.submit("p", ReplyAddress("tg", "1"), channel="telegram")
        assert levels == [FULL]
    finally:
        await db.close()
