"""The reporter's answer, as a reply to every live card: text and sanitised photos only."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import GroupRelayPayload, OutboxKind


class GroupRelayDelivery(Delivery[GroupRelayPayload]):
    kind = OutboxKind.GROUP_RELAY

    async def deliver(self, job: Job[GroupRelayPayload]) -> None:
        tip_id = job.row.tip_id
        assert tip_id is not None
        tip, photos = await self.desk.store.relay_material(tip_id, job.payload.photo_ids)
        assert tip is not None
        transport = self.desk.transport
        for card in await self.desk.store.live_cards(tip_id):
            if card.id not in job.payload.text_sent:
                await transport.send_html(
                    card.chat_id, self.desk.notices.answer_in_group(tip, job.payload.text),
                    reply_to=card.message_id,
                )
                await self.desk.save(job, replace(
                    job.payload, text_sent=job.payload.text_sent | {card.id}))
            if photos and card.id not in job.payload.photos_sent:
                captions = [self.desk.renderer.photo_caption(tip.code, i + 1, len(photos))
                            for i in range(len(photos))]  # the answer's text went above
                await transport.send_photos(
                    card.chat_id, [p.data for p in photos], captions, reply_to=card.message_id
                )
                await self.desk.save(job, replace(
                    job.payload, photos_sent=job.payload.photos_sent | {card.id}))
