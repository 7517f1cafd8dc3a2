"""Triage's reads and writes: tips, cards, audit events, prompts, reporters' links. Plain SQL
built once, run on a connection; rows come back as ``bot.domain.records``. Which change is
allowed, and who may make it, is decided in ``bot.domain.triage``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.records import EventRecord, PictureRecord, PromptRecord, TipRecord
from storage.db import Database
from storage.models import (
    UTCDateTime,
    utcnow,
)
from storage.tables import cards as _cards
from storage.tables import events as _events
from storage.tables import links as _links
from storage.tables import outbox as _outbox
from storage.tables import photos as _photos
from storage.tables import relay as _relay
from storage.tables import reporters as _reporters
from storage.tables import tips as _tips

_TIP_FIELDS = TipRecord.__dataclass_fields__
_EVENT_FIELDS = EventRecord.__dataclass_fields__
_PROMPT_FIELDS = PromptRecord.__dataclass_fields__


def tip_record(row: Any) -> TipRecord:
    return TipRecord(**{name: getattr(row, name) for name in _TIP_FIELDS})


def _event(row: Any) -> EventRecord:
    return EventRecord(**{name: getattr(row, name) for name in _EVENT_FIELDS})


def _prompt(row: Any) -> PromptRecord:
    return PromptRecord(**{name: getattr(row, name) for name in _PROMPT_FIELDS})


class _Statements:
    def __init__(self) -> None:
        p = sa.bindparam
        tip_columns = [_tips.c[name] for name in _TIP_FIELDS]
        self.tip = sa.select(*tip_columns).where(_tips.c.id == p("tip_id"))
        self.tip_by_code = sa.select(*tip_columns).where(_tips.c.code == p("code"))
        self.events = sa.select(*[_events.c[n] for n in _EVENT_FIELDS]).where(
            _events.c.tip_id == p("tip_id")).order_by(_events.c.id)
        self.link_of_chat = sa.select(_links.c.scope, _links.c.code).where(
            _links.c.chat_id == p("chat_id"))
        self.chat_of_target = sa.select(_links.c.chat_id).where(
            _links.c.scope == p("scope"), _links.c.code == p("code"))
        open_tips = sa.select(*tip_columns).where(
            _tips.c.status.in_(p("statuses", expanding=True))
        ).order_by(_tips.c.urgent.desc(), _tips.c.created_at)
        self.queue_of_commune = open_tips.where(_tips.c.commune_code == p("code"))
        self.queue_of_province = open_tips.where(_tips.c.province_code == p("code"))
        live_card = (_cards.c.tip_id == p("tip_id")) & (_cards.c.chat_id == p("chat_id")) \
            & _cards.c.active.is_(True)
        self.active_card = sa.select(_cards.c.id).where(
            live_card, _cards.c.message_id == p("message_id")).limit(1)
        self.active_card_in = sa.select(_cards.c.id).where(live_card).limit(1)
        self.card_tip = sa.select(*tip_columns).join(_cards, _cards.c.tip_id == _tips.c.id).where(
            _cards.c.chat_id == p("chat_id"), _cards.c.message_id == p("message_id"),
            _cards.c.active.is_(True)).limit(1)
        self.active_cards = sa.select(_cards.c.chat_id, _cards.c.message_id).where(
            _cards.c.tip_id == p("tip_id"), _cards.c.active.is_(True)).order_by(_cards.c.id)
        self.retire_cards = sa.update(_cards).where(
            _cards.c.tip_id == p("b_tip_id"), _cards.c.active.is_(True)).values(active=False)
        # the SET columns are the parameters given (besides tip_id and sources)
        guarded = sa.update(_tips).where(
            _tips.c.id == p("tip_id"), _tips.c.status.in_(p("sources", expanding=True)))
        self.guarded_update = guarded
        # a settlement deadline change: only from the deadline read, and only once
        unchanged = guarded.where(_tips.c.settle_due_at == p("was", type_=UTCDateTime))
        self.deadline_updates = {
            "complex_at": unchanged.where(_tips.c.complex_at.is_(None)),
            "extended_at": unchanged.where(_tips.c.extended_at.is_(None)),
        }
        self.guarded_transfer = guarded.values(transfers=_tips.c.transfers + 1)
        self.purge_after = sa.update(_reporters).where(
            _reporters.c.tip_id == p("b_tip_id")).values(purge_after=p("when", type_=UTCDateTime))
        self.insert_event = sa.insert(_events)
        self.insert_outbox = sa.insert(_outbox)
        self.insert_card = sa.insert(_cards)
        self.insert_prompt = sa.insert(_relay)
        self.insert_photo = sa.insert(_photos).returning(_photos.c.id)
        self.prompt = sa.select(*[_relay.c[n] for n in _PROMPT_FIELDS]).where(
            _relay.c.side == "group", _relay.c.key == p("key"),
            _relay.c.message_id == p("message_id"))
        self.consume_prompt = sa.delete(_relay).where(_relay.c.id == p("prompt_id"))
        self.question_for_reply = sa.select(_tips.c.id, _tips.c.code).join(
            _relay, _relay.c.tip_id == _tips.c.id).where(
            _relay.c.side == "reporter", _relay.c.key == p("pseudonym"),
            _relay.c.message_id == p("message_id")).limit(1)
        self.own_tip = sa.select(_tips.c.id, _tips.c.code).join(
            _reporters, _reporters.c.tip_id == _tips.c.id).where(
            _tips.c.code == p("code"), _reporters.c.pseudonym == p("pseudonym")).limit(1)
        self.pictures = sa.select(
            _photos.c.data, _photos.c.width, _photos.c.height, _photos.c.caption,
        ).where(_photos.c.tip_id == p("tip_id"), _photos.c.position < p("below")).order_by(
            _photos.c.position, _photos.c.id)


_SQL = _Statements()


class TriageStore:
    """For ``bot.domain.triage.TriageService``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._db.engine.connect() as conn:
            yield conn

    async def _one(self, statement: Any, params: dict[str, Any]) -> Any:
        async with self._reading() as conn:
            return (await conn.execute(statement, params)).first()

    # --- reads -------------------------------------------------------------------------------

    async def tip(self, tip_id: int) -> TipRecord | None:
        row = await self._one(_SQL.tip, {"tip_id": tip_id})
        return tip_record(row) if row is not None else None

    async def tip_by_code(self, code: str) -> TipRecord | None:
        row = await self._one(_SQL.tip_by_code, {"code": code})
        return tip_record(row) if row is not None else None

    async def events(self, tip_id: int) -> list[EventRecord]:
        async with self._reading() as conn:
            return [_event(r) for r in await conn.execute(_SQL.events, {"tip_id": tip_id})]

    async def link_of_chat(self, chat_id: int) -> tuple[str, int] | None:
        """(scope, code) this group serves, if linked."""
        row = await self._one(_SQL.link_of_chat, {"chat_id": chat_id})
        return (row.scope, row.code) if row is not None else None

    async def chats_of_targets(self, targets: Collection[tuple[str, int]]) -> list[int]:
        """The groups linked to these (scope, code) targets."""
        async with self._reading() as conn:
            chats = []
            for scope, code in targets:
                found = (await conn.execute(_SQL.chat_of_target,
                                            {"scope": scope, "code": code})).scalar()
                if found is not None:
                    chats.append(int(found))
            return chats

    async def open_tips(
        self, scope: str, code: int, statuses: Collection[str]
    ) -> list[TipRecord]:
        """Open tips of a commune (or a province), urgent first, then oldest first."""
        statement = _SQL.queue_of_commune if scope == "commune" else _SQL.queue_of_province
        async with self._reading() as conn:
            return [tip_record(r) for r in await conn.execute(
                statement, {"code": code, "statuses": list(statuses)})]

    async def active_card(self, tip_id: int, chat_id: int, message_id: int) -> bool:
        return await self._one(_SQL.active_card, {
            "tip_id": tip_id, "chat_id": chat_id, "message_id": message_id}) is not None

    async def has_active_card_in(self, tip_id: int, chat_id: int) -> bool:
        return await self._one(_SQL.active_card_in,
                               {"tip_id": tip_id, "chat_id": chat_id}) is not None

    async def card_tip(self, chat_id: int, message_id: int) -> TipRecord | None:
        row = await self._one(_SQL.card_tip, {"chat_id": chat_id, "message_id": message_id})
        return tip_record(row) if row is not None else None

    async def prompt(self, chat_id: int, message_id: int) -> PromptRecord | None:
        row = await self._one(_SQL.prompt, {"key": str(chat_id), "message_id": message_id})
        return _prompt(row) if row is not None else None

    async def question_for_reply(self, pseudonym: str, message_id: int) -> tuple[int, str] | None:
        row = await self._one(_SQL.question_for_reply,
                              {"pseudonym": pseudonym, "message_id": message_id})
        return (row.id, row.code) if row is not None else None

    async def own_tip(self, pseudonym: str, code: str) -> tuple[int, str] | None:
        row = await self._one(_SQL.own_tip, {"pseudonym": pseudonym, "code": code})
        return (row.id, row.code) if row is not None else None

    async def pictures(self, tip_id: int, *, below_position: int) -> list[PictureRecord]:
        """The tip's own pictures (positions below ``below_position``), in order."""
        async with self._reading() as conn:
            return [PictureRecord(r.data, r.width, r.height, r.caption)
                    for r in await conn.execute(
                        _SQL.pictures, {"tip_id": tip_id, "below": below_position})]

    # --- writes ------------------------------------------------------------------------------

    @asynccontextmanager
    async def changing(self) -> AsyncIterator[TriageUnit]:
        """One write transaction; an exception rolls it back."""
        async with self._db.transaction() as session:
            yield TriageUnit(await session.connection())

    async def consume_prompt(self, prompt_id: int) -> bool:
        async with self.changing() as unit:
            return await unit.consume_prompt(prompt_id)


