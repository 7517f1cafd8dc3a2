"""Subscribers to announcements: opt-in/out by pseudonym, and the pages of recipients a
broadcast streams (plain SQL built once)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.broadcast.subscribers import Scope, Subscription
from storage.db import Database
from storage.tables import residents as _residents
from storage.tables import subscribers as _subscribers

_S = _subscribers.c
_SUBSCRIPTION = sa.select(_S.scope, _S.commune_code, _S.province_code, _S.active).where(
    _S.pseudonym == sa.bindparam("pseudonym"))
_LAST_COMMUNE = sa.select(_residents.c.last_commune_code).where(
    _residents.c.pseudonym == sa.bindparam("pseudonym"))
_UNSUBSCRIBE = (
    sa.update(_subscribers)
    .where(_S.pseudonym == sa.bindparam("p"), _S.active.is_(True))
    .values(active=False, deactivated_at=sa.bindparam("now"), inactive_reason="opt_out")
)


class SubscriberStore:
    """For ``bot.domain.broadcast.subscribers.Subscriptions``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        insert = sqlite_insert if db.is_sqlite else postgresql_insert
        statement = insert(_subscribers)
        self._upsert = statement.on_conflict_do_update(
            index_elements=[_S.pseudonym],
            set_={name: statement.excluded[name] for name in (
                "sealed_chat", "scope", "language", "commune_code", "province_code", "active",
                "subscribed_at", "deactivated_at", "inactive_reason")},
        )
        flag = insert(_residents)
        self._flag = flag.on_conflict_do_update(
            index_elements=[_residents.c.pseudonym],
            set_={"subscribed": flag.excluded.subscribed, "updated_at": flag.excluded.updated_at},
        )

    async def subscribe(
        self, pseudonym: str, sealed_chat: str, scope: str, commune_code: int | None,
        province_code: int | None, now: datetime, language: str | None = None,
    ) -> None:
        async with self._db.transaction() as session:
            conn = await session.connection()
            await conn.execute(self._upsert, {
                "pseudonym": pseudonym, "sealed_chat": sealed_chat, "scope": scope,
                "language": language,
                "commune_code": commune_code, "province_code": province_code, "active": True,
                "subscribed_at": now, "deactivated_at": None, "inactive_reason": None,
            })
            await conn.execute(self._flag, self._flag_row(pseudonym, True, now))

    async def unsubscribe(self, pseudonym: str, now: datetime) -> bool:
        async with self._db.transaction() as session:
            conn = await session.connection()
            result = await conn.execute(_UNSUBSCRIBE, {"p": pseudonym, "now": now})
            await conn.execute(self._flag, self._flag_row(pseudonym, False, now))
            return bool(result.rowcount)

    async def subscription(self, pseudonym: str) -> Subscription | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(_SUBSCRIPTION, {"pseudonym": pseudonym})).first()
        if row is None:
            return None
        scope: Scope = row.scope
        return Subscription(scope, row.commune_code, row.province_code, bool(row.active))

    async def last_commune(self, pseudonym: str) -> int | None:
        async with self._db.engine.connect() as conn:
            return (await conn.execute(_LAST_COMMUNE, {"pseudonym": pseudonym})).scalar()

    @staticmethod
    def _flag_row(pseudonym: str, subscribed: bool, now: datetime) -> dict[str, object]:
        return {"pseudonym": pseudonym, "language": None, "subscribed": subscribed,
                "created_at": now, "updated_at": now}
