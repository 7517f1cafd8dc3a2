"""Tip intake: the resident's draft, step by step, and the commit of the tip.

The draft lives in the database (a restart keeps the resident's place). Steps::

    commune -> category -> urgency -> description -> attachments -> review -> (submitted)

``/cancel`` leaves from any step; drafts idle longer than ``DRAFT_TTL`` expire.
The rules (steps, ban, rate limits, duplicate merge) are plain functions in
``bot.domain.intake_rules``; the reads and writes are ``storage.intake.IntakeStore``'s (given
to the service: this module imports no storage).
``submit`` commits the tip, its reporter link, its first audit event and its outbox entries
(the card, and the receipt's safety net) in one transaction, before anybody is told
"received".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.domain.batching import GroupCommit
from bot.domain.categories import Categories
from bot.domain.communes import Commune, CommuneDirectory, Province
from bot.domain.deadlines import DeadlinePolicy
from bot.domain.failures import StoreConflict, StoreUnavailable
from bot.domain.intake_rules import (
    DRAFT_TTL,
    DUPLICATE_WINDOW,
    MAX_CAPTION,
    MAX_DESCRIPTION,
    MAX_PHOTOS,
    PICTURE_STEPS,
    DraftRecord,
    IntakeError,
    IntakeLimits,
    PastTip,
    Step,
    appended_text,
    check_banned,
    check_location,
    check_picture_room,
    check_rate,
    check_submit,
    checked_caption,
    content_hash,
    duplicate_of,
    live,
    require_step,
)
from bot.domain.outbox.payloads import OutboxKind
from bot.domain.photos import SanitisedPhoto
from bot.domain.receipts import new_code
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress

__all__ = [
    "DRAFT_TTL", "DUPLICATE_WINDOW", "MAX_CAPTION", "MAX_DESCRIPTION", "MAX_PHOTOS",
    "RECEIPT_DELAY", "DraftView", "IntakeError", "IntakeLimits", "IntakeService", "Step",
    "Submitted", "checked_caption",
]

log = logging.getLogger(__name__)

# the receipt's outbox row comes due this long after the commit: the confirm handler sends
# the receipt at once and marks the row sent well before (its send gives up within ~15 s:
# private-chat pacing, then the 5 s connect/read/write timeouts), so the outbox sends it only
# if the process died in between (or the handler, failing, made it due at once)
RECEIPT_DELAY = timedelta(seconds=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- what the service needs from storage (storage/intake.py provides it) ----------------------


class ResidentFactsLike(Protocol):
    @property
    def banned(self) -> bool: ...
    @property
    def last_commune_code(self) -> int | None: ...
    @property
    def history(self) -> list[PastTip]: ...


class SubmitFactsLike(Protocol):
    @property
    def drafts(self) -> dict[str, DraftRecord]: ...
    @property
    def photo_counts(self) -> dict[int, int]: ...
    @property
    def banned(self) -> set[str]: ...
    @property
    def history(self) -> dict[str, list[PastTip]]: ...


class SubmitUnitLike(Protocol):
    async def facts(self, pseudonyms: Sequence[str], since: datetime) -> Any: ...
    async def links(self, commune_codes: Iterable[int],
                    province_codes: Iterable[int]) -> list[tuple[str, int, int]]: ...
    async def insert_tips(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]: ...
    async def move_photos(self, moves: list[tuple[int, int]]) -> None: ...
    async def insert_reporters(self, rows: list[dict[str, Any]]) -> None: ...
    async def insert_events(self, rows: list[dict[str, Any]]) -> None: ...
    async def insert_outbox(self, rows: list[dict[str, Any]]) -> None: ...
    async def remember_residents(self, rows: list[dict[str, Any]]) -> None: ...
    async def delete_drafts(self, draft_ids: list[int]) -> None: ...


class IntakeStorage(Protocol):
    async def start_draft(
        self, pseudonym: str, *, since: datetime,
        decide: Callable[[Any], tuple[str, int | None, str]],
    ) -> DraftRecord: ...
    async def draft(self, pseudonym: str) -> DraftRecord | None: ...
    async def change_draft(
        self, pseudonym: str, decide: Callable[[DraftRecord | None], Mapping[str, object]],
        *, with_captions: Callable[[DraftRecord], bool] = ...,
    ) -> DraftRecord: ...
    async def add_photo(
        self, pseudonym: str, decide: Callable[[DraftRecord | None, int], None], *,
        order: int, data: bytes, width: int, height: int, caption: str | None,
    ) -> int: ...
    async def delete_draft(self, pseudonym: str) -> bool: ...
    async def delete_drafts_before(self, before: datetime) -> int: ...
    def submitting(self) -> AbstractAsyncContextManager[Any]: ...


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
class Submitted:
    tip_id: int
    code: str
    duplicate: bool  # an identical tip sent minutes ago: merged, its code returned


def _pictures_possible(draft: DraftRecord) -> bool:
    return draft.step in PICTURE_STEPS


class IntakeService:
    def __init__(
        self,
        store: IntakeStorage,
        directory: CommuneDirectory,
        categories: Categories,
        sealer: ChatSealer,
        router: Router,
        *,
        deadlines: DeadlinePolicy | None = None,
        limits: IntakeLimits | None = None,
    ) -> None:
        self._store = store
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
        now = utcnow()

        def decide(facts: ResidentFactsLike) -> tuple[str, int | None, str]:
            check_banned(facts.banned)
            check_rate(facts.history, now, self._limits)
            code = commune_code
            if code is None or self._directory.commune(code) is None:
                code = facts.last_commune_code
            return language, code, Step.CATEGORY if code else Step.COMMUNE

        draft = await self._store.start_draft(
            pseudonym, since=now - timedelta(days=1), decide=decide)
        return self._view(draft)

    async def current(self, pseudonym: str) -> DraftView | None:
        """The draft, read only (every message of a resident asks this: no write lock);
        an expired one counts as gone and is deleted by the next change or the purge job."""
        draft = live(await self._store.draft(pseudonym), utcnow())
        return self._view(draft) if draft is not None else None

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
        if not text.strip():
            raise IntakeError("empty_description")
        now = utcnow()

        def decide(draft: DraftRecord | None) -> Mapping[str, object]:
            found = require_step(draft, now, (Step.DESCRIPTION, Step.ATTACHMENTS))
            return {"description": appended_text(found.description, text),
                    "step": Step.ATTACHMENTS}

        return self._view(await self._store.change_draft(
            pseudonym, decide, with_captions=_pictures_possible))

    async def add_photo(
        self, pseudonym: str, photo: SanitisedPhoto, *, order: int, caption: str | None = None
    ) -> int:
        """Attach a sanitised picture with the resident's caption, if any; returns how many
        the draft now has. ``order`` (the resident's message id) keeps pictures in the
        order sent, though processed at once."""
        caption = checked_caption(caption)
        now = utcnow()

        def decide(draft: DraftRecord | None, count: int) -> None:
            require_step(draft, now, (Step.ATTACHMENTS,))
            check_picture_room(count)

        return await self._store.add_photo(
            pseudonym, decide, order=order, data=photo.data, width=photo.width,
            height=photo.height, caption=caption,
        )

    async def expects_photos(self, pseudonym: str) -> bool:
        view = await self.current(pseudonym)
        return view is not None and view.step == Step.ATTACHMENTS

    async def set_location(self, pseudonym: str, latitude: float, longitude: float) -> DraftView:
        check_location(latitude, longitude)
        return await self._update(
            pseudonym, (Step.ATTACHMENTS,), latitude=latitude, longitude=longitude
        )

    async def keep_commune_location(
        self, pseudonym: str, latitude: float, longitude: float
    ) -> DraftView:
        """The location shared to find the commune is also where it happened (the resident
        said so; until then it is not kept). Right after the commune was chosen only."""
        check_location(latitude, longitude)
        return await self._update(
            pseudonym, (Step.CATEGORY,), latitude=latitude, longitude=longitude
        )

    async def drop_commune_location(self, pseudonym: str) -> DraftView:
        """The location only served to find the commune: nothing is kept."""
        return await self._update(pseudonym, (Step.CATEGORY,), latitude=None, longitude=None)

    async def finish_attachments(self, pseudonym: str) -> DraftView:
        return await self._update(pseudonym, (Step.ATTACHMENTS,), step=Step.REVIEW)

    async def cancel(self, pseudonym: str) -> bool:
        return await self._store.delete_draft(pseudonym)

    async def purge_expired_drafts(self) -> int:
        return await self._store.delete_drafts_before(utcnow() - DRAFT_TTL)

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
        except Exception as error:
            if _unavailable(error):  # the database itself (locked, gone): no use retrying
                log.error("tip batch failed", extra={  # each alone; drafts are kept
                    "count": len(requests), "error_type": _error_type(error)})
                return [error] * len(requests)
            if len(requests) > 1 or not _conflict(error):
                log.warning("tip batch failed, committing one by one",
                            extra={"count": len(requests), "error_type": _error_type(error)})
            return [await self._submit_alone(request) for request in requests]

    async def _submit_alone(self, request: _SubmitRequest) -> Submitted | BaseException:
        for _attempt in range(5):  # a receipt-code collision (40 bits) just draws again
            try:
                [result] = await self._submit_together([request])
                return result
            except Exception as error:
                if not _conflict(error):
                    return error
                log.warning("receipt code collision, drawing again")
        return RuntimeError("could not draw a free receipt code")

    async def _submit_together(
        self, requests: Sequence[_SubmitRequest]
    ) -> list[Submitted | BaseException]:
        """One transaction for all ``requests``; per-request refusals are returned. The
        store runs prepared statements with lists of parameters: a batch costs about ten
        statements whatever its size."""
        now = utcnow()
        pseudonyms = sorted({request.pseudonym for request in requests})
        async with self._store.submitting() as unit:
            unit_: SubmitUnitLike = unit
            facts: SubmitFactsLike = await unit_.facts(pseudonyms, now - timedelta(days=1))
            drafts = dict(facts.drafts)
            results: list[Submitted | BaseException] = []
            accepted: list[tuple[int, _SubmitRequest, DraftRecord, Commune, str]] = []
            merged: list[dict[str, Any]] = []  # audit rows of drafts merged into an earlier
            used_drafts: list[int] = []  # identical tip; drafts are deleted once, last
            # (their photos are moved first: photos cascade with their draft)
            for position, request in enumerate(requests):
                past = facts.history.get(request.pseudonym, [])
                try:
                    draft = check_submit(
                        drafts.pop(request.pseudonym, None),  # a second submit finds none
                        banned=request.pseudonym in facts.banned, past=past, now=now,
                        limits=self._limits)
                except IntakeError as error:
                    results.append(error)
                    continue
                assert draft.commune_code is not None
                commune = self._directory.commune(draft.commune_code)
                assert commune is not None
                digest = content_hash(draft.commune_code, draft.category, draft.description)
                duplicate = duplicate_of(past, digest, now)
                used_drafts.append(draft.id)
                if duplicate is not None:
                    merged.append({"tip_id": duplicate.tip_id, "at": now,
                                   "actor_kind": "resident", "event": "duplicate_merged"})
                    results.append(Submitted(duplicate.tip_id, duplicate.code, duplicate=True))
                    continue
                accepted.append((position, request, draft, commune, digest))
                results.append(RuntimeError("not committed"))  # replaced below
            if merged:
                await unit_.insert_events(merged)
            if not accepted:
                if used_drafts:
                    await unit_.delete_drafts(used_drafts)
                return results
            places = [(commune.code, commune.province_code) for *_, commune, _ in accepted]
            destinations = self._router.choose(places, await unit_.links(
                {commune for commune, _ in places}, {province for _, province in places}))
            inserted = await unit_.insert_tips([
                {
                    "code": new_code(), "channel": request.channel, "commune_code": commune.code,
                    "province_code": commune.province_code, "category": draft.category,
                    "urgent": draft.urgent, "description": draft.description,
                    "content_hash": digest, "latitude": draft.latitude,
                    "longitude": draft.longitude,
                    "photo_count": facts.photo_counts.get(draft.id, 0),
                    "queue_scope": destination.scope, "queue_chat_id": destination.chat_id,
                    "created_at": now, "updated_at": now,
                    "ack_due_at": self._deadlines.ack_due(now, urgent=draft.urgent,
                                                          category=draft.category),
                    "settle_due_at": self._deadlines.settle_due(now),
                }
                for (_, request, draft, commune, digest), destination
                in zip(accepted, destinations, strict=True)
            ])  # ids and codes, in the order given
            tip_ids = [tip_id for tip_id, _code in inserted]
            await unit_.move_photos([
                (draft.id, tip_id)
                for (_, _r, draft, _c, _h), tip_id in zip(accepted, tip_ids, strict=True)
                if facts.photo_counts.get(draft.id)
            ])
            await unit_.insert_reporters([
                {"tip_id": tip_id, "pseudonym": request.pseudonym, "created_at": now,
                 "sealed_chat": self._sealer.seal(request.reply_to)}
                for (_, request, *_rest), tip_id in zip(accepted, tip_ids, strict=True)
            ])
            await unit_.insert_events([
                {"tip_id": tip_id, "at": now, "actor_kind": "resident", "event": "received",
                 "details": json.dumps({"queue": destination.scope, "channel": request.channel})}
                for (_, request, *_rest), tip_id, destination
                in zip(accepted, tip_ids, destinations, strict=True)
            ])
            receipt_due = now + RECEIPT_DELAY
            await unit_.insert_outbox([
                *({"kind": str(OutboxKind.TIP_CARD), "tip_id": tip_id,
                   "next_attempt_at": now, "created_at": now} for tip_id in tip_ids),
                *({"kind": str(OutboxKind.RECEIPT), "tip_id": tip_id,
                   "next_attempt_at": receipt_due, "created_at": now} for tip_id in tip_ids),
            ])
            await unit_.remember_residents([  # the commune and language for next time
                {"pseudonym": request.pseudonym, "last_commune_code": commune.code,
                 "language": draft.language, "created_at": now, "updated_at": now}
                for _, request, draft, commune, _h in accepted
            ])
            await unit_.delete_drafts(used_drafts)
            for (position, *_rest), (tip_id, code) in zip(accepted, inserted, strict=True):
                results[position] = Submitted(tip_id, code, duplicate=False)
        for (tip_id, _code), destination in zip(inserted, destinations, strict=True):
            log.info("tip committed", extra={"tip_id": tip_id, "scope": destination.scope})
        return results

    # --- helpers -----------------------------------------------------------------------------

    async def _update(
        self, pseudonym: str, expected: tuple[Step, ...], **values: object
    ) -> DraftView:
        """Change the draft if it is at one of the ``expected`` steps (any step if empty)."""
        now = utcnow()

        def decide(draft: DraftRecord | None) -> Mapping[str, object]:
            require_step(draft, now, expected)
            return values

        return self._view(await self._store.change_draft(
            pseudonym, decide, with_captions=_pictures_possible))

    def _view(self, draft: DraftRecord) -> DraftView:
        commune = self._directory.commune(draft.commune_code) if draft.commune_code else None
        province = self._directory.province(commune.province_code) if commune else None
        return DraftView(
            step=Step(draft.step), language=draft.language, commune=commune, province=province,
            category=draft.category, urgent=draft.urgent, description=draft.description,
            photo_count=len(draft.captions), has_location=draft.latitude is not None,
            captions=tuple((i, c) for i, c in enumerate(draft.captions, 1) if c),
        )


def _unavailable(error: BaseException) -> bool:
    return isinstance(error, StoreUnavailable)


def _conflict(error: BaseException) -> bool:
    return isinstance(error, StoreConflict)


def _error_type(error: BaseException) -> str:
    """The database's own error type behind the store's (what the logs always said)."""
    return type(error.__cause__ or error).__name__
