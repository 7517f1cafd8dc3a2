"""After triage: every live card of a tip edited to its current state, and an old card
retired after a transfer."""

from __future__ import annotations

import logging

from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import CardRefreshPayload, CardRetirePayload, OutboxKind
from bot.domain.outbox.transport import ChatGone

log = logging.getLogger("bot.domain.outbox")


class CardRefreshDelivery(Delivery[CardRefreshPayload]):
    kind = OutboxKind.CARD_REFRESH

    async def deliver(self, job: Job[CardRefreshPayload]) -> None:
        """Edit every active card of the tip to its current state ("not modified" = done)."""
        assert job.row.tip_id is not None
        tip = await self.desk.store.tip(job.row.tip_id)
        assert tip is not None
        renderer = self.desk.renderer
        origin = await self.desk.store.transfer_origin(job.row.tip_id) if tip.transfers else None
        text = renderer.render(tip, transferred_from=origin)[0]
        for card in await self.desk.store.live_cards(job.row.tip_id):
            try:
                await self.desk.transport.edit_html(
                    card.chat_id, card.message_id, text, buttons=renderer.buttons(tip)
                )
            except ChatGone:
                log.warning("card's group is gone", extra={"tip_id": tip.id})


class CardRetireDelivery(Delivery[CardRetirePayload]):
    kind = OutboxKind.CARD_RETIRE

    async def deliver(self, job: Job[CardRetirePayload]) -> None:
        """An old card after a transfer: says where the tip went, buttons removed."""
        assert job.row.tip_id is not None
        tip = await self.desk.store.tip(job.row.tip_id)
        assert tip is not None
        try:
            await self.desk.transport.edit_html(
                job.payload.chat_id, job.payload.message_id,
                self.desk.renderer.retired(tip, job.payload.to), buttons=None,
            )
        except ChatGone:
            log.warning("retired card's group is gone", extra={"tip_id": tip.id})
