"""Police triage: the status model, who may act, and every change as one guarded update.

The allowed transitions are a table (``TRANSITIONS``). A change is one
``UPDATE tips SET ... WHERE id = :id AND status IN (:allowed)`` plus its audit row in the same
transaction, so when two officers press "Tiếp nhận" together exactly one wins and the other
is told who did. Card refreshes and messages to the reporter go through the outbox.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.communes import CommuneDirectory
from bot.domain.outbox.payloads import (
    CardRefreshPayload,
    CardRetirePayload,
    GroupRelayPayload,
    NoticeKind,
    Payload,
    ReporterNoticePayload,
    TipCardPayload,
)
from bot.domain.receipts import normalise_code
from bot.domain.status import INVALID_REASONS, OPEN_STATUSES, OUTCOMES, TRANSITIONS, Action
from storage import repositories as repo
from storage.db import Database
from storage.models import (
    OutboxMessage,
    Photo,
    RelayMessage,
    Tip,
    TipCard,
    TipEvent,
    TipReporter,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Officer:
    """The person pressing: police side, identified for accountability."""

    id: int
    name: str


class Membership(Protocol):
    async def is_member(self, chat_id: int, user_id: int) -> bool: ...


class TriageError(Exception):
    """``reason``: not_found | stale | forbidden | conflict | bad_choice | closed."""

    def __init__(self, reason: str, tip: Tip | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tip = tip


@dataclass(frozen=True, slots=True)
class ReporterAnswer:
    tip_id: int
    code: str


class TriageService:
    def __init__(
        self,
        db: Database,
        directory: CommuneDirectory,
        membership: Membership,
        *,
        admin_ids: frozenset[int],
        retention: timedelta,
    ) -> None:
        self._db = db
        self._directory = directory
        self._membership = membership
        self._admin_ids = admin_ids
        self._retention = retention

    # --- reading -----------------------------------------------------------------------------

    async def tip(self, tip_id: int) -> Tip:
        async with self._db.session() as session:
            tip = await session.get(Tip, tip_id)
        if tip is None:
            raise TriageError("not_found")
        return tip

    async def tip_by_code(self, typed: str) -> Tip | None:
        code = normalise_code(typed)
        if code is None:
            return None
        async with self._db.session() as session:
            return (await session.exec(select(Tip).where(Tip.code == code))).first()

    async def history(self, tip_id: int) -> list[TipEvent]:
        async with self._db.session() as session:
            return list((await session.exec(
                select(TipEvent).where(TipEvent.tip_id == tip_id).order_by(col(TipEvent.id))
            )).all())

    async def queue(self, chat_id: int) -> list[Tip]:
        """Open tips owned by the commune or province this group serves: urgent first,
        then oldest first."""
        async with self._db.session() as session:
            link = await repo.link_by_chat(session, chat_id=chat_id)
            if link is None:
                return []
            query = select(Tip).where(col(Tip.status).in_(OPEN_STATUSES))
            if link.scope == "commune":
                query = query.where(Tip.commune_code == link.code)
            else:
                query = query.where(Tip.province_code == link.code)
            query = query.order_by(col(Tip.urgent).desc(), col(Tip.created_at))
            return list((await session.exec(query)).all())

    async def active_card(self, tip_id: int, chat_id: int, message_id: int) -> bool:
        async with self._db.session() as session:
            card = (await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, TipCard.chat_id == chat_id,
                TipCard.message_id == message_id, col(TipCard.active).is_(True),
            ))).first()
        return card is not None

    async def has_active_card_in(self, tip_id: int, chat_id: int) -> bool:
        async with self._db.session() as session:
            card = (await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, TipCard.chat_id == chat_id,
                col(TipCard.active).is_(True),
            ))).first()
        return card is not None

    async def card_tip(self, chat_id: int, message_id: int) -> Tip | None:
        """The tip whose active card (or card photo) this group message is."""
        async with self._db.session() as session:
            row = (await session.exec(
                select(Tip).join(TipCard, col(TipCard.tip_id) == col(Tip.id)).where(
                    TipCard.chat_id == chat_id, TipCard.message_id == message_id,
                    col(TipCard.active).is_(True),
                )
            )).first()
        return row

    # --- who may act ---------------------------------------------------------------------

    async def may_act(self, tip: Tip, user_id: int) -> bool:
        """Admins; members of the group of the tip's commune; members of its province group."""
        if user_id in self._admin_ids:
            return True
        async with self._db.session() as session:
            links = [
                await repo.link_by_target(session, scope="commune", code=tip.commune_code),
                await repo.link_by_target(session, scope="province", code=tip.province_code),
            ]
        for link in links:
            if link is not None and await self._membership.is_member(link.chat_id, user_id):
                return True
        return False

    async def can_see_in(self, tip: Tip, chat_id: int) -> bool:
        """A group may see a tip of its commune or province (no cross-commune leaks)."""
        async with self._db.session() as session:
            link = await repo.link_by_chat(session, chat_id=chat_id)
        if link is None:
            return False
        if link.scope == "commune":
            return link.code == tip.commune_code
        return link.code == tip.province_code

    async def record_refusal(self, tip_id: int, action: str) -> None:
        """A refused attempt: audited and logged without the presser's identity."""
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=tip_id, actor_kind="unknown", event="refused",
                                 details=json.dumps({"action": action})))
        log.info("triage action refused", extra={"tip_id": tip_id, "event": action})

    # --- changes ---------------------------------------------------------------------------

    async def act(
        self, tip_id: int, action: Action, officer: Officer, *, choice: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Tip:
        """One guarded status change with its audit row, card refresh and reporter notice."""
        if action in (Action.TRANSFER, Action.ASK):
            raise ValueError("use transfer() / ask()")
        if action == Action.DONE and choice not in OUTCOMES:
            raise TriageError("bad_choice")
        if action == Action.INVALID and choice not in INVALID_REASONS:
            raise TriageError("bad_choice")
        sources, target = TRANSITIONS[action]
        assert target is not None
        now = utcnow()
        values: dict[str, Any] = {"status": target, "updated_at": now}
        if action == Action.ACK:
            values |= {"owner_id": officer.id, "owner_name": officer.name, "acknowledged_at": now}
        if action in (Action.DONE, Action.INVALID):
            values |= {"closed_at": now, "outcome": choice}
        async with self._db.transaction() as session:
            changed = await self._guarded_update(session, tip_id, sources, values)
            if not changed:
                raise TriageError("conflict", await self._detached(session, tip_id))
            details = {"from": "/".join(sorted(sources)), "to": target} | (extra or {})
            if choice:
                details["choice"] = choice
            session.add(TipEvent(
                tip_id=tip_id, actor_kind="officer", actor_id=officer.id,
                actor_name=officer.name, event=str(action), details=json.dumps(details), at=now,
            ))
            session.add(_row(tip_id, CardRefreshPayload()))
            if action in (Action.ACK, Action.DONE, Action.INVALID):
                notice: NoticeKind = "ack" if action == Action.ACK else \
                    "done" if action == Action.DONE else "invalid"
                session.add(_row(tip_id, ReporterNoticePayload(notice=notice, choice=choice)))
            if action in (Action.DONE, Action.INVALID):
                await session.exec(
                    update(TipReporter).where(col(TipReporter.tip_id) == tip_id)
                    .values(purge_after=now + self._retention)
                )
            tip = await session.get(Tip, tip_id)
        log.info("tip status changed", extra={"tip_id": tip_id, "event": str(action)})
        assert tip is not None
        return tip

    async def transfer(
        self, tip_id: int, officer: Officer, *, to_commune: int | None
    ) -> Tip:
        """Move the tip to another commune's queue (``to_commune``) or up to its province
        group (None). It needs acknowledging again there; deadlines keep running from the
        original receipt time."""
        sources, target = TRANSITIONS[Action.TRANSFER]
        assert target is not None
        now = utcnow()
        values: dict[str, Any] = {"status": target, "updated_at": now, "owner_id": None,
                                  "owner_name": None, "acknowledged_at": None,
                                  "transfers": Tip.transfers + 1}
        destination: dict[str, Any] = {"province_only": True}
        if to_commune is not None:
            commune = self._directory.commune(to_commune)
            if commune is None:
                raise TriageError("bad_choice")
            values |= {"commune_code": commune.code, "province_code": commune.province_code}
            destination = {"commune": commune.code}
        async with self._db.transaction() as session:
            before = await session.get(Tip, tip_id)
            if before is None:
                raise TriageError("not_found")
            if to_commune is not None and to_commune == before.commune_code:
                raise TriageError("bad_choice")
            old_commune = before.commune_code
            if not await self._guarded_update(session, tip_id, sources, values):
                raise TriageError("conflict", await self._detached(session, tip_id))
            cards = (await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, col(TipCard.active).is_(True)
            ))).all()
            for card in cards:
                card.active = False
                session.add(_row(tip_id, CardRetirePayload(
                    chat_id=card.chat_id, message_id=card.message_id, to=to_commune)))
            session.add(TipEvent(
                tip_id=tip_id, actor_kind="officer", actor_id=officer.id,
                actor_name=officer.name, event="transfer", at=now,
                details=json.dumps({"from_commune": old_commune} | destination),
            ))
            session.add(_row(tip_id, TipCardPayload(route_commune=to_commune,
                                                    route_province_only=to_commune is None)))
            tip = await session.get(Tip, tip_id)
        assert tip is not None
        return tip

    async def ask(self, tip_id: int, officer: Officer, question: str) -> None:
        """Relay a question to the reporter (through the outbox, in their language)."""
        question = question.strip()[:3000]
        if not question:
            raise TriageError("bad_choice")
        async with self._db.transaction() as session:
            tip = await session.get(Tip, tip_id)
            if tip is None:
                raise TriageError("not_found")
            if tip.status not in TRANSITIONS[Action.ASK][0]:
                raise TriageError("conflict", await self._detached(session, tip_id))
            session.add(TipEvent(tip_id=tip_id, actor_kind="officer", actor_id=officer.id,
                                 actor_name=officer.name, event="question",
                                 details=json.dumps({"text": question}, ensure_ascii=False)))
            session.add(_row(tip_id, ReporterNoticePayload(notice="question", text=question)))

    async def note(self, tip_id: int, officer: Officer, text: str) -> None:
        """An internal note: stored and shown on /tip, never relayed."""
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=tip_id, actor_kind="officer", actor_id=officer.id,
                                 actor_name=officer.name, event="note",
                                 details=json.dumps({"text": text[:3000]}, ensure_ascii=False)))

    async def add_card(self, tip_id: int, chat_id: int, message_id: int) -> None:
        """A card posted again (/tip): it is live too, and edited with the others."""
        async with self._db.transaction() as session:
            session.add(TipCard(tip_id=tip_id, chat_id=chat_id, message_id=message_id))

    async def remember_prompt(
        self, tip_id: int, chat_id: int, message_id: int, purpose: str, officer: Officer
    ) -> None:
        async with self._db.transaction() as session:
            session.add(RelayMessage(tip_id=tip_id, side="group", key=str(chat_id),
                                     message_id=message_id, purpose=purpose,
                                     officer_id=officer.id))

    async def consume_prompt(self, prompt_id: int) -> bool:
        """A prompt is answered once: True for the first answer only."""
        async with self._db.transaction() as session:
            result = await session.exec(
                delete(RelayMessage).where(col(RelayMessage.id) == prompt_id)
            )
        return bool(result.rowcount == 1)

    async def prompt(self, chat_id: int, message_id: int) -> RelayMessage | None:
        async with self._db.session() as session:
            return (await session.exec(select(RelayMessage).where(
                RelayMessage.side == "group", RelayMessage.key == str(chat_id),
                RelayMessage.message_id == message_id,
            ))).first()

    # --- the reporter's side ---------------------------------------------------------------

    async def question_for_reply(self, pseudonym: str, message_id: int) -> ReporterAnswer | None:
        """The tip whose police question this reporter is replying to."""
        async with self._db.session() as session:
            row = (await session.exec(
                select(Tip).join(RelayMessage, col(RelayMessage.tip_id) == col(Tip.id)).where(
                    RelayMessage.side == "reporter", RelayMessage.key == pseudonym,
                    RelayMessage.message_id == message_id,
                )
            )).first()
        return ReporterAnswer(row.id, row.code) if row is not None and row.id else None

    async def own_tip(self, pseudonym: str, typed_code: str) -> ReporterAnswer | None:
        """The tip with this code if this reporter sent it (others learn nothing)."""
        code = normalise_code(typed_code)
        if code is None:
            return None
        async with self._db.session() as session:
            row = (await session.exec(
                select(Tip).join(TipReporter, col(TipReporter.tip_id) == col(Tip.id)).where(
                    col(Tip.code) == code, col(TipReporter.pseudonym) == pseudonym
                )
            )).first()
        return ReporterAnswer(row.id, row.code) if row is not None and row.id else None

    async def reporter_answer(
        self, tip_id: int, text: str | None, photos: list[tuple[bytes, int, int]]
    ) -> None:
        """The reporter's answer goes to the group as a reply to the card."""
        async with self._db.transaction() as session:
            photo_ids: list[int] = []
            for index, (data, width, height) in enumerate(photos):
                photo = Photo(tip_id=tip_id, position=10_000 + index, data=data, width=width,
                              height=height)
                session.add(photo)
                await session.flush()
                assert photo.id is not None
                photo_ids.append(photo.id)
            session.add(TipEvent(tip_id=tip_id, actor_kind="resident", event="answer",
                                 details=json.dumps({"text": text, "photos": len(photos)},
                                                    ensure_ascii=False)))
            session.add(_row(tip_id, GroupRelayPayload(text=text, photo_ids=tuple(photo_ids))))

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    async def _detached(session: AsyncSession, tip_id: int) -> Tip | None:
        """The tip as it is now, usable after the failed transaction rolls back."""
        tip = await session.get(Tip, tip_id, populate_existing=True)
        if tip is not None:
            session.expunge(tip)
        return tip

    async def _guarded_update(
        self, session: AsyncSession, tip_id: int, sources: frozenset[str], values: dict[str, Any]
    ) -> bool:
        result = await session.exec(
            update(Tip)
            .where(col(Tip.id) == tip_id, col(Tip.status).in_(sources))
            .values(**values)
        )
        return bool(result.rowcount == 1)


def _row(tip_id: int, payload: Payload) -> OutboxMessage:
    """An outbox row of the payload's kind (sent by the outbox worker)."""
    return OutboxMessage(kind=str(payload.kind), tip_id=tip_id, payload=payload.to_json())
