"""A round's digest (reminders, escalations, a summary) in one group: its parts in order,
progress recorded after each, so a retry (a 429, a restart) posts only what is missing.

The parts were composed when the round was claimed (``bot/domain/rounds.py``); a digest is
not a tip card: it waits behind due cards (``storage/outbox_store.py`` orders them first),
and a group that is gone gets none (logged; the round is recorded as failed)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import DigestPayload, OutboxKind
from bot.domain.outbox.store import OutboxRow
from bot.domain.outbox.transport import ChatGone, ChatMoved, RetryLater

log = logging.getLogger("bot.domain.outbox")


class DigestDelivery(Delivery[DigestPayload]):
    kind = OutboxKind.DIGEST

    async def deliver(self, job: Job[DigestPayload]) -> None:
        payload = job.payload
        transport = self.desk.transport
        try:
            for index in range(payload.sent, len(payload.parts)):
                await transport.send_html(payload.chat_id, payload.parts[index])
                if index + 1 < len(payload.parts):  # the last one: the row is marked sent
                    payload = replace(payload, sent=index + 1)
                    await self.desk.save(job, payload)
        except ChatMoved as moved:  # follow the group to its supergroup id, then go again
            await self.desk.chat_moved(moved.old_chat_id, moved.new_chat_id)
            await self.desk.save(job, replace(payload, chat_id=moved.new_chat_id))
            raise RetryLater("group migrated to a supergroup", 0) from moved
        except ChatGone:
            log.warning("digest's group is gone: not sent", extra={"outbox_id": job.row.id})
            await self.desk.mark(job.row, "failed")
            await self._record(payload, "failed")
            return
        await self._record(payload, "sent")

    async def given_up(self, row: OutboxRow, payload: DigestPayload) -> None:
        await self._record(payload, "failed")

    async def _record(self, payload: DigestPayload, status: str) -> None:
        """The round's ledger row follows (bookkeeping only: a failure here must not make
        the outbox post the digest again)."""
        if payload.run is None:
            return
        try:
            await self.desk.store.round_delivered(payload.run, status=status,
                                                  at=datetime.now(UTC))
        except Exception:
            log.warning("could not record the round's digest as %s", status, exc_info=True)
