"""Reading tips back for residents and admins, and the ban: plain SQL built once."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from storage.db import Database
from storage.models import TipEvent
from storage.tables import bans as _bans
from storage.tables import reporters as _reporters
from storage.tables import tips as _tips

_STATUS = (_tips.c.code, _tips.c.status, _tips.c.created_at, _tips.c.commune_code)
_BY_CODE = sa.select(*_STATUS).where(_tips.c.code == sa.bindparam("code"))
_MINE = (
    sa.select(*_STATUS).join(_reporters, _reporters.c.tip_id == _tips.c.id)
    .where(_reporters.c.pseudonym == sa.bindparam("pseudonym"))
    .order_by(_tips.c.id.desc()).limit(sa.bindparam("limit"))
)
_REPORTER = (
    sa.select(_tips.c.id, _reporters.c.pseudonym, sa.exists().where(
        _bans.c.pseudonym == _reporters.c.pseudonym).label("banned"))
    .join(_reporters, _reporters.c.tip_id == _tips.c.id).where(_tips.c.code == sa.bindparam("code"))
)
_INSERT_BAN = sa.insert(_bans)
_INSERT_EVENT = sa.insert(TipEvent.__table__)  # type: ignore[attr-defined]

StatusRow = tuple[str, str, datetime, int]  # code, status, created at, commune code


class TipsStore:
    """For ``bot.domain.tips.TipQueries``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def status(self, code: str) -> StatusRow | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(_BY_CODE, {"code": code})).first()
        return (row.code, row.status, row.created_at, row.commune_code) if row else None

    async def of_reporter(self, pseudonym: str, limit: int) -> list[StatusRow]:
        """Tips of this pseudonym while their reporter link is kept, newest first."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_MINE, {"pseudonym": pseudonym, "limit": limit})
            return [(r.code, r.status, r.created_at, r.commune_code) for r in rows]

    async def ban_reporter_of(
        self, code: str, *, admin_id: int, admin_name: str, now: datetime
    ) -> tuple[bool, bool]:
        """Ban the pseudonym behind the tip with this code, audited on the tip. Returns
        (a tip with a reporter link was found, its reporter was banned already)."""
        async with self._db.transaction() as session:
            conn = await session.connection()
            row = (await conn.execute(_REPORTER, {"code": code})).first()
            if row is None:
                return False, False
            if row.banned:
                return True, True
            await conn.execute(_INSERT_BAN, {"pseudonym": row.pseudonym, "banned_at": now,
                                             "banned_by": admin_id, "tip_code": code})
            await conn.execute(_INSERT_EVENT, {
                "tip_id": row.id, "at": now, "actor_kind": "admin", "actor_id": admin_id,
                "actor_name": admin_name, "event": "reporter_banned",
                "details": json.dumps({})})
        return True, False
