"""Tip intake: the resident's draft, step by step, and the commit of the tip.

The draft lives in the database (a restart keeps the resident's place). Steps::

    commune -> category -> urgency -> description -> attachments -> review -> (submitted)

``/cancel`` leaves from any step; drafts idle longer than ``DRAFT_TTL`` expire.
``submit`` commits the tip, its reporter link, its first audit event and its outbox entries
(the card, and the receipt's safety net) in one transaction, before anybody is told
"received".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.batching import GroupCommit
from bot.domain.categories import Categories
from bot.domain.communes import Commune, CommuneDirectory, Province
from bot.domain.deadlines import DeadlinePolicy
from bot.domain.outbox.payloads import OutboxKind
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
    UTCDateTime,
    utcnow,
)

log = logging.getLogger(__name__)

DRAFT_TTL = timedelta(hours=2)
MAX_DESCRIPTION = 4000
MAX_PHOTOS = 10
# What a resident writes under a picture travels with it to the group, in the photo's own
# caption (Telegram allows 1,024 characters; "Ảnh 1/10 – tin báo XXXX-XXXX" comes first).
MAX_CAPTION = 900
DUPLICATE_WINDOW = timedelta(minutes=10)
# the receipt's outbox row comes due this long after the commit: the confirm handler sends
# the receipt at once and marks the row sent well before (its send gives up within ~15 s:
# private-chat pacing, then the 5 s connect/read/write timeouts), so the outbox sends it only
# if the process died in between (or the handler, failing, made it due at once)
RECEIPT_DELAY = timedelta(seconds=30)


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
    captions: tuple[tuple[int, str], ...] = ()  # (picture number, caption) of captioned ones

    @property
    def has_content(self) -> bool:
        """Something the resident wrote or attached, which starting again would delete."""
        return bool(self.description) or self.photo_count > 0 or self.has_location


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
        self._upsert_residents = _residents_upsert(db.is_sqlite)

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

    async def add_photo(
        self, pseudonym: str, photo: SanitisedPhoto, *, order: int, caption: str | None = None
    ) -> int:
        """Attach a sanitised picture with the resident's caption, if any; returns how many
        the draft now has. ``order`` (the resident's message id) keeps pictures in the
        order sent, though processed at once."""
        caption = checked_caption(caption)
        async with self._db.transaction() as session:
            draft = await self._require(session, pseudonym, Step.ATTACHMENTS)
            assert draft.id is not None
            count = await self._photo_count(session, draft.id)
            if count >= MAX_PHOTOS:
                raise IntakeError("too_many_photos", limit=MAX_PHOTOS)
            session.add(
                Photo(draft_id=draft.id, position=order, data=photo.data,
                      width=photo.width, height=photo.height, caption=caption)
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

    async def keep_commune_location(
        self, pseudonym: str, latitude: float, longitude: float
    ) -> DraftView:
        """The location shared to find the commune is also where it happened (the resident
        said so; until then it is not kept). Right after the commune was chosen only."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise IntakeError("bad_location")
        return await self._update(
            pseudonym, (Step.CATEGORY,), latitude=latitude, longitude=longitude
        )

    async def drop_commune_location(self, pseudonym: str) -> DraftView:
        """The location only served to find the commune: nothing is kept."""
        return await self._update(pseudonym, (Step.CATEGORY,), latitude=None, longitude=None)

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
        """Commit the tip with its reporter link, audit event and outbox entries (the card,
        and the receipt due ``RECEIPT_DELAY`` later unless the caller marks it sent), atomically.

        Submits arriving together are committed together (``GroupCommit``): one transaction
        and a dozen statements for the whole batch; each resident still gets their own
        result or refusal, and a refusal changes nothing."""
        return await self._submits.run(_SubmitRequest(pseudonym, reply_to, channel))

    async def _submit_batch(
        self, requests: Sequence[_SubmitRequest]
    ) -> list[Submitted | BaseException]:
        try:
            return await self._submit_together(requests)
        except OperationalError as error:  # the database itself (locked, gone): no use
            log.error("tip batch failed", extra={  # retrying each alone; drafts are kept
                "count": len(requests), "error_type": type(error).__name__})
            return [error] * len(requests)
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
        """One transaction for all ``requests``; per-request refusals are returned.

        Plain SQL expressions built once (``_SQL``), executed with lists of parameters: a
        batch costs about ten statements whatever its size."""
        now = utcnow()
        pseudonyms = sorted({request.pseudonym for request in requests})
        async with self._db.transaction(durable=True) as session:  # receipts are given
            sql = await session.connection()
            drafts: dict[str, Any] = {row.pseudonym: row for row in (
                await sql.execute(_SQL.drafts, {"pseudonyms": pseudonyms})
            ).all()}  # each with its photo count and whether its author is banned
            banned = {pseudonym for pseudonym, draft in drafts.items() if draft.banned}
            photo_counts = {draft.id: draft.photos for draft in drafts.values()}
            history = await self._history(session, pseudonyms, now)
            results: list[Submitted | BaseException] = []
            accepted: list[tuple[int, _SubmitRequest, Any, Commune, str]] = []
            merged: list[Any] = []  # audit rows of drafts merged into an earlier identical tip
            used_drafts: list[int] = []  # deleted once, last (their photos are moved first:
            # photos cascade with their draft)
            for position, request in enumerate(requests):
                draft = drafts.pop(request.pseudonym, None)  # a second submit finds none
                try:
                    commune = self._check_submit(draft, request.pseudonym, banned, history, now)
                except IntakeError as error:
                    results.append(error)
                    continue
                content_hash = _content_hash(draft.commune_code, draft.category,
                                             draft.description)
                duplicate = _duplicate_of(history.get(request.pseudonym, []), content_hash, now)
                if duplicate is not None:
                    merged.append({"tip_id": duplicate.tip_id, "at": now,
                                   "actor_kind": "resident", "event": "duplicate_merged"})
                    results.append(Submitted(duplicate.tip_id, duplicate.code, duplicate=True))
                    used_drafts.append(draft.id)
                    continue
                accepted.append((position, request, draft, commune, content_hash))
                used_drafts.append(draft.id)
                results.append(RuntimeError("not committed"))  # replaced below
            if merged:
                await sql.execute(_SQL.insert_events, merged)
            if not accepted:
                if used_drafts:
                    await sql.execute(_SQL.delete_drafts, {"ids": used_drafts})
                return results
            destinations = await self._router.destinations(
                session, [(commune.code, commune.province_code) for *_, commune, _ in accepted]
            )
            inserted = (await sql.execute(_SQL.insert_tips, [
                {
                    "code": new_code(), "channel": request.channel, "commune_code": commune.code,
                    "province_code": commune.province_code, "category": draft.category,
                    "urgent": draft.urgent, "description": draft.description,
                    "content_hash": content_hash, "latitude": draft.latitude,
                    "longitude": draft.longitude, "photo_count": photo_counts.get(draft.id, 0),
                    "queue_scope": destination.scope, "queue_chat_id": destination.chat_id,
                    "created_at": now, "updated_at": now,
                    "ack_due_at": self._deadlines.ack_due(now, urgent=draft.urgent),
                    "settle_due_at": self._deadlines.settle_due(now),
                }
                for (_, request, draft, commune, content_hash), destination
                in zip(accepted, destinations, strict=True)
            ])).all()  # ids and codes, in the order given
            tip_ids = [row.id for row in inserted]
            for (_, _r, draft, _c, _h), tip_id in zip(accepted, tip_ids, strict=True):
                if photo_counts.get(draft.id):
                    await sql.execute(
                        _SQL.photos_to_tip, {"to_tip": tip_id, "from_draft": draft.id}
                    )
            await sql.execute(_SQL.insert_reporters, [
                {"tip_id": tip_id, "pseudonym": request.pseudonym, "created_at": now,
                 "sealed_chat": self._sealer.seal(request.reply_to)}
                for (_, request, *_rest), tip_id in zip(accepted, tip_ids, strict=True)
            ])
            await sql.execute(_SQL.insert_events, [
                {"tip_id": tip_id, "at": now, "actor_kind": "resident", "event": "received",
                 "details": json.dumps({"queue": destination.scope, "channel": request.channel})}
                for (_, request, *_rest), tip_id, destination
                in zip(accepted, tip_ids, destinations, strict=True)
            ])
            receipt_due = now + RECEIPT_DELAY
            await sql.execute(_SQL.insert_outbox, [
                *({"kind": str(OutboxKind.TIP_CARD), "tip_id": tip_id,
                   "next_attempt_at": now, "created_at": now} for tip_id in tip_ids),
                *({"kind": str(OutboxKind.RECEIPT), "tip_id": tip_id,
                   "next_attempt_at": receipt_due, "created_at": now} for tip_id in tip_ids),
            ])
            await sql.execute(self._upsert_residents, [  # the commune and language for next time
                {"pseudonym": request.pseudonym, "last_commune_code": commune.code,
                 "language": draft.language, "created_at": now, "updated_at": now}
                for _, request, draft, commune, _h in accepted
            ])
            await sql.execute(_SQL.delete_drafts, {"ids": used_drafts})
            for (position, *_rest), row in zip(accepted, inserted, strict=True):
                results[position] = Submitted(row.id, row.code, duplicate=False)
        for row, destination in zip(inserted, destinations, strict=True):
            log.info("tip committed", extra={"tip_id": row.id, "scope": destination.scope})
        return results

    def _check_submit(
        self, draft: Any, pseudonym: str, banned: set[str],
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
        history: dict[str, list[_PastTip]] = {}
        for pseudonym, reported_at, tip_id, code, content_hash, created_at in (
            await (await session.connection()).execute(
                _SQL.history, {"pseudonyms": pseudonyms, "since": now - timedelta(days=1)}
            )
        ).all():
            assert tip_id is not None
            history.setdefault(pseudonym, []).append(
                _PastTip(tip_id, code, content_hash, reported_at, created_at)
            )
        return history

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
        captions = (await session.exec(
            select(Photo.caption).where(col(Photo.draft_id) == draft.id)
            .order_by(col(Photo.position), col(Photo.id))
        )).all()
        return DraftView(
            step=Step(draft.step), language=draft.language, commune=commune, province=province,
            category=draft.category, urgent=draft.urgent, description=draft.description,
            photo_count=len(captions), has_location=draft.latitude is not None,
            captions=tuple((i, c) for i, c in enumerate(captions, 1) if c),
        )


def checked_caption(caption: str | None) -> str | None:
    """A picture's caption as kept: stripped, None when empty; too long is refused (the
    picture with it: nothing is added)."""
    caption = (caption or "").strip()
    if len(caption) > MAX_CAPTION:
        raise IntakeError("caption_too_long", limit=MAX_CAPTION, length=len(caption))
    return caption or None


def _content_hash(commune_code: int | None, category: str | None, description: str | None) -> str:
    text = f"{commune_code}|{category}|{fold(description or '')}"
    return hashlib.sha256(text.encode()).hexdigest()


def _residents_upsert(sqlite: bool) -> sa.Insert:
    """Insert the resident or update their last commune (keeping a chosen language)."""
    insert = sqlite_insert if sqlite else postgresql_insert
    residents = Resident.__table__  # type: ignore[attr-defined]
    statement = insert(residents)
    return statement.on_conflict_do_update(
        index_elements=[residents.c.pseudonym],
        set_={
            "last_commune_code": statement.excluded.last_commune_code,
            "language": sa.func.coalesce(residents.c.language, statement.excluded.language),
            "updated_at": statement.excluded.updated_at,
        },
    )


class _Statements:
    """The submit's SQL, built once (building and keying a statement costs more than running
    it on SQLite); lists go in as expanding parameters."""

    def __init__(self) -> None:
        drafts, bans, photos = Draft.__table__, Ban.__table__, Photo.__table__  # type: ignore[attr-defined]
        photo_count = (
            sa.select(sa.func.count()).where(photos.c.draft_id == drafts.c.id)
            .scalar_subquery().label("photos")
        )
        banned = sa.exists().where(bans.c.pseudonym == drafts.c.pseudonym).label("banned")
        self.drafts = (
            # FOR UPDATE: on PostgreSQL two submits of one draft queue on its row (SQLite's
            # BEGIN IMMEDIATE already serialises writers and ignores this clause)
            sa.select(drafts, photo_count, banned)
            .where(drafts.c.pseudonym.in_(sa.bindparam("pseudonyms", expanding=True)))
            .with_for_update(of=drafts)
        )
        self.photos_to_tip = (
            sa.update(photos).where(photos.c.draft_id == sa.bindparam("from_draft"))
            .values(tip_id=sa.bindparam("to_tip"), draft_id=None)
        )
        self.delete_drafts = sa.delete(drafts).where(
            drafts.c.id.in_(sa.bindparam("ids", expanding=True))
        )
        tips, reporters = Tip.__table__, TipReporter.__table__  # type: ignore[attr-defined]
        self.history = (  # each resident's tips of the last day
            sa.select(reporters.c.pseudonym, reporters.c.created_at, tips.c.id, tips.c.code,
                      tips.c.content_hash, tips.c.created_at)
            .join(tips, tips.c.id == reporters.c.tip_id)
            .where(reporters.c.pseudonym.in_(sa.bindparam("pseudonyms", expanding=True)),
                   reporters.c.created_at > sa.bindparam("since", type_=UTCDateTime))
        )
        self.insert_tips = sa.insert(tips).returning(
            tips.c.id, tips.c.code, sort_by_parameter_order=True
        )
        self.insert_reporters = sa.insert(reporters)
        self.insert_events = sa.insert(TipEvent.__table__)  # type: ignore[attr-defined]
        self.insert_outbox = sa.insert(OutboxMessage.__table__)  # type: ignore[attr-defined]


_SQL = _Statements()
