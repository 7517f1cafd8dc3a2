"""Schema only via Alembic: stairway (upgrade -> downgrade -> upgrade per revision) on
SQLite and PostgreSQL, and the models agree with the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage import migrate
from storage.db import Database


async def test_stairway_every_revision_up_down_up(database_url: str) -> None:
    db = Database(database_url)
    try:
        revisions = migrate.revisions()
        assert revisions, "no migrations found"
        previous = "base"
        for revision in revisions:
            await migrate.upgrade(db, revision)
            assert await migrate.current_revision(db) == revision
            await migrate.downgrade(db, previous)
            assert await migrate.current_revision(db) == (None if previous == "base" else previous)
            await migrate.upgrade(db, revision)
            previous = revision
        assert await migrate.current_revision(db) == revisions[-1]
    finally:
        await db.close()


async def test_downgrade_to_base_leaves_no_tables(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        await migrate.downgrade(db, "base")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await db.close()


async def test_models_match_migrations(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), SQLModel.metadata)
        )
    assert diff == []
