"""The intake's reads and writes: drafts, their pictures, the commit of tips. Plain SQL
expressions built once (building and keying a statement costs more than running it on
SQLite), run on the transaction's connection: no ORM session work per step. Rows come back
as the domain's plain records (``bot.domain.intake_rules``); the rules themselves (which
step, the ban, the rate limits, the duplicate merge) are decided there, by the callbacks
given here, inside the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.domain.failures import StoreConflict, StoreUnavailable
from bot.domain.intake_rules import DraftRecord, PastTip
from storage.db import Database, Work
from storage.models import (
    OutboxMessage,
    TipEvent,
    UTCDateTime,
    utcnow,
)
from storage.tables import bans as _bans
from storage.tables import drafts as _drafts
from storage.tables import links as _links
from storage.tables import photos as _photos
from storage.tables import reporters as _reporters
from storage.tables import residents as _residents
from storage.tables import tips as _tips


@dataclass(frozen=True, slots=True)
class ResidentFacts:
    """What starting a draft looks at."""

    banned: bool
    last_commune_code: int | None
    history: list[PastTip]


@dataclass(frozen=True, slots=True)
class SubmitFacts:
    """What a batch of submits looks at, read in one statement (plus the history)."""

    drafts: dict[str, DraftRecord]  # by pseudonym
    photo_counts: dict[int, int]  # by draft id
    banned: set[str]
    history: dict[str, list[PastTip]]


_DRAFT_COLUMNS = [_drafts.c[name] for name in (
    "id", "pseudonym", "step", "language", "commune_code", "category", "urgent", "description",
    "latitude", "longitude", "updated_at")]


def _draft(row: Any, captions: tuple[str | None, ...] = ()) -> DraftRecord:
    return DraftRecord(
        id=row.id, pseudonym=row.pseudonym, step=row.step, language=row.language,
        commune_code=row.commune_code, category=row.category, urgent=bool(row.urgent),
        description=row.description, latitude=row.latitude, longitude=row.longitude,
        updated_at=row.updated_at, captions=captions,
    )


class _Statements:
    def __init__(self, sqlite: bool) -> None:
        by_pseudonym = _drafts.c.pseudonym == sa.bindparam("pseudonym")
        self.draft = sa.select(*_DRAFT_COLUMNS).where(by_pseudonym)
        # FOR UPDATE: on PostgreSQL two changes of one draft queue on its row (SQLite's
        # BEGIN IMMEDIATE already serialises writers and ignores this clause)
        self.draft_for_update = self.draft.with_for_update()
        self.captions = (
            sa.select(_photos.c.caption).where(_photos.c.draft_id == sa.bindparam("draft_id"))
            .order_by(_photos.c.position, _photos.c.id)
        )
        self.photo_count = sa.select(sa.func.count()).select_from(_photos).where(
            _photos.c.draft_id == sa.bindparam("draft_id"))
        # the SET columns are the parameters given (besides draft_id)
        self.update_draft = sa.update(_drafts).where(_drafts.c.id == sa.bindparam("draft_id"))
        self.delete_draft = sa.delete(_drafts).where(by_pseudonym)
        self.delete_expired = sa.delete(_drafts).where(
            _drafts.c.updated_at < sa.bindparam("before", type_=UTCDateTime))
        self.insert_draft = sa.insert(_drafts).returning(_drafts.c.id)
        self.insert_photo = sa.insert(_photos)
        self.resident = sa.select(
            sa.exists().where(_bans.c.pseudonym == sa.bindparam("pseudonym")).label("banned"),
            sa.select(_residents.c.last_commune_code)
            .where(_residents.c.pseudonym == sa.bindparam("pseudonym"))
            .scalar_subquery().label("last_commune_code"),
        )
        photo_count = (
            sa.select(sa.func.count()).where(_photos.c.draft_id == _drafts.c.id)
            .scalar_subquery().label("photos")
        )
        banned = sa.exists().where(_bans.c.pseudonym == _drafts.c.pseudonym).label("banned")
        self.submit_drafts = (
            sa.select(*_DRAFT_COLUMNS, photo_count, banned)
            .where(_drafts.c.pseudonym.in_(sa.bindparam("pseudonyms", expanding=True)))
            .with_for_update(of=_drafts)
        )
        self.history = (  # each resident's tips of the last day
            sa.select(_reporters.c.pseudonym, _reporters.c.created_at, _tips.c.id,
                      _tips.c.code, _tips.c.content_hash, _tips.c.created_at.label("tip_at"))
            .join(_tips, _tips.c.id == _reporters.c.tip_id)
            .where(_reporters.c.pseudonym.in_(sa.bindparam("pseudonyms", expanding=True)),
                   _reporters.c.created_at > sa.bindparam("since", type_=UTCDateTime))
        )
        self.links = sa.select(_links.c.scope, _links.c.code, _links.c.chat_id).where(sa.or_(
            (_links.c.scope == "commune")
            & _links.c.code.in_(sa.bindparam("communes", expanding=True)),
            (_links.c.scope == "province")
            & _links.c.code.in_(sa.bindparam("provinces", expanding=True)),
        ))
        # the links a batch of tips can need: its communes', and every province's (a few
        # dozen rows)
        self.links_with_provinces = sa.select(
            _links.c.scope, _links.c.code, _links.c.chat_id).where(sa.or_(
                (_links.c.scope == "commune")
                & _links.c.code.in_(sa.bindparam("communes", expanding=True)),
                _links.c.scope == "province",
            ))
        self.photos_to_tip = (
            sa.update(_photos).where(_photos.c.draft_id == sa.bindparam("from_draft"))
            .values(tip_id=sa.bindparam("to_tip"), draft_id=None)
        )
        self.delete_drafts = sa.delete(_drafts).where(
            _drafts.c.id.in_(sa.bindparam("ids", expanding=True)))
        self.insert_tips = sa.insert(_tips).returning(
            _tips.c.id, _tips.c.code, sort_by_parameter_order=True)
        self.insert_reporters = sa.insert(_reporters)
        self.insert_events = sa.insert(TipEvent.__table__)  # type: ignore[attr-defined]
        self.insert_outbox = sa.insert(OutboxMessage.__table__)  # type: ignore[attr-defined]
        insert = sqlite_insert if sqlite else postgresql_insert
        upsert = insert(_residents)
        # the resident's last commune for next time (a chosen language is kept)
        self.remember_residents = upsert.on_conflict_do_update(
            index_elements=[_residents.c.pseudonym],
            set_={
                "last_commune_code": upsert.excluded.last_commune_code,
                "language": sa.func.coalesce(_residents.c.language, upsert.excluded.language),
                "updated_at": upsert.excluded.updated_at,
            },
        )


def _history(
    conn: Connection, sql: _Statements, pseudonyms: Sequence[str], since: datetime
) -> dict[str, list[PastTip]]:
    history: dict[str, list[PastTip]] = {}
    for row in conn.execute(sql.history, {"pseudonyms": list(pseudonyms),
                                          "since": since}).all():
        history.setdefault(row.pseudonym, []).append(
            PastTip(row.id, row.code, row.content_hash, row.created_at, row.tip_at))
    return history


class IntakeStore:
    """Drafts and the tip commit, for ``bot.domain.intake.IntakeService``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sql = _Statements(db.is_sqlite)

    @property
    def db(self) -> Database:
        return self._db

    # --- drafts ------------------------------------------------------------------------------

    async def start_draft(
        self, pseudonym: str, *, since: datetime,
        decide: Callable[[ResidentFacts], tuple[str, int | None, str]],
    ) -> DraftRecord:
        """Replace the resident's draft by a new one; ``decide`` sees the resident's ban,
        last commune and tips since ``since``, and refuses (raises) or returns the new
        draft's (language, commune code, step)."""
        sql = self._sql

        def step(conn: Connection) -> DraftRecord:
            row = conn.execute(sql.resident, {"pseudonym": pseudonym}).one()
            facts = ResidentFacts(bool(row.banned), row.last_commune_code,
                                  _history(conn, sql, [pseudonym], since).get(pseudonym, []))
            language, commune_code, step = decide(facts)
            now = utcnow()
            conn.execute(sql.delete_draft, {"pseudonym": pseudonym})
            values = {"pseudonym": pseudonym, "language": language, "commune_code": commune_code,
                      "step": step, "urgent": False, "created_at": now, "updated_at": now}
            draft_id = conn.execute(sql.insert_draft, values).scalar_one()
            return DraftRecord(
                id=draft_id, pseudonym=pseudonym, step=step, language=language,
                commune_code=commune_code, category=None, urgent=False, description=None,
                latitude=None, longitude=None, updated_at=now,
            )

        async with self._db.work() as work:
            return await work.run(step, last=True)

    async def draft(self, pseudonym: str) -> DraftRecord | None:
        """The draft with its pictures' captions, read only (no write lock)."""
        sql = self._sql

        def step(conn: Connection) -> DraftRecord | None:
            row = conn.execute(sql.draft, {"pseudonym": pseudonym}).first()
            return None if row is None else _draft(row, _captions(conn, sql, row.id))

        return await self._db.read(step)

    async def change_draft(
        self, pseudonym: str, decide: Callable[[DraftRecord | None], Mapping[str, object]],
        *, with_captions: Callable[[DraftRecord], bool] = lambda _draft: True,
    ) -> DraftRecord:
        """Change the draft as ``decide`` says (it raises to refuse; it sees the draft as it
        is, or None), and touch it. The captions are read when ``with_captions`` says the
        draft may have pictures."""
        sql = self._sql

        def step(conn: Connection) -> DraftRecord:
            row = conn.execute(sql.draft_for_update, {"pseudonym": pseudonym}).first()
            before = _draft(row) if row is not None else None
            values = {**decide(before), "updated_at": utcnow()}
            assert before is not None  # decide refuses a missing draft
            conn.execute(sql.update_draft, {"draft_id": before.id, **values})
            after = replace(before, **values)  # type: ignore[arg-type]
            if with_captions(before):
                after = replace(after, captions=_captions(conn, sql, before.id))
            return after

        async with self._db.work() as work:
            return await work.run(step, last=True)

    async def add_photo(
        self, pseudonym: str, decide: Callable[[DraftRecord | None, int], None], *,
        order: int, data: bytes, width: int, height: int, caption: str | None,
    ) -> int:
        """Attach a picture if ``decide`` (seeing the draft and its picture count) lets it;
        returns the new count."""
        sql = self._sql

        def step(conn: Connection) -> int:
            row = conn.execute(sql.draft_for_update, {"pseudonym": pseudonym}).first()
            draft = _draft(row) if row is not None else None
            count = 0 if draft is None else int(
                conn.execute(sql.photo_count, {"draft_id": draft.id}).scalar_one())
            decide(draft, count)
            assert draft is not None
            now = utcnow()
            conn.execute(sql.insert_photo, {
                "draft_id": draft.id, "position": order, "data": data, "width": width,
                "height": height, "caption": caption, "created_at": now})
            conn.execute(sql.update_draft, {"draft_id": draft.id, "updated_at": now})
            return count + 1

        async with self._db.work() as work:
            return await work.run(step, last=True)

    async def delete_draft(self, pseudonym: str) -> bool:
        async with self._db.transaction() as session:
            conn = await session.connection()
            result = await conn.execute(self._sql.delete_draft, {"pseudonym": pseudonym})
            return bool(result.rowcount)

    async def delete_drafts_before(self, before: datetime) -> int:
        async with self._db.transaction() as session:
            conn = await session.connection()
            result = await conn.execute(self._sql.delete_expired, {"before": before})
            return int(result.rowcount or 0)


    # --- the commit --------------------------------------------------------------------------

    @asynccontextmanager
    async def submitting(self) -> AsyncIterator[SubmitUnit]:
        """One durable transaction (receipts are given) for a batch of submits. Database
        failures come out as ``StoreUnavailable`` / ``StoreConflict``."""
        try:
            async with self._db.work(durable=True) as work:
                unit = SubmitUnit(work, self._sql)
                yield unit
                await unit.flush()
        except OperationalError as error:
            raise StoreUnavailable(type(error).__name__) from error
        except IntegrityError as error:
            raise StoreConflict(type(error).__name__) from error


