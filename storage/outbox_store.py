"""The outbox's reads and writes (``bot.domain.outbox.store.OutboxStore`` on the database).

The per-row bookkeeping statements are built once and run with lists of parameters; the
look for due rows is built once too (``now`` and ``limit`` are parameters).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Integer, bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ColumnElement, Exists, Select
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.cards import TipView
from bot.domain.outbox.payloads import OutboxKind
from bot.domain.outbox.store import (
    CardPosted,
    Claimed,
    DueHead,
    LiveCard,
    Mark,
    OutboxRow,
    PhotoData,
    Reporter,
)
from bot.domain.routing import Destination, Router
from storage import repositories as repo
from storage import tables
from storage.db import Database
from storage.models import (
    OutboxMessage,
    Photo,
    RelayMessage,
    Resident,
    Tip,
    TipCard,
    TipEvent,
    TipReporter,
    UTCDateTime,
)

RECEIPT = str(OutboxKind.RECEIPT)
# kinds that wait while other rows are due (tip cards, their edits and notices go first)
LOW_PRIORITY = (str(OutboxKind.DIGEST),)


class _Statements:
    def __init__(self) -> None:
        tips, outbox = tables.tips, tables.outbox
        self.insert_cards = sa.insert(tables.cards)
        links = tables.links
        self.links_for_targets = sa.select(links.c.scope, links.c.code, links.c.chat_id).where(
            sa.or_(
                (links.c.scope == "commune")
                & links.c.code.in_(bindparam("communes", expanding=True)),
                (links.c.scope == "province")
                & links.c.code.in_(bindparam("provinces", expanding=True)),
            ))
        self.insert_events = sa.insert(tables.events)
        self.tip_delivered = sa.update(tips).where(tips.c.id == bindparam("tip")).values(
            delivered_at=bindparam("at"), queue_scope=bindparam("scope"),
            queue_chat_id=bindparam("chat"),
        )
        self.row_progress = sa.update(outbox).where(outbox.c.id == bindparam("row")).values(
            payload=bindparam("payload"), status=bindparam("status"),
            sent_at=bindparam("sent_at"),
        )
        self.mark_rows = (
            sa.update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))
            .values(status=bindparam("status"), sent_at=bindparam("at"))
        )
        self.receipts_sent = (
            sa.update(outbox)
            .where(outbox.c.tip_id.in_(bindparam("tips", expanding=True)),
                   outbox.c.kind == RECEIPT, outbox.c.status == "pending",
                   outbox.c.payload == "{}")  # the tip's own receipt, not a merge answer
            .values(status="sent", sent_at=bindparam("at"))
        )
        self.due_heads = _due_heads_query()
        runs = tables.job_runs
        self.round_delivered = sa.update(runs).where(runs.c.id == bindparam("run")).values(
            status=bindparam("status"), done_at=bindparam("at"))


def _due_heads_query() -> Select[Any, Any, Any, Any]:  # (id, later waiting, urgent, lease owner)
    """Ids of the due rows that are first in their tip's line, whether more of that tip
    wait behind them, the tip's urgency and who held the row's last lease. Receipt rows are
    outside the line: always first, never in anybody's way. Digests (no tip) come after
    every other due row: a burst of cards is not held up by a round's reminders."""
    other = aliased(OutboxMessage)

    def pending_of_same_tip(*where: ColumnElement[bool]) -> Exists:
        return select(other.id).where(
            col(other.tip_id) == col(OutboxMessage.tip_id), col(other.status) == "pending",
            col(other.kind) != RECEIPT, *where,
        ).exists()

    earlier_pending = pending_of_same_tip(col(other.id) < col(OutboxMessage.id))
    later_pending = pending_of_same_tip(col(other.id) > col(OutboxMessage.id))
    return (
        sa.select(col(OutboxMessage.id), later_pending, col(Tip.urgent),
                  col(OutboxMessage.lease_owner))
        .outerjoin(Tip, col(Tip.id) == col(OutboxMessage.tip_id))
        .where(col(OutboxMessage.status) == "pending",
               col(OutboxMessage.next_attempt_at) <= bindparam("now", type_=UTCDateTime),
               sa.or_(col(OutboxMessage.kind) == RECEIPT, ~earlier_pending))
        # digests after everything else due, then urgent tips' rows first, then in order
        .order_by(sa.case((col(OutboxMessage.kind).in_(LOW_PRIORITY), 1), else_=0),
                  col(Tip.urgent).desc(), col(OutboxMessage.id))
        .limit(bindparam("limit", type_=Integer))
    )


