"""Alembic environment. The app runs migrations on its own async engine by passing a sync
connection in ``config.attributes["connection"]`` (see storage/migrate.py); the ``alembic``
CLI path (``python -m bot db revision``) builds a sync engine from the URL instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or ""
    sync_url = url.replace("sqlite+aiosqlite", "sqlite")
    engine = create_engine(sync_url, poolclass=pool.NullPool)
    with engine.connect() as sync_connection:
        _configure(sync_connection)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
