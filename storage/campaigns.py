"""Campaigns, their runs and deliveries, and the subscribers a run streams (plain SQL built
once; records from bot/domain/broadcast/records.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.broadcast.records import (
    CampaignRecord,
    Outcome,
    Recipient,
    RunCounts,
    RunRecord,
)
from storage.db import Database
from storage.tables import campaign_deliveries as _deliveries
from storage.tables import campaign_runs as _runs
from storage.tables import campaigns as _campaigns
from storage.tables import residents as _residents
from storage.tables import subscribers as _subscribers

_C, _R, _D, _S = _campaigns.c, _runs.c, _deliveries.c, _subscribers.c

_CAMPAIGN_COLUMNS = (
    _C.id, _C.key, _C.kind, _C.title, _C.text_vi, _C.text_en,
    _C.photo.is_not(None).label("has_photo"), _C.scope, _C.scope_code, _C.send_at, _C.status,
)
_CAMPAIGN = sa.select(*_CAMPAIGN_COLUMNS).where(_C.id == sa.bindparam("id"))
_CAMPAIGNS = sa.select(*_CAMPAIGN_COLUMNS).order_by(_C.id)
_DUE_CUSTOMS = sa.select(*_CAMPAIGN_COLUMNS).where(
    _C.kind == "custom", _C.status == "scheduled", _C.send_at <= sa.bindparam("now"))
_PHOTO = sa.select(_C.photo, _C.photo_file_id).where(_C.id == sa.bindparam("id"))
_SET_FILE_ID = sa.update(_campaigns).where(_C.id == sa.bindparam("cid")).values(
    photo_file_id=sa.bindparam("file_id"))
_RUN_COLUMNS = (_R.id, _R.campaign_id, _R.year, _R.status, _R.audience, _R.started_at,
                _R.finished_at, _R.progress_chat_id, _R.progress_message_id)
_RUN = sa.select(*_RUN_COLUMNS).where(_R.id == sa.bindparam("id"))
_RUNS_TO_DRIVE = sa.select(*_RUN_COLUMNS).where(_R.status == "running").order_by(_R.id)
_LATEST_RUN = sa.select(*_RUN_COLUMNS).where(
    _R.campaign_id == sa.bindparam("cid")).order_by(_R.year.desc(), _R.id.desc()).limit(1)
_PENDING = (
    sa.select(_D.id, _D.subscriber_id, _S.sealed_chat,
              sa.func.coalesce(_residents.c.language, _S.language).label("language"))
    .select_from(_deliveries.join(_subscribers, _S.id == _D.subscriber_id).outerjoin(
        _residents, _residents.c.pseudonym == _S.pseudonym))
    .where(_D.run_id == sa.bindparam("run"), _D.status == "pending",
           _D.subscriber_id > sa.bindparam("after"), _S.active.is_(True))
    .order_by(_D.subscriber_id).limit(sa.bindparam("limit"))
)
_CURSOR = sa.select(_R.cursor).where(_R.id == sa.bindparam("run"))
_MOVE_CURSOR = sa.update(_runs).where(_R.id == sa.bindparam("run")).values(
    cursor=sa.bindparam("cursor"))
_NEW_DELIVERY = sa.insert(_deliveries).values(
    run_id=sa.bindparam("run"), subscriber_id=sa.bindparam("sid"), status="pending",
    attempts=0)
_MARK = (
    sa.update(_deliveries)
    .where(_D.id == sa.bindparam("did"), _D.status == "pending")
    .values(status=sa.bindparam("st"), attempts=sa.bindparam("att"),
            done_at=sa.bindparam("now"), last_error=sa.bindparam("err"))
)
_DEACTIVATE = (
    sa.update(_subscribers)
    .where(_S.id == sa.bindparam("sid"), _S.active.is_(True))
    .values(active=False, deactivated_at=sa.bindparam("now"), inactive_reason="unreachable")
)
_COUNTS = sa.select(_D.status, sa.func.count()).where(
    _D.run_id == sa.bindparam("run")).group_by(_D.status)
_AUDIENCE = sa.select(_R.audience).where(_R.id == sa.bindparam("run"))
_SET_AUDIENCE = sa.update(_runs).where(_R.id == sa.bindparam("run")).values(
    audience=sa.bindparam("n"))
_FINISH = sa.update(_runs).where(_R.id == sa.bindparam("run"), _R.status == "running").values(
    status="done", finished_at=sa.bindparam("now"))
_LEFT_INACTIVE = (
    sa.update(_deliveries)
    .where(_D.run_id == sa.bindparam("run"), _D.status == "pending",
           _D.subscriber_id.in_(sa.select(_S.id).where(_S.active.is_(False))))
    .values(status="inactive", done_at=sa.bindparam("now"))
)
_CUSTOM_DONE = sa.update(_campaigns).where(
    _C.id == sa.select(_R.campaign_id).where(_R.id == sa.bindparam("run")).scalar_subquery(),
    _C.kind == "custom").values(status="done")
_PROGRESS = sa.update(_runs).where(_R.id == sa.bindparam("run")).values(
    progress_chat_id=sa.bindparam("chat"), progress_message_id=sa.bindparam("msg"))
_BUILTIN_ID = sa.select(_C.id).where(_C.key == sa.bindparam("key"))


def _audience_filter(scope: str, code: int | None, province: int | None) -> Any:
    """Active subscribers a campaign of this scope reaches (see subscribers.py)."""
    active = _S.active.is_(True)
    if scope == "province":
        return sa.and_(active, sa.or_(_S.scope == "all", _S.province_code == province))
    if scope == "commune":
        return sa.and_(active, sa.or_(
            _S.scope == "all",
            sa.and_(_S.scope == "province", _S.province_code == province),
            _S.commune_code == code,
        ))
    return active


def _campaign(row: Any) -> CampaignRecord:
    return CampaignRecord(row.id, row.key, row.kind, row.title, row.text_vi, row.text_en,
                          bool(row.has_photo), row.scope, row.scope_code, row.send_at, row.status)


def _run(row: Any) -> RunRecord:
    return RunRecord(row.id, row.campaign_id, row.year, row.status, row.audience,
                     row.started_at, row.finished_at, row.progress_chat_id,
                     row.progress_message_id)


class CampaignsStore:
    """For the broadcast engine, the campaign scheduler and the CLI."""

    def __init__(self, db: Database) -> None:
        self._db = db
        insert = sqlite_insert if db.is_sqlite else postgresql_insert
        # RETURNING tells whether the row was created (rowcount is not reliable with
        # ON CONFLICT DO NOTHING across drivers)
        self._new_run = insert(_runs).on_conflict_do_nothing(
            index_elements=[_R.campaign_id, _R.year]).returning(_R.id)

    # --- reading ------------------------------------------------------------------------

    async def _one(self, statement: Any, params: dict[str, Any]) -> Any:
        async with self._db.engine.connect() as conn:
            return (await conn.execute(statement, params)).first()

    async def campaign(self, campaign_id: int) -> CampaignRecord | None:
        row = await self._one(_CAMPAIGN, {"id": campaign_id})
        return _campaign(row) if row is not None else None

    async def campaigns(self) -> list[CampaignRecord]:
        async with self._db.engine.connect() as conn:
            return [_campaign(row) for row in await conn.execute(_CAMPAIGNS)]

    async def photo(self, campaign_id: int) -> tuple[bytes | None, str | None]:
        row = await self._one(_PHOTO, {"id": campaign_id})
        return (row.photo, row.photo_file_id) if row is not None else (None, None)

    async def run(self, run_id: int) -> RunRecord | None:
        row = await self._one(_RUN, {"id": run_id})
        return _run(row) if row is not None else None

    async def latest_run(self, campaign_id: int) -> RunRecord | None:
        row = await self._one(_LATEST_RUN, {"cid": campaign_id})
        return _run(row) if row is not None else None

    async def runs_to_drive(self) -> list[RunRecord]:
        async with self._db.engine.connect() as conn:
            return [_run(row) for row in await conn.execute(_RUNS_TO_DRIVE)]

    async def due_customs(self, now: datetime) -> list[CampaignRecord]:
        async with self._db.engine.connect() as conn:
            return [_campaign(row) for row in await conn.execute(_DUE_CUSTOMS, {"now": now})]

    async def pending(self, run_id: int, after_subscriber: int, limit: int) -> list[Recipient]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                _PENDING, {"run": run_id, "after": after_subscriber, "limit": limit})
            return [Recipient(r.id, r.subscriber_id, r.sealed_chat, r.language) for r in rows]

    async def counts(self, run_id: int) -> RunCounts:
        async with self._db.engine.connect() as conn:
            by_status: dict[str, int] = dict((await conn.execute(_COUNTS, {"run": run_id})).all())
            audience = (await conn.execute(_AUDIENCE, {"run": run_id})).scalar() or 0
        return RunCounts(by_status.get("sent", 0), by_status.get("failed", 0),
                         by_status.get("inactive", 0), by_status.get("pending", 0), audience)

    # --- writing ------------------------------------------------------------------------

    async def extend(
        self, run_id: int, scope: str, scope_code: int | None, province_code: int | None,
        limit: int,
    ) -> int:
        where = _audience_filter(scope, scope_code, province_code)
        async with self._db.transaction() as session:
            conn = await session.connection()
            cursor = (await conn.execute(_CURSOR, {"run": run_id})).scalar() or 0
            ids = list((await conn.execute(
                sa.select(_S.id).where(where, _S.id > cursor).order_by(_S.id).limit(limit)
            )).scalars())
            if ids:
                await conn.execute(_NEW_DELIVERY, [{"run": run_id, "sid": i} for i in ids])
                await conn.execute(_MOVE_CURSOR, {"run": run_id, "cursor": ids[-1]})
        return len(ids)

    async def set_audience(
        self, run_id: int, scope: str, scope_code: int | None, province_code: int | None
    ) -> None:
        where = _audience_filter(scope, scope_code, province_code)
        async with self._db.transaction() as session:
            conn = await session.connection()
            if (await conn.execute(_AUDIENCE, {"run": run_id})).scalar():
                return
            count = (await conn.execute(
                sa.select(sa.func.count()).select_from(_subscribers).where(where))).scalar()
            await conn.execute(_SET_AUDIENCE, {"run": run_id, "n": count or 0})

    async def mark(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        if not outcomes:
            return
        async with self._db.transaction() as session:
            conn = await session.connection()
            await conn.execute(_MARK, [
                {"did": o.delivery_id, "st": o.status, "att": o.attempts, "now": now,
                 "err": o.error} for o in outcomes])
            gone = [{"sid": o.subscriber_id, "now": now} for o in outcomes
                    if o.status == "inactive"]
            if gone:
                await conn.execute(_DEACTIVATE, gone)

    async def finish(self, run_id: int, now: datetime) -> bool:
        async with self._db.transaction() as session:
            conn = await session.connection()
            done = (await conn.execute(_FINISH, {"run": run_id, "now": now})).rowcount
            if done:
                await conn.execute(_LEFT_INACTIVE, {"run": run_id, "now": now})
                await conn.execute(_CUSTOM_DONE, {"run": run_id})
        return bool(done)

    async def set_photo_file_id(self, campaign_id: int, file_id: str) -> None:
        async with self._db.transaction() as session:
            await (await session.connection()).execute(
                _SET_FILE_ID, {"cid": campaign_id, "file_id": file_id[:256]})

    async def set_progress_message(self, run_id: int, chat_id: int, message_id: int) -> None:
        async with self._db.transaction() as session:
            await (await session.connection()).execute(
                _PROGRESS, {"run": run_id, "chat": chat_id, "msg": message_id})

    async def sync_builtin(
        self, key: str, title: str, text_vi: str, text_en: str, photo: bytes, now: datetime
    ) -> int:
        """The built-in campaign's row, its texts kept in step with the campaigns file."""
        async with self._db.transaction() as session:
            conn = await session.connection()
            found = (await conn.execute(_BUILTIN_ID, {"key": key})).scalar()
            if found is not None:
                await conn.execute(sa.update(_campaigns).where(_C.id == found).values(
                    title=title, text_vi=text_vi, text_en=text_en))
                return int(found)
            result = await conn.execute(sa.insert(_campaigns).values(
                key=key, kind="builtin", title=title, text_vi=text_vi, text_en=text_en,
                photo=photo, scope="all", status="yearly", created_at=now,
            ).returning(_C.id))
            return int(result.scalar_one())

    async def add_custom(
        self, *, title: str, text: str, photo: bytes | None, scope: str, scope_code: int | None,
        send_at: datetime, status: str, created_by: int | None, now: datetime,
    ) -> int:
        async with self._db.transaction() as session:
            result = await (await session.connection()).execute(sa.insert(_campaigns).values(
                kind="custom", title=title[:128], text_vi=text, text_en=None, photo=photo,
                scope=scope, scope_code=scope_code, send_at=send_at, status=status,
                created_by=created_by, created_at=now,
            ).returning(_C.id))
            return int(result.scalar_one())

    async def start_run(self, campaign_id: int, year: int, now: datetime) -> int | None:
        async with self._db.transaction() as session:
            conn = await session.connection()
            created = (await conn.execute(self._new_run, {
                "campaign_id": campaign_id, "year": year, "status": "running", "cursor": 0,
                "audience": 0, "started_at": now,
            })).scalar()
            if created is None:
                return None
            await conn.execute(sa.update(_campaigns).where(
                _C.id == campaign_id, _C.kind == "custom").values(status="running"))
            return int(created)

    async def set_status(
        self, campaign_id: int, status: str, *, only_from: Sequence[str] = ()
    ) -> bool:
        statement = sa.update(_campaigns).where(_C.id == campaign_id).values(status=status)
        if only_from:
            statement = statement.where(_C.status.in_(list(only_from)))
        async with self._db.transaction() as session:
            return bool((await (await session.connection()).execute(statement)).rowcount)

    async def set_run_status(
        self, run_id: int, status: str, *, only_from: Sequence[str] = ()
    ) -> bool:
        statement = sa.update(_runs).where(_R.id == run_id).values(status=status)
        if only_from:
            statement = statement.where(_R.status.in_(list(only_from)))
        async with self._db.transaction() as session:
            return bool((await (await session.connection()).execute(statement)).rowcount)