_SQL = _Statements()


def _row(message: OutboxMessage) -> OutboxRow:
    assert message.id is not None
    return OutboxRow(id=message.id, kind=message.kind, tip_id=message.tip_id,
                     payload=message.payload, attempts=message.attempts, status=message.status)


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def due_heads(self, now: datetime, limit: int) -> list[DueHead]:
        """Read in one hand-off (``Database.read``): the worker asks after every commit."""

        def step(conn: Connection) -> list[DueHead]:
            heads = conn.execute(_SQL.due_heads, {"now": now, "limit": limit}).all()
            return [DueHead(row_id, bool(later), bool(urgent), owner)
                    for row_id, later, urgent, owner in heads if row_id is not None]

        return await self._db.read(step)

    async def claim(
        self, ids: Sequence[int], *, now: datetime, owner: str, lease_until: datetime,
        urgent_ids: Collection[int], urgent_lease_until: datetime, receipts: Sequence[int],
        needs_route: Callable[[OutboxRow], bool], router: Router,
    ) -> list[Claimed]:
        """One ``UPDATE … RETURNING`` that re-checks each row (a row claimed meanwhile by
        another worker is skipped), the tips of the claimed rows, and where new cards go,
        in one transaction."""
        until: Any = lease_until
        if urgent_ids:
            until = sa.case(
                (col(OutboxMessage.id).in_(list(urgent_ids)),
                 sa.literal(urgent_lease_until, UTCDateTime)),
                else_=sa.literal(lease_until, UTCDateTime),
            )

        def step(conn: Connection) -> list[Claimed]:
            with Session(bind=conn, expire_on_commit=False) as session:
                messages = session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(ids),
                           col(OutboxMessage.status) == "pending",
                           col(OutboxMessage.next_attempt_at) <= now)
                    .values(next_attempt_at=until, attempts=OutboxMessage.attempts + 1,
                            lease_owner=owner)
                    .returning(OutboxMessage)
                    .execution_options(synchronize_session=False),
                ).scalars().all()
                order = {row_id: position for position, row_id in enumerate(ids)}
                rows = [_row(m) for m in sorted(messages, key=lambda m: order[m.id or 0])]
                tip_ids = {row.tip_id for row in rows if row.tip_id is not None}
                tips: dict[int | None, Tip] = {tip.id: tip for tip in session.exec(
                    select(Tip).where(col(Tip.id).in_(tip_ids))
                ).all()} if tip_ids else {}
            routed = [row for row in rows if row.tip_id in tips and needs_route(row)]
            places = [(tips[row.tip_id].commune_code, tips[row.tip_id].province_code)
                      for row in routed]
            destinations: dict[int, Destination] = dict(zip(
                (row.id for row in routed),
                _destinations(conn, router, places) if places else [],
                strict=True,
            ))
            _mark_receipts(conn, receipts, now)
            return [Claimed(row, tips.get(row.tip_id), destinations.get(row.id)) for row in rows]

        async with self._db.work() as work:
            return await work.run(step, last=True)

    async def take_back_leases(self, *, node: str, owner: str, now: datetime) -> int:
        async with self._db.transaction() as session:
            result = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == "pending",
                       col(OutboxMessage.lease_owner).startswith(f"{node}#", autoescape=True),
                       col(OutboxMessage.lease_owner) != owner,
                       col(OutboxMessage.next_attempt_at) > now)
                .values(next_attempt_at=now)
            )
            return int(result.rowcount or 0)

    async def reschedule(
        self, row_id: int, *, due: datetime, error: str, payload: str | None
    ) -> None:
        values: dict[str, Any] = {"next_attempt_at": due, "last_error": error[:300],
                                  "lease_owner": None}
        if payload is not None:
            values["payload"] = payload
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row_id).values(**values)
            )

    async def save_payload(self, row_id: int, payload: str) -> None:
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row_id)
                .values(payload=payload)
            )

    async def write_marks(
        self, marks: Sequence[Mark], *, now: datetime, receipts: Sequence[int]
    ) -> None:
        def step(conn: Connection) -> None:
            for status in sorted({mark.status for mark in marks}):
                conn.execute(_SQL.mark_rows, {
                    "ids": [m.row_id for m in marks if m.status == status],
                    "status": status, "at": now,
                })
            _mark_receipts(conn, receipts, now)

        async with self._db.work() as work:
            await work.run(step, last=True)

    async def write_cards_posted(
        self, posted: Sequence[CardPosted], *, now: datetime, receipts: Sequence[int]
    ) -> None:
        """The card's message id, the tip's queue, the audit event and the row's progress."""
        def step(conn: Connection) -> None:
            conn.execute(_SQL.insert_cards, [
                {"tip_id": card.tip_id, "chat_id": card.chat_id,
                 "message_id": card.message_id, "active": True, "created_at": now}
                for card in posted
            ])
            conn.execute(_SQL.insert_events, [
                {"tip_id": card.tip_id, "actor_kind": "system", "event": "delivered",
                 "at": now, "details": json.dumps({"queue": card.scope})}
                for card in posted
            ])
            conn.execute(_SQL.tip_delivered, [
                {"tip": card.tip_id, "at": now, "scope": card.scope, "chat": card.chat_id}
                for card in posted
            ])
            conn.execute(_SQL.row_progress, [
                {"row": card.row_id, "payload": card.payload,
                 "status": "sent" if card.finished else "pending",
                 "sent_at": now if card.finished else None}
                for card in posted
            ])
            _mark_receipts(conn, receipts, now)

        async with self._db.work() as work:
            await work.run(step, last=True)

    async def mark_receipts(self, receipts: Sequence[int], *, now: datetime) -> None:
        async with self._db.work() as work:
            await work.run(lambda conn: _mark_receipts(conn, receipts, now), last=True)

    async def receipt_due(self, tip_id: int, *, due: datetime) -> None:
        """The tip's receipt row, if not being sent, is due at ``due`` (not later)."""
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.tip_id) == tip_id,
                       col(OutboxMessage.kind) == RECEIPT,
                       col(OutboxMessage.status) == "pending",
                       col(OutboxMessage.lease_owner).is_(None),
                       col(OutboxMessage.next_attempt_at) > due)
                .values(next_attempt_at=due)
            )

    async def add_row(self, kind: str, tip_id: int, payload: str, *, due: datetime) -> None:
        async with self._db.transaction() as session:
            session.add(OutboxMessage(kind=kind, tip_id=tip_id, next_attempt_at=due,
                                      payload=payload))

    async def add_event(self, tip_id: int, event: str, details: dict[str, Any]) -> None:
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=tip_id, actor_kind="system", event=event,
                                 details=json.dumps(details)))

    async def tip(self, tip_id: int) -> TipView | None:
        async with self._db.session() as session:
            return await session.get(Tip, tip_id)

    async def transfer_origin(self, tip_id: int) -> int | None:
        """The commune the tip was last transferred from (its last "transfer" event)."""
        async with self._db.session() as session:
            details = (await session.exec(
                select(TipEvent.details).where(
                    TipEvent.tip_id == tip_id, TipEvent.event == "transfer"
                ).order_by(col(TipEvent.id).desc()).limit(1)
            )).first()
        origin = json.loads(details or "{}").get("from_commune")
        return origin if isinstance(origin, int) else None

    async def card_material(
        self, tip_id: int, *, router: Router | None, skip_chat_ids: frozenset[int],
        province_only: bool,
    ) -> tuple[TipView, Destination | None, list[PhotoData]]:
        """The tip, where its card goes (when ``router`` is given) and its photos in order."""
        async with self._db.session() as session:
            tip = await session.get(Tip, tip_id)
            assert tip is not None and tip.id is not None
            destination = None
            if router is not None:
                [destination] = await destinations_for(
                    session, router, [(tip.commune_code, tip.province_code)],
                    skip_chat_ids=skip_chat_ids, province_only=province_only,
                )
            photos = (await session.exec(
                select(Photo).where(col(Photo.tip_id) == tip.id).order_by(col(Photo.position))
            )).all() if tip.photo_count else []
        return tip, destination, [PhotoData(p.data, p.caption) for p in photos]

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        async with self._db.transaction() as session:
            if await repo.link_by_chat(session, chat_id=new_chat_id) is None:
                await repo.move_link_chat(
                    session, old_chat_id=old_chat_id, new_chat_id=new_chat_id
                )

    async def rerouted(self, tip_id: int, gone_chat_id: int | None) -> None:
        """A card already posted in a gone group is no longer the live one (one queue per
        tip); audited."""
        async with self._db.transaction() as session:
            await session.exec(
                update(TipCard)
                .where(col(TipCard.tip_id) == tip_id, col(TipCard.chat_id) == gone_chat_id)
                .values(active=False)
            )
            session.add(TipEvent(tip_id=tip_id, actor_kind="system",
                                 event="delivery_rerouted",
                                 details=json.dumps({"gone": gone_chat_id})))

    async def live_cards(self, tip_id: int) -> list[LiveCard]:
        async with self._db.session() as session:
            cards = (await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, col(TipCard.active).is_(True)
            ))).all()
        return [LiveCard(card.id, card.chat_id, card.message_id)
                for card in cards if card.id is not None]

    async def reporter(self, tip_id: int) -> tuple[TipView | None, Reporter | None]:
        async with self._db.session() as session:
            tip = await session.get(Tip, tip_id)
            link = await session.get(TipReporter, tip_id)
            if link is None:
                return tip, None
            resident = await session.get(Resident, link.pseudonym)
        language = resident.language if resident is not None else None
        return tip, Reporter(link.pseudonym, link.sealed_chat, language or None)

    async def reporter_notified(
        self, tip_id: int, *, notice: str, question_to: tuple[str, int] | None
    ) -> None:
        """Audited; a question remembers its message, so a reply to it is the answer."""
        async with self._db.transaction() as session:
            if question_to is not None:
                pseudonym, message_id = question_to
                session.add(RelayMessage(tip_id=tip_id, side="reporter", key=pseudonym,
                                         message_id=message_id, purpose="question"))
            session.add(TipEvent(tip_id=tip_id, actor_kind="system", event="reporter_notified",
                                 details=json.dumps({"notice": notice})))

    async def reporter_unreachable(
        self, tip_id: int, row_id: int, *, why: str, payload: str
    ) -> None:
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=tip_id, actor_kind="system",
                                 event="reporter_unreachable", details=json.dumps({"why": why})))
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row_id)
                .values(payload=payload)
            )

    async def round_delivered(self, run_id: int, *, status: str, at: datetime) -> None:
        async with self._db.transaction() as session:
            await (await session.connection()).execute(
                _SQL.round_delivered, {"run": run_id, "status": status, "at": at})

    async def relay_material(
        self, tip_id: int, photo_ids: Sequence[int]
    ) -> tuple[TipView | None, list[PhotoData]]:
        async with self._db.session() as session:
            tip = await session.get(Tip, tip_id)
            photos = (await session.exec(
                select(Photo).where(col(Photo.id).in_(list(photo_ids)))
                .order_by(col(Photo.position))
            )).all() if photo_ids else []
        return tip, [PhotoData(p.data) for p in photos]


