"""Run the Alembic migrations programmatically, on the app's own async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    await _run(db, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(db: Database, revision: str) -> None:
    await _run(db, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def _run(db: Database, action: Callable[[Config], None]) -> None:
    config = alembic_config(db.url)

    def run_with(sync_connection: Connection) -> None:
        config.attributes["connection"] = sync_connection
        action(config)

    async with db.engine.begin() as connection:
        if db.is_sqlite:  # schema changes may wait for a running bot's writes (once, at start)
            await connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        try:
            await connection.run_sync(run_with)
        finally:
            if db.is_sqlite:
                await connection.exec_driver_sql(f"PRAGMA busy_timeout={db.busy_timeout_ms}")


def revisions() -> list[str]:
    """All revision ids from base to head (for the stairway test)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
