"""Write transactions do not lose concurrent read-modify-write updates (SQLite: BEGIN
IMMEDIATE + WAL + busy timeout; PostgreSQL: row lock taken by the update)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

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

    def _level_at_commit(connection: Connection) -> None:
        levels.append(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())

    for engine in db.sync_engines:
        event.listen(engine, "commit", _level_at_commit)
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


# --- units of work (``Database.work``): a step of any size is one hand-off --------------------

def _add_resident(name: str, code: int = 1) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        conn.execute(insert(Resident.__table__), {  # type: ignore[attr-defined]
            "pseudonym": name, "last_commune_code": code,
            "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)})
    return step


async def _residents(database: Database) -> dict[str, int | None]:
    async with database.session() as session:
        rows = (await session.exec(select(Resident))).all()
    return {row.pseudonym: row.last_commune_code for row in rows}


async def test_the_steps_of_a_unit_of_work_commit_together(database: Database) -> None:
    async with database.work() as work:
        await work.run(_add_resident("a"))
        count = await work.run(
            lambda conn: conn.execute(text("SELECT count(*) FROM residents")).scalar_one())
        assert count == 1  # the transaction's own write is seen by its next step
        await work.run(_add_resident("b"))
    assert await _residents(database) == {"a": 1, "b": 1}

    async with database.work() as work:  # the last step commits: nothing may follow
        await work.run(_add_resident("c"), last=True)
        assert await _residents(database) == {"a": 1, "b": 1, "c": 1}
        with pytest.raises(RuntimeError, match="committed"):
            await work.run(_add_resident("d"))
    assert "d" not in await _residents(database)


async def test_a_failing_step_rolls_the_whole_unit_back(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.work() as work:
            await work.run(_add_resident("a"))
            await work.run(_add_resident("a"))  # the same primary key
    with pytest.raises(ValueError, match="refused"):
        async with database.work() as work:
            await work.run(_add_resident("b"))

            def refuse(conn: Connection) -> None:
                raise ValueError("refused by a rule")

            await work.run(refuse, last=True)
    with pytest.raises(KeyError):
        async with database.work() as work:
            await work.run(_add_resident("c"))
            raise KeyError("the caller fails between two steps")
    assert await _residents(database) == {}
    async with database.work() as work:  # and the database is usable afterwards
        await work.run(_add_resident("d"), last=True)
    assert await _residents(database) == {"d": 1}


async def test_a_cancelled_unit_of_work_is_rolled_back(database: Database) -> None:
    started = asyncio.Event()

    async def long_unit() -> None:
        async with database.work() as work:
            await work.run(_add_resident("a"))
            started.set()
            await asyncio.sleep(30)
            await work.run(_add_resident("b"))

    task = asyncio.create_task(long_unit())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _residents(database) == {}
    async with database.work() as work:
        await work.run(_add_resident("c"), last=True)
    assert await _residents(database) == {"c": 1}


async def test_units_of_work_and_transactions_do_not_lose_updates(database: Database) -> None:
    """Both kinds of writers queue on the same write lock (SQLite) or row lock (PostgreSQL):
    40 increments, half through each, are all kept."""
    async with database.transaction() as session:
        session.add(Resident(pseudonym="counter", last_commune_code=0))
    read_plain = text("SELECT last_commune_code FROM residents WHERE pseudonym='counter'")
    read_locked = text(
        "SELECT last_commune_code FROM residents WHERE pseudonym='counter' FOR UPDATE")
    read = read_plain if database.is_sqlite else read_locked
    write = text("UPDATE residents SET last_commune_code=:v WHERE pseudonym='counter'")

    async def through_work() -> None:
        def step(conn: Connection) -> None:
            value = conn.execute(read).scalar_one()
            conn.execute(write, {"v": value + 1})
        async with database.work() as work:
            await work.run(step)
            await asyncio.sleep(0)

    async def through_transaction() -> None:
        async with database.transaction() as session:
            conn = await session.connection()
            value = (await conn.execute(read)).scalar_one()
            await asyncio.sleep(0)
            await conn.execute(write, {"v": value + 1})

    await asyncio.gather(*(through_work() if i % 2 else through_transaction()
                           for i in range(40)))
    assert (await _residents(database))["counter"] == 40


async def test_a_read_sees_committed_rows_and_keeps_nothing_it_writes(database: Database) -> None:
    async with database.work() as work:
        await work.run(_add_resident("a"), last=True)

    def count(conn: Connection) -> int:
        return int(conn.execute(text("SELECT count(*) FROM residents")).scalar_one())

    assert await database.read(count) == 1

    def sneaky(conn: Connection) -> int:
        _add_resident("b")(conn)
        return count(conn)

    assert await database.read(sneaky) == 2  # its own snapshot sees it …
    assert await _residents(database) == {"a": 1}  # … nobody else ever does
    results = await asyncio.gather(*(database.read(count) for _ in range(20)))
    assert results == [1] * 20