class SubmitUnit:
    """The statements of one batch commit, in three hand-offs to the database whatever the
    batch's size: the facts (with the routing links the batch can need), the tips (their ids
    are needed for the rest), then every other write with the commit. Writes that return
    nothing are queued and run, in the order given, by ``flush``."""

    def __init__(self, work: Work, sql: _Statements) -> None:
        self._work = work
        self._sql = sql
        self._links: list[tuple[str, int, int]] | None = None  # read with the facts
        self._link_communes: set[int] = set()  # the communes whose links those are
        self._queued: list[tuple[Any, Any]] = []

    async def facts(self, pseudonyms: Sequence[str], since: datetime) -> SubmitFacts:
        """The drafts (locked), their picture counts, who is banned, the recent tips; and,
        read in the same hand-off, the links of the drafts' communes and of every province
        (a few dozen rows), which ``links`` then answers from."""
        sql = self._sql

        def step(conn: Connection) -> SubmitFacts:
            rows = conn.execute(sql.submit_drafts, {"pseudonyms": list(pseudonyms)}).all()
            communes = {row.commune_code for row in rows if row.commune_code is not None}
            self._link_communes = communes
            self._links = [(link.scope, link.code, link.chat_id) for link in conn.execute(
                sql.links_with_provinces, {"communes": sorted(communes)})]
            return SubmitFacts(
                drafts={row.pseudonym: _draft(row) for row in rows},
                photo_counts={row.id: int(row.photos) for row in rows},
                banned={row.pseudonym for row in rows if row.banned},
                history=_history(conn, sql, pseudonyms, since),
            )

        return await self._work.run(step)

    async def links(
        self, commune_codes: Iterable[int], province_codes: Iterable[int]
    ) -> list[tuple[str, int, int]]:
        """(scope, code, chat id) of the groups of these communes and provinces."""
        communes, provinces = set(commune_codes), set(province_codes)
        if self._links is None or not communes <= self._link_communes:
            rows = await self._work.run(lambda conn: conn.execute(self._sql.links, {
                "communes": sorted(communes), "provinces": sorted(provinces)}).all())
            return [(row.scope, row.code, row.chat_id) for row in rows]
        return [(scope, code, chat_id) for scope, code, chat_id in self._links
                if (scope == "commune" and code in communes)
                or (scope == "province" and code in provinces)]

    async def insert_tips(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """The tips' (id, code), in the order given."""
        statement = self._sql.insert_tips
        return await self._work.run(
            lambda conn: [(row.id, row.code) for row in conn.execute(statement, rows).all()])

    async def move_photos(self, moves: list[tuple[int, int]]) -> None:
        """(draft id, tip id): the draft's pictures become the tip's."""
        if moves:
            self._queued.append((self._sql.photos_to_tip, [
                {"to_tip": tip_id, "from_draft": draft_id} for draft_id, tip_id in moves]))

    async def insert_reporters(self, rows: list[dict[str, Any]]) -> None:
        self._queued.append((self._sql.insert_reporters, rows))

    async def insert_events(self, rows: list[dict[str, Any]]) -> None:
        self._queued.append((self._sql.insert_events, rows))

    async def insert_outbox(self, rows: list[dict[str, Any]]) -> None:
        self._queued.append((self._sql.insert_outbox, rows))

    async def remember_residents(self, rows: list[dict[str, Any]]) -> None:
        self._queued.append((self._sql.remember_residents, rows))

    async def delete_drafts(self, draft_ids: list[int]) -> None:
        self._queued.append((self._sql.delete_drafts, {"ids": draft_ids}))

    async def flush(self) -> None:
        """The queued writes, then the commit, in one hand-off."""
        queued, self._queued = self._queued, []

        def step(conn: Connection) -> None:
            for statement, parameters in queued:
                if parameters:
                    conn.execute(statement, parameters)

        await self._work.run(step, last=True)


def _captions(conn: Connection, sql: _Statements, draft_id: int) -> tuple[str | None, ...]:
    return tuple(conn.execute(sql.captions, {"draft_id": draft_id}).scalars())
