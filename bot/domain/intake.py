"""Tip intake: the resident's draft, step by step, and the commit of the tip.

The draft lives in the database (a restart keeps the resident's place). Steps::

    commune -> category -> urgency -> description -> attachments -> review -> (submitted)

``/cancel`` leaves from any step; drafts idle longer than ``DRAFT_TTL`` expire.
``submit`` commits the tip, its reporter link, its first audit event and its outbox entry
in one transaction, before anybody is told "received".
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.categories import Categories
from bot.domain.communes import Commune, CommuneDirectory, Province
from bot.domain.deadlines import DeadlinePolicy
from bot.domain.photos import SanitisedPhoto
from bot.domain.receipts import new_code
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.domain.text import fold
from storage.db import Database
from storage.models import (
    Ban,
    Draft,
    OutboxMessage,
    Photo,
    Resident,
    Tip,
    TipEvent,
    TipReporter,
    utcnow,
)

log = logging.getLogger(__name__)

DRAFT_TTL = timedelta(hours=2)
MAX_DESCRIPTION = 4000
MAX_PHOTOS = 10
DUPLICATE_WINDOW = timedelta(minutes=10)


class Step(StrEnum):
    COMMUNE = "commune"
    CATEGORY = "category"
    URGENCY = "urgency"
    DESCRIPTION = "description"
    ATTACHMENTS = "attachments"
    REVIEW = "review"


class IntakeError(Exception):
    """A request the intake refuses; ``reason`` picks the sentence the resident sees."""

    def __init__(self, reason: str, **details: int | str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    tips_per_hour: int = 5
    tips_per_day: int = 20


@dataclass(frozen=True, slots=True)
class DraftView:
    """What the resident is shown about the draft (review screen, prompts)."""

    step: Step
    language: str
    commune: Commune | None
    province: Province | None
    category: str | None
    urgent: bool
    description: str | None
    photo_count: int
    has_location: bool


@dataclass(frozen=True, slots=True)
class Submitted:
    tip_id: int
    code: str
    duplicate: bool  # an identical tip sent minutes ago: merged, its code returned


class IntakeService:
    def __init__(
        self,
        db: Database,
        directory: CommuneDirectory,
        categories: Categories,
        sealer: ChatSealer,
        router: Router,
        *,
        deadlines: DeadlinePolicy | None = None,
        limits: IntakeLimits | None = None,
    ) -> None:
        self._db = db
        self._directory = directory
        self._categories = categories
        self._sealer = sealer
        self._router = router
        self._deadlines = deadlines or DeadlinePolicy()
        self._limits = limits or IntakeLimits()

    # --- the draft ---------------------------------------------------------------------------

    async def begin(
        self, pseudonym: str, language: str, *, commune_code: int | None = None
    ) -> DraftView:
        """Start (or restart) a draft; the commune comes from a deep link or the last tip."""
        async with self._db.transaction() as session:
            await self._refuse_banned_or_limited(session, pseudonym)
            resident = await session.get(Resident, pseudonym)
            if commune_code is None or self._directory.commune(commune_code) is None:
                commune_code = resident.last_commune_code if resident else None
            await session.exec(delete(Draft).where(col(Draft.pseudonym) == pseudonym))
            draft = Draft(
                pseudonym=pseudonym,
                language=language,
                commune_code=commune_code,
                step=Step.CATEGORY if commune_code else Step.COMMUNE,
            )
            session.add(draft)
            await session.flush()
            return await self._view(session, draft)

    async def current(self, pseudonym: str) -> DraftView | None:
        """The draft, read only (every message of a resident asks this: no write lock);
        an expired one counts as gone and is deleted by the next change or the purge job."""
        async with self._db.session() as session:
            query = select(Draft).where(Draft.pseudonym == pseudonym)
            draft = (await session.exec(query)).first()
            if draft is None or draft.updated_at < utcnow() - DRAFT_TTL:
                return None
            return await self._view(session, draft)

    async def choose_commune(self, pseudonym: str, commune_code: int) -> DraftView:
        if self._directory.commune(commune_code) is None:
            raise IntakeError("unknown_commune")
        return await self._update(
            pseudonym, (Step.COMMUNE, Step.CATEGORY), commune_code=commune_code,
            step=Step.CATEGORY,
        )

    async def change_commune(self, pseudonym: str) -> DraftView:
        return await self._update(pseudonym, (Step.CATEGORY,), step=Step.COMMUNE)

    async def choose_category(self, pseudonym: str, key: str) -> DraftView:
        if self._categories.get(key) is None:
            raise IntakeError("unknown_category")
        return await self._update(pseudonym, (Step.CATEGORY,), category=key, step=Step.URGENCY)

    async def set_urgency(self, pseudonym: str, urgent: bool) -> DraftView:
        return await self._update(
            pseudonym, (Step.URGENCY,), urgent=urgent, step=Step.DESCRIPTION
        )

    async def add_text(self, pseudonym: str, text: str) -> DraftView:
        """The description; more text while attaching is appended to it."""
        text = text.strip()
        if not text:
            raise IntakeError("empty_description")
        async with self._db.transaction() as session:
            draft = await self._require(session, pseudonym, Step.DESCRIPTION, Step.ATTACHMENTS)
            combined = f"{draft.description}\n{text}" if draft.description else text
            if len(combined) > MAX_DESCRIPTION:
                raise IntakeError("text_too_long", limit=MAX_DESCRIPTION, length=len(combined))
            draft.description = combined
            draft.step = Step.ATTACHMENTS
            return await self._touch(session, draft)

    async def add_photo(self, pseudonym: str, photo: SanitisedPhoto, *, order: int) -> int:
        """Attach a sanitised picture; returns how many the draft now has. ``order`` (the
        resident's message id) keeps pictures in the order sent, though processed at once."""
        async with self._db.transaction() as session:
            draft = await self._require(session, pseudonym, Step.ATTACHMENTS)
            assert draft.id is not None
            count = await self._photo_count(session, draft.id)
            if count >= MAX_PHOTOS:
                raise IntakeError("too_many_photos", limit=MAX_PHOTOS)
            session.add(
                Photo(draft_id=draft.id, position=order, data=photo.data,
                      width=photo.width, height=photo.height)
            )
            await self._touch(session, draft)
            return count + 1

    async def expects_photos(self, pseudonym: str) -> bool:
        view = await self.current(pseudonym)
        return view is not None and view.step == Step.ATTACHMENTS

    async def set_location(self, pseudonym: str, latitude: float, longitude: float) -> DraftView:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise IntakeError("bad_location")
        return await self._update(
            pseudonym, (Step.ATTACHMENTS,), latitude=latitude, longitude=longitude
        )

    async def remember_location(
        self, pseudonym: str, latitude: float, longitude: float
    ) -> DraftView:
        """A location shared to pick the commune is kept as the incident's place too."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise IntakeError("bad_location")
        return await self._update(pseudonym, (), latitude=latitude, longitude=longitude)

    async def finish_attachments(self, pseudonym: str) -> DraftView:
        return await self._update(pseudonym, (Step.ATTACHMENTS,), step=Step.REVIEW)

    async def cancel(self, pseudonym: str) -> bool:
        async with self._db.transaction() as session:
            result = await session.exec(delete(Draft).where(col(Draft.pseudonym) == pseudonym))
            return bool(result.rowcount)

    async def purge_expired_drafts(self) -> int:
        async with self._db.transaction() as session:
            result = await session.exec(
                delete(Draft).where(col(Draft.updated_at) < utcnow() - DRAFT_TTL)
            )
            return int(result.rowcount or 0)

    # --- the commit --------------------------------------------------------------------------

    async def submit(self, pseudonym: str, reply_to: ReplyAddress, channel: str) -> Submitted:
        """Commit the tip with its reporter link, audit event and outbox entry, atomically."""
        for _attempt in range(5):  # a receipt-code collision (40 bits) just draws again
            try:
                return await self._submit_once(pseudonym, reply_to, channel)
            except IntegrityError:
                log.warning("receipt code collision, drawing again")
        raise RuntimeError("could not draw a free receipt code")

    async def _submit_once(
        self, pseudonym: str, reply_to: ReplyAddress, channel: str
    ) -> Submitted:
        async with self._db.transaction() as session:
            draft = await self._require(session, pseudonym, Step.REVIEW)
            await self._refuse_banned_or_limited(session, pseudonym)
            assert draft.id is not None and draft.commune_code is not None
            assert draft.category is not None and draft.description is not None
            commune = self._directory.commune(draft.commune_code)
            assert commune is not None
            content_hash = _content_hash(draft)
            duplicate = await self._recent_duplicate(session, pseudonym, content_hash)
            if duplicate is not None:
                assert duplicate.id is not None
                session.add(TipEvent(tip_id=duplicate.id, actor_kind="resident",
                                     event="duplicate_merged"))
                await session.delete(draft)
                return Submitted(duplicate.id, duplicate.code, duplicate=True)
            now = utcnow()
            destination = await self._router.destination(
                session, commune_code=commune.code, province_code=commune.province_code
            )
            tip = Tip(
                code=new_code(), channel=channel, commune_code=commune.code,
                province_code=commune.province_code, category=draft.category,
                urgent=draft.urgent, description=draft.description, content_hash=content_hash,
                latitude=draft.latitude, longitude=draft.longitude,
                photo_count=await self._photo_count(session, draft.id),
                queue_scope=destination.scope, queue_chat_id=destination.chat_id,
                created_at=now, updated_at=now,
                ack_due_at=self._deadlines.ack_due(now, urgent=draft.urgent),
                settle_due_at=self._deadlines.settle_due(now),
            )
            session.add(tip)
            await session.flush()
            assert tip.id is not None
            await session.exec(
                update(Photo).where(col(Photo.draft_id) == draft.id)
                .values(tip_id=tip.id, draft_id=None)
            )
            session.add(TipReporter(tip_id=tip.id, pseudonym=pseudonym,
                                    sealed_chat=self._sealer.seal(reply_to)))
            session.add(TipEvent(
                tip_id=tip.id, actor_kind="resident", event="received", at=now,
                details=json.dumps({"queue": destination.scope, "channel": channel}),
            ))
            session.add(OutboxMessage(kind="tip_card", tip_id=tip.id))
            await self._remember_resident(session, pseudonym, commune.code, draft.language)
            await session.delete(draft)
        log.info("tip committed", extra={"tip_id": tip.id, "scope": destination.scope})
        return Submitted(tip.id, tip.code, duplicate=False)

    # --- helpers -----------------------------------------------------------------------------

    async def _refuse_banned_or_limited(self, session: AsyncSession, pseudonym: str) -> None:
        if await session.get(Ban, pseudonym) is not None:
            raise IntakeError("banned")
        now = utcnow()
        for window, limit, reason in (
            (timedelta(hours=1), self._limits.tips_per_hour, "rate_hour"),
            (timedelta(days=1), self._limits.tips_per_day, "rate_day"),
        ):
            count = (await session.exec(
                select(func.count()).select_from(TipReporter).where(
                    col(TipReporter.pseudonym) == pseudonym,
                    col(TipReporter.created_at) > now - window,
                )
            )).one()
            if count >= limit:
                raise IntakeError(reason, limit=limit)

    async def _recent_duplicate(
        self, session: AsyncSession, pseudonym: str, content_hash: str
    ) -> Tip | None:
        query = (
            select(Tip).join(TipReporter, col(TipReporter.tip_id) == col(Tip.id))
            .where(col(TipReporter.pseudonym) == pseudonym, col(Tip.content_hash) == content_hash,
                   col(Tip.created_at) > utcnow() - DUPLICATE_WINDOW)
            .order_by(col(Tip.id).desc())
        )
        return (await session.exec(query)).first()

    async def _remember_resident(
        self, session: AsyncSession, pseudonym: str, code: int, language: str
    ) -> None:
        """The commune for next time, and the language later notices are written in."""
        resident = await session.get(Resident, pseudonym)
        if resident is None:
            session.add(Resident(pseudonym=pseudonym, last_commune_code=code, language=language))
        else:
            resident.last_commune_code = code
            resident.language = resident.language or language
            resident.updated_at = utcnow()

    async def _draft(self, session: AsyncSession, pseudonym: str) -> Draft | None:
        # FOR UPDATE: on PostgreSQL two submits of one draft queue on its row (SQLite's
        # BEGIN IMMEDIATE already serialises writers and ignores this clause)
        query = select(Draft).where(Draft.pseudonym == pseudonym).with_for_update()
        draft = (await session.exec(query)).first()
        if draft is not None and draft.updated_at < utcnow() - DRAFT_TTL:
            await session.delete(draft)
            return None
        return draft

    async def _require(self, session: AsyncSession, pseudonym: str, *steps: Step) -> Draft:
        draft = await self._draft(session, pseudonym)
        if draft is None:
            raise IntakeError("no_draft")
        if steps and draft.step not in steps:
            raise IntakeError("wrong_step", step=draft.step)
        return draft

    async def _update(
        self, pseudonym: str, expected: tuple[Step, ...], **values: object
    ) -> DraftView:
        """Change the draft if it is at one of the ``expected`` steps (any step if empty)."""
        async with self._db.transaction() as session:
            draft = await self._require(session, pseudonym, *expected)
            for name, value in values.items():
                setattr(draft, name, value)
            return await self._touch(session, draft)

    async def _touch(self, session: AsyncSession, draft: Draft) -> DraftView:
        draft.updated_at = utcnow()
        session.add(draft)
        await session.flush()
        return await self._view(session, draft)

    async def _photo_count(self, session: AsyncSession, draft_id: int) -> int:
        query = select(func.count()).select_from(Photo).where(col(Photo.draft_id) == draft_id)
        return int((await session.exec(query)).one())

    async def _view(self, session: AsyncSession, draft: Draft) -> DraftView:
        assert draft.id is not None
        commune = self._directory.commune(draft.commune_code) if draft.commune_code else None
        province = self._directory.province(commune.province_code) if commune else None
        return DraftView(
            step=Step(draft.step), language=draft.language, commune=commune, province=province,
            category=draft.category, urgent=draft.urgent, description=draft.description,
            photo_count=await self._photo_count(session, draft.id),
            has_location=draft.latitude is not None,
        )


def _content_hash(draft: Draft) -> str:
    text = f"{draft.commune_code}|{draft.category}|{fold(draft.description or '')}"
    return hashlib.sha256(text.encode()).hexdigest()