def _mark_receipts(conn: Connection, receipts: Sequence[int], now: datetime) -> None:
    if receipts:
        conn.execute(_SQL.receipts_sent, {"tips": list(receipts), "at": now})


def _destinations(
    conn: Connection, router: Router, places: Sequence[tuple[int, int]]
) -> list[Destination]:
    """``destinations_for`` inside a unit of work (``Database.work``)."""
    links = conn.execute(_SQL.links_for_targets, {
        "communes": list({commune for commune, _ in places}),
        "provinces": list({province for _, province in places}),
    }).all()
    return router.choose(places, [(link.scope, link.code, link.chat_id) for link in links])


async def destinations_for(
    session: AsyncSession, router: Router, places: Sequence[tuple[int, int]], *,
    skip_chat_ids: frozenset[int] = frozenset(), province_only: bool = False,
) -> list[Destination]:
    """Where each (commune code, province code) goes: the linked groups read in one query,
    the choice made by the routing rule (``Router.choose``)."""
    links = await repo.links_for_targets(
        session,
        commune_codes=set() if province_only else {commune for commune, _ in places},
        province_codes={province for _, province in places},
    )
    return router.choose(places, [(link.scope, link.code, link.chat_id) for link in links],
                         skip_chat_ids=skip_chat_ids, province_only=province_only)

