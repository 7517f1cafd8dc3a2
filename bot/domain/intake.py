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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.batching import GroupCommit
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
class _SubmitRequest:
    pseudonym: str
    reply_to: ReplyAddress
    channel: str


@dataclass(frozen=True, slots=True)
class _PastTip:
    """One of a resident's recent tips, as the rate limits and duplicate check see it."""

    tip_id: int
    code: str
    content_hash: str
    reported_at: datetime
    created_at: datetime


def _duplicate_of(past: Sequence[_PastTip], content_hash: str, now: datetime) -> _PastTip | None:
    """The newest identical tip sent within ``DUPLICATE_WINDOW``."""
    same = [tip for tip in past
            if tip.content_hash == content_hash and tip.created_at > now - DUPLICATE_WINDOW]
    return max(same, key=lambda tip: tip.tip_id, default=None)


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
        self._submits: GroupCommit[_SubmitRequest, Submitted] = GroupCommit(
            self._submit_batch, name="tip-submit"
        )

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
        """Commit the tip with its reporter link, audit event and outbox entry, atomically.

        Submits arriving together are committed together (``GroupCommit``): one transaction
        and a dozen statements for the whole batch; each resident still gets their own
        result or refusal, and a refusal changes nothing."""
        return await self._submits.run(_SubmitRequest(pseudonym, reply_to, channel))

    async def _submit_batch(
        self, requests: Sequence[_SubmitRequest]
    ) -> list[Submitted | BaseException]:
        try:
            return await self._submit_together(requests)
        except Exception as error:
            if len(requests) > 1 or not isinstance(error, IntegrityError):
                log.warning("tip batch failed, committing one by one",
                            extra={"count": len(requests), "error_type": type(error).__name__})
            return [await self._submit_alone(request) for request in requests]

    async def _submit_alone(self, request: _SubmitRequest) -> Submitted | BaseException:
        for _attempt in range(5):  # a receipt-code collision (40 bits) just draws again
            try:
                [result] = await self._submit_together([request])
                return result
            except IntegrityError:
                log.warning("receipt code collision, drawing again")
            except Exception as error:
                return error
        return RuntimeError("could not draw a free receipt code")

    async def _submit_together(
        self, requests: Sequence[_SubmitRequest]
    ) -> list[Submitted | BaseException]:
        """One transaction for all ``requests``; per-request refusals are returned."""
        now = utcnow()
        pseudonyms = sorted({request.pseudonym for request in requests})
        async with self._db.transaction() as session:
            drafts = await self._drafts_for_submit(session, pseudonyms)
            banned = set((await session.exec(
                select(Ban.pseudonym).where(col(Ban.pseudonym).in_(pseudonyms))
            )).all())
            history = await self._history(session, pseudonyms, now)
            photo_counts = await self._photo_counts(
                session, [draft.id for draft in drafts.values() if draft.id is not None]
            )
            results: list[Submitted | BaseException] = []
            accepted: list[tuple[_SubmitRequest, Draft, Commune, str]] = []
            for request in requests:
                draft = drafts.pop(request.pseudonym, None)  # a second submit finds none
                try:
                    commune = self._check_submit(draft, request.pseudonym, banned, history, now)
                except IntakeError as error:
                    results.append(error)
                    continue
                assert draft is not None and draft.id is not None
                content_hash = _content_hash(draft)
                duplicate = _duplicate_of(history.get(request.pseudonym, []), content_hash, now)
                if duplicate is not None:
                    session.add(TipEvent(tip_id=duplicate.tip_id, actor_kind="resident",
                                         event="duplicate_merged"))
                    await session.delete(draft)
                    results.append(Submitted(duplicate.tip_id, duplicate.code, duplicate=True))
                    continue
                accepted.append((request, draft, commune, content_hash))
                results.append(RuntimeError("not committed"))  # replaced below
            if not accepted:
                return results
            destinations = await self._router.destinations(
                session, [(commune.code, commune.province_code) for _, _, commune, _ in accepted]
            )
            tips = [
                Tip(
                    code=new_code(), channel=request.channel, commune_code=commune.code,
                    province_code=commune.province_code, category=draft.category or "",
                    urgent=draft.urgent, description=draft.description or "",
                    content_hash=content_hash, latitude=draft.latitude,
                    longitude=draft.longitude, photo_count=photo_counts.get(draft.id or 0, 0),
                    queue_scope=destination.scope, queue_chat_id=destination.chat_id,
                    created_at=now, updated_at=now,
                    ack_due_at=self._deadlines.ack_due(now, urgent=draft.urgent),
                    settle_due_at=self._deadlines.settle_due(now),
                )
                for (request, draft, commune, content_hash), destination
                in zip(accepted, destinations, strict=True)
            ]
            session.add_all(tips)
            await session.flush()  # one multi-row INSERT … RETURNING for the ids
            residents = await self._residents(
                session, [request.pseudonym for request, *_ in accepted]
            )
            for (request, draft, commune, _hash), tip, destination in zip(
                accepted, tips, destinations, strict=True
            ):
                assert tip.id is not None
                if tip.photo_count:
                    await session.exec(
                        update(Photo).where(col(Photo.draft_id) == draft.id)
                        .values(tip_id=tip.id, draft_id=None)
                    )
                session.add(TipReporter(tip_id=tip.id, pseudonym=request.pseudonym,
                                        sealed_chat=self._sealer.seal(request.reply_to),
                                        created_at=now))
                session.add(TipEvent(
                    tip_id=tip.id, actor_kind="resident", event="received", at=now,
                    details=json.dumps({"queue": destination.scope, "channel": request.channel}),
                ))
                session.add(OutboxMessage(kind="tip_card", tip_id=tip.id))
                self._remember_resident(session, residents, request.pseudonym, commune.code,
                                        draft.language)
                await session.delete(draft)
                results[requests.index(request)] = Submitted(tip.id, tip.code, duplicate=False)
        for tip, destination in zip(tips, destinations, strict=True):
            log.info("tip committed", extra={"tip_id": tip.id, "scope": destination.scope})
        return results

    def _check_submit(
        self, draft: Draft | None, pseudonym: str, banned: set[str],
        history: dict[str, list[_PastTip]], now: datetime,
    ) -> Commune:
        """Why this submit is refused (raised), else the draft's commune."""
        if draft is None or draft.updated_at < now - DRAFT_TTL:
            raise IntakeError("no_draft")
        if draft.step != Step.REVIEW:
            raise IntakeError("wrong_step", step=draft.step)
        if pseudonym in banned:
            raise IntakeError("banned")
        self._check_rate(history.get(pseudonym, []), now)
        assert draft.commune_code is not None and draft.category is not None
        assert draft.description is not None
        commune = self._directory.commune(draft.commune_code)
        assert commune is not None
        return commune

    def _check_rate(self, past: Sequence[_PastTip], now: datetime) -> None:
        for window, limit, reason in (
            (timedelta(hours=1), self._limits.tips_per_hour, "rate_hour"),
            (timedelta(days=1), self._limits.tips_per_day, "rate_day"),
        ):
            if sum(1 for tip in past if tip.reported_at > now - window) >= limit:
                raise IntakeError(reason, limit=limit)

    # --- helpers -----------------------------------------------------------------------------

    async def _refuse_banned_or_limited(self, session: AsyncSession, pseudonym: str) -> None:
        if await session.get(Ban, pseudonym) is not None:
            raise IntakeError("banned")
        now = utcnow()
        self._check_rate((await self._history(session, [pseudonym], now)).get(pseudonym, []), now)

    async def _history(
        self, session: AsyncSession, pseudonyms: Sequence[str], now: datetime
    ) -> dict[str, list[_PastTip]]:
        """Each pseudonym's tips of the last day (rate limits and duplicates), one query."""
        query = (  # SQLAlchemy's select: sqlmodel's is typed for four columns at most
            sa.select(col(TipReporter.pseudonym), col(TipReporter.created_at), col(Tip.id),
                      col(Tip.code), col(Tip.content_hash), col(Tip.created_at))
            .join(Tip, col(Tip.id) == col(TipReporter.tip_id))
            .where(col(TipReporter.pseudonym).in_(pseudonyms),
                   col(TipReporter.created_at) > now - timedelta(days=1))
        )
        history: dict[str, list[_PastTip]] = {}
        for pseudonym, reported_at, tip_id, code, content_hash, created_at in (
            await (await session.connection()).execute(query)
        ).all():
            assert tip_id is not None
            history.setdefault(pseudonym, []).append(
                _PastTip(tip_id, code, content_hash, reported_at, created_at)
            )
        return history

    async def _drafts_for_submit(
        self, session: AsyncSession, pseudonyms: Sequence[str]
    ) -> dict[str, Draft]:
        # FOR UPDATE: on PostgreSQL two submits of one draft queue on its row (SQLite's
        # BEGIN IMMEDIATE already serialises writers and ignores this clause)
        query = select(Draft).where(col(Draft.pseudonym).in_(pseudonyms)).with_for_update()
        return {draft.pseudonym: draft for draft in (await session.exec(query)).all()}

    async def _photo_counts(
        self, session: AsyncSession, draft_ids: Sequence[int]
    ) -> dict[int, int]:
        if not draft_ids:
            return {}
        query = (
            select(Photo.draft_id, func.count()).where(col(Photo.draft_id).in_(draft_ids))
            .group_by(col(Photo.draft_id))
        )
        return {draft_id: count for draft_id, count in (await session.exec(query)).all()
                if draft_id is not None}

    async def _residents(
        self, session: AsyncSession, pseudonyms: Sequence[str]
    ) -> dict[str, Resident]:
        query = select(Resident).where(col(Resident.pseudonym).in_(pseudonyms))
        return {resident.pseudonym: resident for resident in (await session.exec(query)).all()}

    def _remember_resident(
        self, session: AsyncSession, residents: dict[str, Resident], pseudonym: str, code: int,
        language: str,
    ) -> None:
        """The commune for next time, and the language later notices are written in."""
        resident = residents.get(pseudonym)
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
