"""Residents' preferences by pseudonym: plain SQL built once (an upsert per dialect)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.db import Database
from storage.models import utcnow
from storage.tables import residents as _residents

_LANGUAGE = sa.select(_residents.c.language).where(
    _residents.c.pseudonym == sa.bindparam("pseudonym"))


class ResidentStore:
    """For ``bot.domain.residents.ResidentPreferences``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        insert = sqlite_insert if db.is_sqlite else postgresql_insert
        self._upserts = {}
        for field in ("language", "subscribed"):
            statement = insert(_residents)
            self._upserts[field] = statement.on_conflict_do_update(
                index_elements=[_residents.c.pseudonym],
                set_={field: statement.excluded[field],
                      "updated_at": statement.excluded.updated_at},
            )

    async def language(self, pseudonym: str) -> str | None:
        """The stored choice (None if none, or no row)."""
        return await self._db.read(
            lambda conn: conn.execute(_LANGUAGE, {"pseudonym": pseudonym}).scalar())

    async def set_language(self, pseudonym: str, language: str) -> None:
        await self._set("language", pseudonym, language)

    async def set_subscribed(self, pseudonym: str, subscribed: bool) -> None:
        await self._set("subscribed", pseudonym, subscribed)

    async def _set(self, field: str, pseudonym: str, value: object) -> None:
        now = utcnow()
        row = {"pseudonym": pseudonym, "language": None, "subscribed": False,
               "created_at": now, "updated_at": now, field: value}
        async with self._db.transaction() as session:
            await (await session.connection()).execute(self._upserts[field], row)
