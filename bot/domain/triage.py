"""Police triage: the status model, who may act, and every change as one guarded update.

The allowed transitions are a table (``TRANSITIONS``). A change is one
``UPDATE tips SET ... WHERE id = :id AND status IN (:allowed)`` plus its audit row in the same
transaction, so when two officers press "Tiếp nhận" together exactly one wins and the other
is told who did. Card refreshes and messages to the reporter go through the outbox.

Who may act and which group may see a tip are plain functions (``may_see``,
``groups_that_may_act``); the reads and writes are ``storage.triage.TriageStore``'s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cachetools import TTLCache

from bot.domain.clock import Clock, SystemClock
from bot.domain.communes import CommuneDirectory
from bot.domain.deadlines import DeadlineChange, DeadlinePolicy
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
from bot.domain.records import EventRecord, PictureRecord, PromptRecord, TipRecord
from bot.domain.status import INVALID_REASONS, OPEN_STATUSES, OUTCOMES, TRANSITIONS, Action

log = logging.getLogger(__name__)
REFUSAL_AUDIT_SECONDS = 60.0  # one refused event per person and tip in this time
REFUSALS_REMEMBERED = 10_000
DEADLINE_ATTEMPTS = 3  # a deadline change read again when another one landed meanwhile

# a reporter's answer's pictures are stored with the tip from this position on (the tip's
# own pictures come first)
ANSWER_PICTURES_FROM = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Officer:
    """The person pressing: police side, identified for accountability."""

    id: int
    name: str


class Membership(Protocol):
    async def is_member(self, chat_id: int, user_id: int) -> bool: ...


class TriageError(Exception):
    """``reason``: not_found | stale | forbidden | conflict | bad_choice | closed."""

    def __init__(self, reason: str, tip: TipRecord | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tip = tip


@dataclass(frozen=True, slots=True)
class ReporterAnswer:
    tip_id: int
    code: str


# --- the rules -------------------------------------------------------------------------------


def groups_that_may_act(tip: TipRecord) -> list[tuple[str, int]]:
    """Members of these groups (scope, code) may act on the tip (besides the admins)."""
    return [("commune", tip.commune_code), ("province", tip.province_code)]


def may_see(link: tuple[str, int] | None, tip: TipRecord) -> bool:
    """A group sees the tips of its commune or province (no cross-commune leaks)."""
    if link is None:
        return False
    scope, code = link
    return code == (tip.commune_code if scope == "commune" else tip.province_code)


def change_values(action: Action, officer: Officer, choice: str | None,
                  now: datetime) -> dict[str, Any]:
    """What a status change writes on the tip (checked: the choice fits the action)."""
    if action in (Action.TRANSFER, Action.ASK, Action.COMPLEX):
        raise ValueError("use transfer() / ask() / declare_complex()")
    if action == Action.DONE and choice not in OUTCOMES:
        raise TriageError("bad_choice")
    if action == Action.INVALID and choice not in INVALID_REASONS:
        raise TriageError("bad_choice")
    target = TRANSITIONS[action][1]
    assert target is not None
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == Action.ACK:
        values |= {"owner_id": officer.id, "owner_name": officer.name, "acknowledged_at": now}
    if action in (Action.DONE, Action.INVALID):
        values |= {"closed_at": now, "outcome": choice}
    return values


# --- what the service needs from storage (storage/triage.py provides it) -----------------------


class TriageUnitLike(Protocol):
    async def tip(self, tip_id: int) -> TipRecord | None: ...
    async def guarded_update(self, tip_id: int, sources: Collection[str],
                             values: dict[str, Any], *, count_transfer: bool = ...) -> bool: ...
    async def guarded_deadline(self, tip_id: int, sources: Collection[str],
                               values: dict[str, Any], *, was: datetime, once: str) -> bool: ...
    async def retire_cards(self, tip_id: int) -> list[tuple[int, int]]: ...
    async def add_event(self, tip_id: int, event: str, *, actor_kind: str,
                        actor_id: int | None = ..., actor_name: str | None = ...,
                        details: str | None = ..., at: datetime | None = ...) -> None: ...
    async def add_outbox(self, kind: str, tip_id: int, payload: str = ...) -> None: ...
    async def purge_reporter_after(self, tip_id: int, when: datetime) -> None: ...
    async def add_card(self, tip_id: int, chat_id: int, message_id: int) -> None: ...
    async def add_prompt(self, tip_id: int, *, side: str, key: str, message_id: int,
                         purpose: str, officer_id: int | None) -> None: ...
    async def add_photo(self, tip_id: int, *, position: int, data: bytes, width: int,
                        height: int) -> int: ...


class TriageStorage(Protocol):
    async def tip(self, tip_id: int) -> TipRecord | None: ...
    async def tip_by_code(self, code: str) -> TipRecord | None: ...
    async def events(self, tip_id: int) -> list[EventRecord]: ...
    async def link_of_chat(self, chat_id: int) -> tuple[str, int] | None: ...
    async def chats_of_targets(self, targets: Collection[tuple[str, int]]) -> list[int]: ...
    async def open_tips(self, scope: str, code: int,
                        statuses: Collection[str]) -> list[TipRecord]: ...
    async def active_card(self, tip_id: int, chat_id: int, message_id: int) -> bool: ...
    async def has_active_card_in(self, tip_id: int, chat_id: int) -> bool: ...
    async def card_tip(self, chat_id: int, message_id: int) -> TipRecord | None: ...
    async def prompt(self, chat_id: int, message_id: int) -> PromptRecord | None: ...
    async def question_for_reply(self, pseudonym: str,
                                 message_id: int) -> tuple[int, str] | None: ...
    async def own_tip(self, pseudonym: str, code: str) -> tuple[int, str] | None: ...
    async def pictures(self, tip_id: int, *, below_position: int) -> list[PictureRecord]: ...
    def changing(self) -> AbstractAsyncContextManager[Any]: ...
    async def consume_prompt(self, prompt_id: int) -> bool: ...


class TriageService:
    def __init__(
        self,
        store: TriageStorage,
        directory: CommuneDirectory,
        membership: Membership,
        *,
        admin_ids: frozenset[int],
        retention: timedelta,
        deadlines: DeadlinePolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._deadlines = deadlines or DeadlinePolicy()
        self._clock: Clock = clock or SystemClock()
        self._directory = directory
        self._membership = membership
        self._admin_ids = admin_ids
        self._retention = retention
        self._recent_refusals: TTLCache[tuple[int, int], bool] = TTLCache(
            maxsize=REFUSALS_REMEMBERED, ttl=REFUSAL_AUDIT_SECONDS
        )

    # --- reading -----------------------------------------------------------------------------

    async def tip(self, tip_id: int) -> TipRecord:
        tip = await self._store.tip(tip_id)
        if tip is None:
            raise TriageError("not_found")
        return tip

    async def tip_by_code(self, typed: str) -> TipRecord | None:
        code = normalise_code(typed)
        if code is None:
            return None
        return await self._store.tip_by_code(code)

    async def history(self, tip_id: int) -> list[EventRecord]:
        return await self._store.events(tip_id)

    async def pictures(self, tip_id: int) -> list[PictureRecord]:
        """The tip's own pictures (not those of the reporter's answers), in order."""
        return await self._store.pictures(tip_id, below_position=ANSWER_PICTURES_FROM)

    async def queue(self, chat_id: int) -> list[TipRecord]:
        """Open tips owned by the commune or province this group serves: urgent first,
        then oldest first."""
        link = await self._store.link_of_chat(chat_id)
        if link is None:
            return []
        return await self._store.open_tips(*link, OPEN_STATUSES)

    async def active_card(self, tip_id: int, chat_id: int, message_id: int) -> bool:
        return await self._store.active_card(tip_id, chat_id, message_id)

    async def has_active_card_in(self, tip_id: int, chat_id: int) -> bool:
        return await self._store.has_active_card_in(tip_id, chat_id)

    async def card_tip(self, chat_id: int, message_id: int) -> TipRecord | None:
        """The tip whose active card (or card photo) this group message is."""
        return await self._store.card_tip(chat_id, message_id)

    # --- who may act ---------------------------------------------------------------------

    async def may_act(self, tip: TipRecord, user_id: int) -> bool:
        """Admins; members of the group of the tip's commune; members of its province group."""
        if user_id in self._admin_ids:
            return True
        for chat_id in await self._store.chats_of_targets(groups_that_may_act(tip)):
            if await self._membership.is_member(chat_id, user_id):
                return True
        return False

    async def can_see_in(self, tip: TipRecord, chat_id: int) -> bool:
        """A group may see a tip of its commune or province (no cross-commune leaks)."""
        return may_see(await self._store.link_of_chat(chat_id), tip)

    async def record_refusal(self, tip_id: int, action: str, *, by: int) -> None:
        """A refused attempt: audited and logged without the presser's identity. One event
        per person and tip a minute (``by`` is only a key in memory, never stored), so a
        modified client pressing forged buttons cannot flood a tip's history."""
        key = (tip_id, by)
        if key in self._recent_refusals:
            log.info("triage action refused again", extra={"tip_id": tip_id, "event": action})
            return
        self._recent_refusals[key] = True
        async with self._changing() as unit:
            await unit.add_event(tip_id, "refused", actor_kind="unknown",
                                 details=json.dumps({"action": action}))
        log.info("triage action refused", extra={"tip_id": tip_id, "event": action})

    # --- changes ---------------------------------------------------------------------------

    async def act(
        self, tip_id: int, action: Action, officer: Officer, *, choice: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> TipRecord:
        """One guarded status change with its audit row, card refresh and reporter notice."""
        now = self._clock.now()
        values = change_values(action, officer, choice, now)
        sources, target = TRANSITIONS[action]
        async with self._changing() as unit:
            if not await unit.guarded_update(tip_id, sources, values):
                raise TriageError("conflict", await unit.tip(tip_id))
            details = {"from": "/".join(sorted(sources)), "to": target} | (extra or {})
            if choice:
                details["choice"] = choice
            await unit.add_event(tip_id, str(action), actor_kind="officer", actor_id=officer.id,
                                 actor_name=officer.name, details=json.dumps(details), at=now)
            await _queue(unit, tip_id, CardRefreshPayload())
            if action in (Action.ACK, Action.DONE, Action.INVALID):
                notice: NoticeKind = "ack" if action == Action.ACK else \
                    "done" if action == Action.DONE else "invalid"
                await _queue(unit, tip_id, ReporterNoticePayload(notice=notice, choice=choice))
            if action in (Action.DONE, Action.INVALID):
                await unit.purge_reporter_after(tip_id, now + self._retention)
            tip = await unit.tip(tip_id)
        log.info("tip status changed", extra={"tip_id": tip_id, "event": str(action)})
        assert tip is not None
        return tip

    async def transfer(
        self, tip_id: int, officer: Officer, *, to_commune: int | None
    ) -> TipRecord:
        """Move the tip to another commune's queue (``to_commune``) or up to its province
        group (None). It needs acknowledging again there; deadlines keep running from the
        original receipt time."""
        sources, target = TRANSITIONS[Action.TRANSFER]
        assert target is not None
        now = self._clock.now()
        values: dict[str, Any] = {"status": target, "updated_at": now, "owner_id": None,
                                  "owner_name": None, "acknowledged_at": None}
        destination: dict[str, Any] = {"province_only": True}
        if to_commune is not None:
            commune = self._directory.commune(to_commune)
            if commune is None:
                raise TriageError("bad_choice")
            values |= {"commune_code": commune.code, "province_code": commune.province_code}
            destination = {"commune": commune.code}
        async with self._changing() as unit:
            before = await unit.tip(tip_id)
            if before is None:
                raise TriageError("not_found")
            if to_commune is not None and to_commune == before.commune_code:
                raise TriageError("bad_choice")
            if not await unit.guarded_update(tip_id, sources, values, count_transfer=True):
                raise TriageError("conflict", await unit.tip(tip_id))
            for chat_id, message_id in await unit.retire_cards(tip_id):
                await _queue(unit, tip_id, CardRetirePayload(
                    chat_id=chat_id, message_id=message_id, to=to_commune))
            await unit.add_event(
                tip_id, "transfer", actor_kind="officer", actor_id=officer.id,
                actor_name=officer.name, at=now,
                details=json.dumps({"from_commune": before.commune_code} | destination))
            await _queue(unit, tip_id, TipCardPayload(
                route_commune=to_commune, route_province_only=to_commune is None))
            tip = await unit.tip(tip_id)
        assert tip is not None
        return tip

    async def declare_complex(
        self, tip_id: int, officer: Officer, reason: str
    ) -> tuple[TipRecord, DeadlineChange]:
        """Record that the case is complex (BLTTHS Art. 147(2)): settlement 2 months from
        receipt. ``DeadlineRefusal`` (nothing changed) when the rules say no."""
        return await self._change_deadline(tip_id, officer, "complex", reason.strip(), None)

    async def extend(
        self, tip_id: int, officer: Officer, days: int, reason: str
    ) -> tuple[TipRecord, DeadlineChange]:
        """The one extension of the settlement deadline (Art. 147(3)) by ``days``.
        ``DeadlineRefusal`` (nothing changed) when the rules say no."""
        return await self._change_deadline(tip_id, officer, "extend", reason.strip(), days)

    def deadline_check(self, tip: TipRecord, event: str, days: int | None = None,
                       reason: str = "-") -> DeadlineChange:
        """What the change would do now, or the ``DeadlineRefusal`` (a button checks before
        it asks for the reason)."""
        now = self._clock.now()
        if event == "complex":
            return self._deadlines.complex_case(tip, now, reason)
        assert days is not None
        return self._deadlines.extension(tip, days, now, reason)

    async def _change_deadline(
        self, tip_id: int, officer: Officer, event: str, reason: str, days: int | None
    ) -> tuple[TipRecord, DeadlineChange]:
        reason = reason[:1000]
        now = self._clock.now()
        values: dict[str, Any] = {"updated_at": now}
        if event == "complex":
            values |= {"complex_at": now, "complex_reason": reason}
        else:
            values |= {"extended_at": now, "extension_days": days, "extension_reason": reason}
        once = "complex_at" if event == "complex" else "extended_at"
        async with self._changing() as unit:
            for _attempt in range(DEADLINE_ATTEMPTS):
                # read, check, write only if the deadline read is still the one in force: a
                # change made meanwhile (the other of complex/extension, or the same one) is
                # read again, and either refused or built on
                tip = await unit.tip(tip_id)
                if tip is None:
                    raise TriageError("not_found")
                change = self.deadline_check(tip, event, days, reason)
                if await unit.guarded_deadline(tip_id, OPEN_STATUSES,
                                               values | {"settle_due_at": change.new_due},
                                               was=change.old_due, once=once):
                    break
            else:
                raise TriageError("conflict", await unit.tip(tip_id))
            details: dict[str, Any] = {"reason": reason, "old_due": change.old_due.isoformat(),
                                       "new_due": change.new_due.isoformat()}
            if days is not None:
                details["days"] = days
            await unit.add_event(tip_id, event, actor_kind="officer", actor_id=officer.id,
                                 actor_name=officer.name, at=now,
                                 details=json.dumps(details, ensure_ascii=False))
            await _queue(unit, tip_id, CardRefreshPayload())
            changed = await unit.tip(tip_id)
        assert changed is not None
        log.info("settlement deadline changed", extra={"tip_id": tip_id, "event": event})
        return changed, change

    async def ask(self, tip_id: int, officer: Officer, question: str) -> None:
        """Relay a question to the reporter (through the outbox, in their language)."""
        question = question.strip()[:3000]
        if not question:
            raise TriageError("bad_choice")
        async with self._changing() as unit:
            tip = await unit.tip(tip_id)
            if tip is None:
                raise TriageError("not_found")
            if tip.status not in TRANSITIONS[Action.ASK][0]:
                raise TriageError("conflict", tip)
            await unit.add_event(
                tip_id, "question", actor_kind="officer", actor_id=officer.id,
                actor_name=officer.name,
                details=json.dumps({"text": question}, ensure_ascii=False))
            await _queue(unit, tip_id, ReporterNoticePayload(notice="question", text=question))

    async def note(self, tip_id: int, officer: Officer, text: str) -> None:
        """An internal note: stored and shown on /tip, never relayed."""
        async with self._changing() as unit:
            await unit.add_event(
                tip_id, "note", actor_kind="officer", actor_id=officer.id,
                actor_name=officer.name,
                details=json.dumps({"text": text[:3000]}, ensure_ascii=False))

    async def add_card(self, tip_id: int, chat_id: int, message_id: int) -> None:
        """A card posted again (/tip): it is live too, and edited with the others."""
        async with self._changing() as unit:
            await unit.add_card(tip_id, chat_id, message_id)

    async def remember_prompt(
        self, tip_id: int, chat_id: int, message_id: int, purpose: str, officer: Officer
    ) -> None:
        async with self._changing() as unit:
            await unit.add_prompt(tip_id, side="group", key=str(chat_id),
                                  message_id=message_id, purpose=purpose,
                                  officer_id=officer.id)

    async def consume_prompt(self, prompt_id: int) -> bool:
        """A prompt is answered once: True for the first answer only."""
        return await self._store.consume_prompt(prompt_id)

    async def prompt(self, chat_id: int, message_id: int) -> PromptRecord | None:
        return await self._store.prompt(chat_id, message_id)

    # --- the reporter's side ---------------------------------------------------------------

    async def question_for_reply(self, pseudonym: str, message_id: int) -> ReporterAnswer | None:
        """The tip whose police question this reporter is replying to."""
        found = await self._store.question_for_reply(pseudonym, message_id)
        return ReporterAnswer(*found) if found is not None else None

    async def own_tip(self, pseudonym: str, typed_code: str) -> ReporterAnswer | None:
        """The tip with this code if this reporter sent it (others learn nothing)."""
        code = normalise_code(typed_code)
        if code is None:
            return None
        found = await self._store.own_tip(pseudonym, code)
        return ReporterAnswer(*found) if found is not None else None

    async def reporter_answer(
        self, tip_id: int, text: str | None, photos: list[tuple[bytes, int, int]]
    ) -> None:
        """The reporter's answer goes to the group as a reply to the card."""
        async with self._changing() as unit:
            photo_ids = [
                await unit.add_photo(tip_id, position=ANSWER_PICTURES_FROM + index, data=data,
                                     width=width, height=height)
                for index, (data, width, height) in enumerate(photos)
            ]
            await unit.add_event(tip_id, "answer", actor_kind="resident", details=json.dumps(
                {"text": text, "photos": len(photos)}, ensure_ascii=False))
            await _queue(unit, tip_id, GroupRelayPayload(text=text, photo_ids=tuple(photo_ids)))

    # --- helpers -----------------------------------------------------------------------------

    def _changing(self) -> AbstractAsyncContextManager[TriageUnitLike]:
        return self._store.changing()


def transfer_origin(events: list[EventRecord]) -> int | None:
    """The commune a transferred tip came from (its last transfer), if any."""
    for event in reversed(events):
        if event.event == "transfer":
            origin = json.loads(event.details or "{}").get("from_commune")
            return origin if isinstance(origin, int) else None
    return None


async def _queue(unit: TriageUnitLike, tip_id: int, payload: Payload) -> None:
    """An outbox row of the payload's kind (sent by the outbox worker)."""
    await unit.add_outbox(str(payload.kind), tip_id, payload.to_json())


__all__ = ["ANSWER_PICTURES_FROM", "Membership", "Officer", "ReporterAnswer", "TriageError",
           "TriageService", "change_values", "groups_that_may_act", "may_see",
           "transfer_origin"]
