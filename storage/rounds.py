"""The rounds' ledger (``job_runs``) and what reminders and escalations read and write:
plain SQL built once, rows as ``bot.domain.reminders.DueTip``.

A round is claimed in one transaction with its digests' outbox rows
(``bot.domain.rounds.RoundsStorage.claim_round``); the unique key
``(job, scope, round_key)`` makes a second claim fail as a whole.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.domain.outbox.payloads import CardRefreshPayload, DigestPayload, OutboxKind
from bot.domain.reminders import DueTip
from bot.domain.rounds import ROUND_SCOPE, Digest, Group
from bot.domain.status import OPEN_STATUSES, TipStatus
from storage.db import Database
from storage.models import UTCDateTime, utcnow
from storage.tables import job_runs as _runs
from storage.tables import links as _links
from storage.tables import outbox as _outbox
from storage.tables import tips as _tips

_FIELDS = DueTip.__dataclass_fields__
_OPEN = sorted(str(status) for status in OPEN_STATUSES)
_NEW = str(TipStatus.NEW)


def _due_tip(row: Any) -> DueTip:
    return DueTip(*row)  # the columns are selected in the record's field order


def _at(name: str) -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UTCDateTime)


class _Statements:
    def __init__(self) -> None:
        p = sa.bindparam
        self.columns = [_tips.c[name] for name in _FIELDS]
        self.done_keys = sa.select(_runs.c.round_key).where(
            _runs.c.job == p("job"), _runs.c.scope == ROUND_SCOPE,
            _runs.c.round_key.in_(p("keys", expanding=True)))
        self.insert_runs = sa.insert(_runs)
        self.insert_group_runs = sa.insert(_runs).returning(
            _runs.c.id, _runs.c.scope, sort_by_parameter_order=True)
        self.insert_outbox = sa.insert(_outbox)
        told = _tips.c.escalated_at
        ack_missed = sa.and_(_tips.c.status == _NEW, _tips.c.ack_due_at <= _at("now"),
                             sa.or_(told.is_(None), told < _tips.c.ack_due_at))
        settle_missed = sa.and_(_tips.c.status.in_(_OPEN), _tips.c.settle_due_at <= _at("now"),
                                sa.or_(told.is_(None), told < _tips.c.settle_due_at))
        self.escalated = sa.update(_tips).where(
            _tips.c.id.in_(p("ids", expanding=True))).values(escalated_at=_at("now"))
        self.escalation = sa.select(*self.columns).where(sa.or_(ack_missed, settle_missed))
        self.province_chats = sa.select(_links.c.code, _links.c.chat_id).where(
            _links.c.scope == "province", _links.c.code.in_(p("codes", expanding=True)))
        self.groups = sa.select(_links.c.chat_id, _links.c.scope, _links.c.code).order_by(
            _links.c.id)
        marked = _tips.c.overdue_marked_at
        needs_mark = sa.or_(
            sa.and_(_tips.c.status == _NEW, _tips.c.ack_due_at <= _at("now"),
                    sa.or_(marked.is_(None), marked < _tips.c.ack_due_at)),
            sa.and_(_tips.c.status.in_(_OPEN), _tips.c.settle_due_at <= _at("now"),
                    sa.or_(marked.is_(None), marked < _tips.c.settle_due_at)),
        )
        self.mark_overdue = (
            sa.update(_tips).where(needs_mark).values(overdue_marked_at=_at("now"))
            .returning(_tips.c.id))

    @functools.lru_cache(maxsize=8)  # noqa: B019 (one instance, a few range counts)
    def reminders(self, settle_ranges: int) -> sa.Select[Any]:
        """Open tips that may have a reminder point in a window, for this many settlement
        ranges (parameters ``lo0``, ``hi0``, ...)."""
        ack = sa.and_(_tips.c.status == _NEW, _tips.c.ack_due_at > _at("now"),
                      _tips.c.created_at < _at("created_before"))
        settle = [sa.and_(_tips.c.settle_due_at >= _at(f"lo{i}"),
                          _tips.c.settle_due_at < _at(f"hi{i}"))
                  for i in range(settle_ranges)]
        conditions = [ack]
        if settle:
            conditions.append(sa.and_(_tips.c.status.in_(_OPEN),
                                      _tips.c.settle_due_at > _at("now"), sa.or_(*settle)))
        return sa.select(*self.columns).where(sa.or_(*conditions))


_SQL = _Statements()


class RoundsStore:
    """``RoundsStorage`` (the ledger) and ``ReminderStorage`` on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the ledger ----------------------------------------------------------------------

    async def done_keys(self, job: str, keys: Sequence[str]) -> set[str]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_SQL.done_keys, {"job": job, "keys": list(keys)})
            return {row.round_key for row in rows}

    async def claim_round(
        self, job: str, keys: Sequence[str], digests: Sequence[Digest], *, now: datetime
    ) -> bool:
        queued = utcnow()  # the outbox's own time: due at once, whatever the rounds' clock
        try:
            async with self._db.transaction() as session:
                conn = await session.connection()
                await conn.execute(_SQL.insert_runs, [
                    {"job": job, "scope": ROUND_SCOPE, "round_key": key, "status": "done",
                     "created_at": now, "done_at": now} for key in keys])
                if not digests:
                    return True
                runs = (await conn.execute(_SQL.insert_group_runs, [
                    {"job": job, "scope": digest.scope, "round_key": keys[-1],
                     "status": "pending", "created_at": now, "done_at": None}
                    for digest in digests])).all()
                await conn.execute(_SQL.insert_outbox, [
                    {"kind": str(OutboxKind.DIGEST), "tip_id": None,
                     "payload": DigestPayload(digest.chat_id, digest.parts, run=run.id).to_json(),
                     "status": "pending", "attempts": 0, "next_attempt_at": queued,
                     "created_at": queued}
                    for digest, run in zip(digests, runs, strict=True)])
                escalated = sorted({tip for digest in digests for tip in digest.escalates})
                if escalated:
                    await conn.execute(_SQL.escalated, {"ids": escalated, "now": now})
        except IntegrityError:
            return False
        return True

    async def linked_groups(self) -> list[Group]:
        """Every linked police group (a per-group round such as the morning summary)."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_SQL.groups)
            return [Group(row.chat_id, row.scope, row.code) for row in rows]

    # --- reminders and escalations -------------------------------------------------------

    async def reminder_candidates(
        self, *, now: datetime, created_before: datetime,
        settle_ranges: Sequence[tuple[datetime, datetime]],
    ) -> list[DueTip]:
        params: dict[str, Any] = {"now": now, "created_before": created_before}
        for i, (low, high) in enumerate(settle_ranges):
            params |= {f"lo{i}": low, f"hi{i}": high}
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_SQL.reminders(len(settle_ranges)), params)
            return [_due_tip(row) for row in rows]

    async def escalation_candidates(self, *, now: datetime) -> list[DueTip]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_SQL.escalation, {"now": now})
            return [_due_tip(row) for row in rows]

    async def province_chats(self, province_codes: Sequence[int]) -> dict[int, int]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(_SQL.province_chats, {"codes": list(province_codes)})
            return {row.code: row.chat_id for row in rows}

    async def mark_overdue(self, now: datetime) -> int:
        queued = utcnow()
        async with self._db.transaction() as session:
            conn = await session.connection()
            marked = [row.id for row in await conn.execute(_SQL.mark_overdue, {"now": now})]
            if marked:
                await conn.execute(_SQL.insert_outbox, [
                    {"kind": str(OutboxKind.CARD_REFRESH), "tip_id": tip_id,
                     "payload": CardRefreshPayload().to_json(), "status": "pending",
                     "attempts": 0, "next_attempt_at": queued, "created_at": queued}
                    for tip_id in marked])
        return len(marked)
