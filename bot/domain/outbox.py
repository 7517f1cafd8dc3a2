"""The persistent outbox: every message the bot owes a police group is a row first.

A worker sends due rows through a ``Transport`` (Telegram today), records progress of
multi-part sends (card, photos, location) step by step, and retries with back-off on
network errors, 5xx and 429 (honouring retry_after). Rows survive restarts; a tip card is
never given up: a gone group is routed around (commune -> province -> ops), and a tip with
nowhere to go waits, logged loudly, until a group is linked.

Each step is sent at least once and recorded right after; a crash in between the send and
the record can repeat that one step, never skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import col, select

from bot.domain.cards import CardRenderer, photo_caption
from bot.domain.notices import ReporterNotices
from bot.domain.routing import Router
from bot.domain.sealing import ReplyAddress, SealBroken
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

LEASE = timedelta(minutes=2)  # a claimed row is retried after this if its worker died
MAX_BACKOFF_SECONDS = 300.0
NO_DESTINATION_RETRY_SECONDS = 60.0


class DeliveryError(Exception):
    """Base of what a transport may raise."""


class RetryLater(DeliveryError):
    def __init__(self, reason: str, seconds: float | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds  # None: use the back-off schedule


class ChatGone(DeliveryError):
    """The bot was kicked/blocked or the chat does not exist."""


class ChatMoved(DeliveryError):
    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"chat moved to {new_chat_id}")
        self.new_chat_id = new_chat_id


Buttons = list[list[tuple[str, str]]]  # rows of (label, callback data)


class Transport(Protocol):
    async def send_html(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        buttons: Buttons | None = None,
    ) -> int: ...

    async def edit_html(
        self, chat_id: int, message_id: int, text: str, *, buttons: Buttons | None = None
    ) -> None: ...

    async def send_to_reporter(self, address: ReplyAddress, text: str) -> int: ...

    async def send_photos(
        self, chat_id: int, photos: Sequence[bytes], captions: Sequence[str],
        *, reply_to: int | None = None,
    ) -> list[int]: ...

    async def send_location(
        self, chat_id: int, latitude: float, longitude: float, *, reply_to: int | None = None
    ) -> int: ...


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        renderer: CardRenderer,
        router: Router,
        notices: ReporterNotices,
        *,
        poll_interval: float = 2.0,
        concurrency: int = 8,
        batch_size: int = 50,
    ) -> None:
        self._db = db
        self._transport: Transport | None = None
        self._renderer = renderer
        self._router = router
        self._notices = notices
        self._poll_interval = poll_interval
        self._concurrency = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = OutboxStats()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wakeup.set()

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("the outbox has no transport yet: call start()")
        return self._transport

    def start(self, transport: Transport) -> None:
        self._transport = transport
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.drain()
            except Exception:
                log.exception("outbox pass failed")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
            self._wakeup.clear()

    async def drain(self) -> int:
        """Process the rows due now; return how many were attempted."""
        async with self._db.session() as session:
            due = (await session.exec(
                select(OutboxMessage.id, OutboxMessage.tip_id).where(
                    col(OutboxMessage.status) == "pending",
                    col(OutboxMessage.next_attempt_at) <= utcnow(),
                ).order_by(col(OutboxMessage.id)).limit(self._batch_size)
            )).all()
        by_tip: dict[int | None, list[int]] = {}
        for row_id, tip_id in due:
            if row_id is not None:
                by_tip.setdefault(tip_id, []).append(row_id)
        # one tip's messages in order (card before its refresh, "acknowledged" before
        # "processed"); different tips side by side
        results = await asyncio.gather(*(self._process_in_order(ids) for ids in by_tip.values()))
        return sum(results)

    async def _process_in_order(self, row_ids: list[int]) -> int:
        done = 0
        for row_id in row_ids:
            attempted = await self._process(row_id)
            done += attempted
            if attempted and not await self._was_sent(row_id):
                break  # a later message of this tip waits for the earlier one
        return done

    async def _was_sent(self, row_id: int) -> bool:
        async with self._db.session() as session:
            row = await session.get(OutboxMessage, row_id)
        return row is not None and row.status == "sent"

    async def _process(self, row_id: int) -> int:
        async with self._concurrency:
            row = await self._claim(row_id)
            if row is None:
                return 0
            try:
                await self._deliver(row)
            except RetryLater as error:
                await self._reschedule(row, str(error), error.seconds)
            except Exception as error:  # never lose the row: back off and alert via logs
                log.exception("outbox delivery failed", extra={"outbox_id": row.id})
                await self._reschedule(row, f"{type(error).__name__}: {error}", None)
            return 1

    async def _claim(self, row_id: int) -> OutboxMessage | None:
        """Take the row with a lease (atomic), so two workers never send it at once."""
        now = utcnow()
        async with self._db.transaction() as session:
            result = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == "pending",
                       col(OutboxMessage.next_attempt_at) <= now)
                .values(next_attempt_at=now + LEASE, attempts=OutboxMessage.attempts + 1)
            )
            if result.rowcount != 1:
                return None
            return await session.get(OutboxMessage, row_id)

    async def _reschedule(self, row: OutboxMessage, reason: str, seconds: float | None) -> None:
        delay = seconds if seconds is not None else min(2.0 ** row.attempts, MAX_BACKOFF_SECONDS)
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(next_attempt_at=utcnow() + timedelta(seconds=delay),
                        last_error=reason[:300])
            )
        self.stats.retried += 1
        log.warning("outbox delivery postponed", extra={
            "outbox_id": row.id, "tip_id": row.tip_id, "attempt": row.attempts,
            "retry_after": round(delay, 1), "error_type": reason[:80],
        })

    async def _save_progress(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id).values(payload=json.dumps(progress))
            )
        row.payload = json.dumps(progress)

    async def _deliver(self, row: OutboxMessage) -> None:
        progress: dict[str, Any] = json.loads(row.payload or "{}")
        if row.kind == "tip_card":
            while True:
                try:
                    await self._deliver_tip_card(row, progress)
                    break
                except ChatMoved as moved:
                    await self._follow_migration(row, progress, moved.new_chat_id)
                except ChatGone:
                    await self._route_around(row, progress)
        elif row.kind == "card_refresh":
            await self._refresh_cards(row)
        elif row.kind == "card_retire":
            await self._retire_card(row, progress)
        elif row.kind == "reporter_notice":
            await self._notify_reporter(row, progress)
        elif row.kind == "group_relay":
            await self._relay_to_group(row, progress)
        else:
            raise RuntimeError(f"unknown outbox kind {row.kind!r}")
        async with self._db.transaction() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(status="sent", sent_at=utcnow(), last_error=None)
            )
        self.stats.sent += 1

    async def _deliver_tip_card(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            assert tip is not None and tip.id is not None
            if progress.get("chat_id") is None:
                destination = await self._router.destination(
                    session, commune_code=tip.commune_code, province_code=tip.province_code,
                    skip_chat_ids=frozenset(progress.get("gone", [])),
                    province_only=bool(progress.get("route", {}).get("province_only")),
                )
                if destination.chat_id is None:
                    log.error("tip has no destination: link a group", extra={"tip_id": tip.id})
                    raise RetryLater("no group linked", NO_DESTINATION_RETRY_SECONDS)
                progress.update(chat_id=destination.chat_id, scope=destination.scope)
            photos = (await session.exec(
                select(Photo).where(col(Photo.tip_id) == tip.id).order_by(col(Photo.position))
            )).all() if tip.photo_count else []
        chat_id: int = progress["chat_id"]
        if "card" not in progress:
            ids = []
            parts = self._renderer.render(tip, queue_scope=progress["scope"])
            for index, part in enumerate(parts):
                buttons = self._renderer.buttons(tip) if index == 0 else None
                ids.append(await self.transport.send_html(chat_id, part, buttons=buttons))
            progress["card"] = ids
            await self._record_card(tip, chat_id, ids[0], progress)
        card_id = progress["card"][0]
        if photos and not progress.get("photos"):
            captions = [photo_caption(tip.code, i + 1, len(photos)) for i in range(len(photos))]
            await self.transport.send_photos(
                chat_id, [p.data for p in photos], captions, reply_to=card_id
            )
            progress["photos"] = True
            await self._save_progress(row, progress)
        if tip.latitude is not None and tip.longitude is not None and not progress.get("location"):
            await self.transport.send_location(
                chat_id, tip.latitude, tip.longitude, reply_to=card_id
            )
            progress["location"] = True
            await self._save_progress(row, progress)

    async def _record_card(
        self, tip: Tip, chat_id: int, message_id: int, progress: dict[str, Any]
    ) -> None:
        async with self._db.transaction() as session:
            assert tip.id is not None
            session.add(TipCard(tip_id=tip.id, chat_id=chat_id, message_id=message_id))
            await session.exec(
                update(Tip).where(col(Tip.id) == tip.id)
                .values(delivered_at=utcnow(), queue_scope=progress["scope"], queue_chat_id=chat_id)
            )
            session.add(TipEvent(tip_id=tip.id, actor_kind="system", event="delivered",
                                 details=json.dumps({"queue": progress["scope"]})))
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.tip_id) == tip.id, col(OutboxMessage.kind) == "tip_card")
                .values(payload=json.dumps(progress))
            )
        log.info("tip card delivered", extra={"tip_id": tip.id, "scope": progress["scope"]})

    async def _follow_migration(
        self, row: OutboxMessage, progress: dict[str, Any], new_chat_id: int
    ) -> None:
        old_chat_id = progress["chat_id"]
        async with self._db.transaction() as session:
            if await repo.link_by_chat(session, chat_id=new_chat_id) is None:
                await repo.move_link_chat(
                    session, old_chat_id=old_chat_id, new_chat_id=new_chat_id
                )
        progress["chat_id"] = new_chat_id
        await self._save_progress(row, progress)
        log.info("group migrated during delivery",
                 extra={"chat_id": old_chat_id, "new_chat_id": new_chat_id})

    async def _route_around(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        gone = progress.get("chat_id")
        progress["gone"] = sorted({*progress.get("gone", []), gone})
        for key in ("chat_id", "scope", "card", "photos", "location"):
            progress.pop(key, None)
        await self._save_progress(row, progress)
        assert row.tip_id is not None
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=row.tip_id, actor_kind="system",
                                 event="delivery_rerouted", details=json.dumps({"gone": gone})))
        log.warning("group unreachable, routing around it",
                    extra={"tip_id": row.tip_id, "chat_id": gone})

    # --- after triage: cards edited in place, the reporter told, answers relayed ----------

    async def _active_cards(self, tip_id: int) -> list[TipCard]:
        async with self._db.session() as session:
            return list((await session.exec(select(TipCard).where(
                TipCard.tip_id == tip_id, col(TipCard.active).is_(True)
            ))).all())

    async def _refresh_cards(self, row: OutboxMessage) -> None:
        """Edit every active card of the tip to its current state ("not modified" = done)."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
        assert tip is not None
        text = self._renderer.render(tip)[0]
        for card in await self._active_cards(row.tip_id):
            try:
                await self.transport.edit_html(
                    card.chat_id, card.message_id, text, buttons=self._renderer.buttons(tip)
                )
            except ChatGone:
                log.warning("card's group is gone", extra={"tip_id": tip.id})

    async def _retire_card(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        """An old card after a transfer: marked transferred, buttons removed."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
        assert tip is not None
        try:
            await self.transport.edit_html(
                progress["chat_id"], progress["message_id"],
                self._renderer.retired(tip, progress.get("to")),
                buttons=None,
            )
        except ChatGone:
            log.warning("retired card's group is gone", extra={"tip_id": tip.id})

    async def _notify_reporter(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            reporter = await session.get(TipReporter, row.tip_id)
            language = await self._notices.language_of(session, reporter)
        assert tip is not None
        text = self._notices.render(tip, progress, language)
        if reporter is None:
            await self._reporter_unreachable(tip, "purged")
            return
        try:
            address = self._notices.open(reporter.sealed_chat)
            message_id = await self.transport.send_to_reporter(address, text)
        except (ChatGone, SealBroken):
            await self._reporter_unreachable(tip, "gone")
            return
        async with self._db.transaction() as session:
            if progress.get("notice") == "question":
                session.add(RelayMessage(tip_id=row.tip_id, side="reporter",
                                         key=reporter.pseudonym, message_id=message_id,
                                         purpose="question"))
            session.add(TipEvent(tip_id=row.tip_id, actor_kind="system", event="reporter_notified",
                                 details=json.dumps({"notice": progress.get("notice")})))

    async def _reporter_unreachable(self, tip: Tip, why: str) -> None:
        assert tip.id is not None
        async with self._db.transaction() as session:
            session.add(TipEvent(tip_id=tip.id, actor_kind="system", event="reporter_unreachable",
                                 details=json.dumps({"why": why})))
        for card in await self._active_cards(tip.id):
            await self.transport.send_html(
                card.chat_id, self._notices.unreachable(tip), reply_to=card.message_id
            )
        log.info("reporter unreachable", extra={"tip_id": tip.id, "status": why})

    async def _relay_to_group(self, row: OutboxMessage, progress: dict[str, Any]) -> None:
        """The reporter's answer, as a reply to the card: text and sanitised photos only."""
        assert row.tip_id is not None
        async with self._db.session() as session:
            tip = await session.get(Tip, row.tip_id)
            photos = (await session.exec(
                select(Photo).where(col(Photo.id).in_(progress.get("photo_ids", [])))
                .order_by(col(Photo.position))
            )).all()
        assert tip is not None
        for card in await self._active_cards(row.tip_id):
            if not progress.get(f"text:{card.id}"):
                await self.transport.send_html(
                    card.chat_id, self._notices.answer_in_group(tip, progress.get("text")),
                    reply_to=card.message_id,
                )
                progress[f"text:{card.id}"] = True
                await self._save_progress(row, progress)
            if photos and not progress.get(f"photos:{card.id}"):
                captions = [photo_caption(tip.code, i + 1, len(photos)) for i in range(len(photos))]
                await self.transport.send_photos(
                    card.chat_id, [p.data for p in photos], captions, reply_to=card.message_id
                )
                progress[f"photos:{card.id}"] = True
                await self._save_progress(row, progress)