class TriageUnit:
    """The statements of one triage transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def tip(self, tip_id: int) -> TipRecord | None:
        row = (await self._conn.execute(_SQL.tip, {"tip_id": tip_id})).first()
        return tip_record(row) if row is not None else None

    async def guarded_update(
        self, tip_id: int, sources: Collection[str], values: dict[str, Any], *,
        count_transfer: bool = False,
    ) -> bool:
        """Set ``values`` if the tip's status is one of ``sources``: True if it was."""
        statement = _SQL.guarded_transfer if count_transfer else _SQL.guarded_update
        result = await self._conn.execute(
            statement, {"tip_id": tip_id, "sources": list(sources), **values})
        return bool(result.rowcount == 1)

    async def guarded_deadline(
        self, tip_id: int, sources: Collection[str], values: dict[str, Any], *,
        was: datetime, once: str,
    ) -> bool:
        """Set ``values`` if the tip's status is one of ``sources``, its settlement deadline
        is still ``was`` and its column ``once`` (complex_at | extended_at) is still empty:
        True if it was (two officers at once: one wins)."""
        result = await self._conn.execute(_SQL.deadline_updates[once], {
            "tip_id": tip_id, "sources": list(sources), "was": was, **values})
        return bool(result.rowcount == 1)

    async def retire_cards(self, tip_id: int) -> list[tuple[int, int]]:
        """The tip's live cards as (chat id, message id), now retired."""
        cards = [(r.chat_id, r.message_id) for r in await self._conn.execute(
            _SQL.active_cards, {"tip_id": tip_id})]
        if cards:
            await self._conn.execute(_SQL.retire_cards, {"b_tip_id": tip_id})
        return cards

    async def add_event(
        self, tip_id: int, event: str, *, actor_kind: str, actor_id: int | None = None,
        actor_name: str | None = None, details: str | None = None, at: datetime | None = None,
    ) -> None:
        await self._conn.execute(_SQL.insert_event, {
            "tip_id": tip_id, "event": event, "actor_kind": actor_kind, "actor_id": actor_id,
            "actor_name": actor_name, "details": details, "at": at or utcnow()})

    async def add_outbox(self, kind: str, tip_id: int, payload: str = "{}") -> None:
        now = utcnow()
        await self._conn.execute(_SQL.insert_outbox, {
            "kind": kind, "tip_id": tip_id, "payload": payload, "status": "pending",
            "attempts": 0, "next_attempt_at": now, "created_at": now})

    async def purge_reporter_after(self, tip_id: int, when: datetime) -> None:
        await self._conn.execute(_SQL.purge_after, {"b_tip_id": tip_id, "when": when})

    async def add_card(self, tip_id: int, chat_id: int, message_id: int) -> None:
        await self._conn.execute(_SQL.insert_card, {
            "tip_id": tip_id, "chat_id": chat_id, "message_id": message_id, "active": True,
            "created_at": utcnow()})

    async def add_prompt(
        self, tip_id: int, *, side: str, key: str, message_id: int, purpose: str,
        officer_id: int | None,
    ) -> None:
        await self._conn.execute(_SQL.insert_prompt, {
            "tip_id": tip_id, "side": side, "key": key, "message_id": message_id,
            "purpose": purpose, "officer_id": officer_id, "created_at": utcnow()})

    async def consume_prompt(self, prompt_id: int) -> bool:
        result = await self._conn.execute(_SQL.consume_prompt, {"prompt_id": prompt_id})
        return bool(result.rowcount == 1)

    async def add_photo(self, tip_id: int, *, position: int, data: bytes, width: int,
                        height: int) -> int:
        return int((await self._conn.execute(_SQL.insert_photo, {
            "tip_id": tip_id, "draft_id": None, "position": position, "data": data,
            "width": width, "height": height, "caption": None, "created_at": utcnow(),
        })).scalar_one())
