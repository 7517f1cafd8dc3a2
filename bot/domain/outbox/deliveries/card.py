"""The tip card in its group, then its photos and its location as replies to it.

A tip card is never given up: a group that moved to a supergroup is followed, a gone group
is routed around (commune -> province -> ops), and a tip with nowhere to go waits, logged
loudly, until a group is linked."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.domain.cards import TipView
from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import OutboxKind, TipCardPayload
from bot.domain.outbox.store import CardPosted, PhotoData
from bot.domain.outbox.transport import ChatGone, ChatMoved, RetryLater

log = logging.getLogger("bot.domain.outbox")

NO_DESTINATION_RETRY_SECONDS = 60.0


class TipCardDelivery(Delivery[TipCardPayload]):
    kind = OutboxKind.TIP_CARD

    async def deliver(self, job: Job[TipCardPayload]) -> None:
        while True:
            try:
                await self._attempt(job)
                return
            except ChatMoved as moved:
                await self.desk.chat_moved(moved.old_chat_id, moved.new_chat_id)
                await self.desk.save(job, replace(job.payload, chat_id=moved.new_chat_id))
            except ChatGone:
                await self._route_around(job)
                job.resend = False  # the next group never had this card
            job.tip = job.destination = None  # read again for the next try

    async def _attempt(self, job: Job[TipCardPayload]) -> None:
        if job.resend and job.payload.card is None:
            job.payload = replace(job.payload, resend=True)
        assert job.row.tip_id is not None
        tip, progress = job.tip, job.payload
        photos: list[PhotoData] = []
        if tip is not None and (tip.photo_count == 0 or progress.photos) \
                and (job.destination is not None or progress.chat_id is not None):
            if progress.chat_id is None:  # all read when the row was claimed
                assert job.destination is not None
                if job.destination.chat_id is None:
                    log.error("tip has no destination: link a group", extra={"tip_id": tip.id})
                    raise RetryLater("no group linked", NO_DESTINATION_RETRY_SECONDS)
                job.payload = replace(progress, chat_id=job.destination.chat_id,
                                      scope=job.destination.scope)
        else:
            tip, photos = await self._read_tip(job)
        await self._send(job, tip, photos)

    async def _read_tip(self, job: Job[TipCardPayload]) -> tuple[TipView, list[PhotoData]]:
        assert job.row.tip_id is not None
        progress = job.payload
        tip, destination, photos = await self.desk.store.card_material(
            job.row.tip_id,
            router=self.desk.router if progress.chat_id is None else None,
            skip_chat_ids=frozenset(progress.gone),
            province_only=progress.route_province_only,
        )
        if destination is not None:
            if destination.chat_id is None:
                log.error("tip has no destination: link a group", extra={"tip_id": tip.id})
                if progress.gone:  # try the groups again next time round
                    await self.desk.save(job, replace(progress, gone=()))
                raise RetryLater("no group linked", NO_DESTINATION_RETRY_SECONDS)
            job.payload = replace(progress, chat_id=destination.chat_id, scope=destination.scope)
        return tip, photos

    async def _send(self, job: Job[TipCardPayload], tip: TipView, photos: list[PhotoData]) -> None:
        transport, renderer = self.desk.transport, self.desk.renderer
        chat_id = job.payload.chat_id
        assert chat_id is not None and tip.id is not None
        if job.payload.card is None:
            ids = []
            origin = await self.desk.store.transfer_origin(tip.id) if tip.transfers else None
            parts = renderer.render(tip, queue_scope=job.payload.scope,
                                    resent=job.payload.resend, transferred_from=origin)
            unsent = job.row.payload  # as stored: no card yet
            for index, part in enumerate(parts):
                buttons = renderer.buttons(tip) if index == 0 else None
                try:
                    ids.append(await transport.send_html(chat_id, part, buttons=buttons))
                except Exception as error:
                    if not ids:
                        raise
                    # its first part is in the group already: the next attempt is a repeat
                    raise RetryLater(f"card part {index + 1} not sent: {type(error).__name__}",
                                     maybe_sent=True) from error
            job.payload = replace(job.payload, resend=False, card=tuple(ids))
            # nothing else to send: the row is finished in the same write
            last = not photos and (tip.latitude is None or tip.longitude is None)
            try:
                await self._record(job, tip.id, chat_id, ids[0], finished=last)
            except Exception as error:
                # posted, but the record of it was not written: the row still says "no card",
                # so the next attempt posts it again, marked as a possible repeat
                job.row.payload = unsent
                raise RetryLater(f"card posted, not recorded: {type(error).__name__}",
                                 maybe_sent=True) from error
        assert job.payload.card is not None
        card_id = job.payload.card[0]
        if photos and not job.payload.photos:
            captions = [renderer.photo_caption(tip.code, i + 1, len(photos), photo.caption)
                        for i, photo in enumerate(photos)]
            await transport.send_photos(
                chat_id, [p.data for p in photos], captions, reply_to=card_id
            )
            await self.desk.save(job, replace(job.payload, photos=True))
        if tip.latitude is not None and tip.longitude is not None and not job.payload.location:
            await transport.send_location(
                chat_id, tip.latitude, tip.longitude, reply_to=card_id
            )
            await self.desk.save(job, replace(job.payload, location=True))

    async def _record(
        self, job: Job[TipCardPayload], tip_id: int, chat_id: int, message_id: int, *,
        finished: bool,
    ) -> None:
        scope = job.payload.scope or "none"
        job.row.payload = job.payload.to_json()
        await self.desk.card_posted(CardPosted(
            row_id=job.row.id, tip_id=tip_id, chat_id=chat_id, message_id=message_id,
            scope=scope, payload=job.row.payload, finished=finished,
        ))
        if finished:
            job.row.status = "sent"
        log.info("tip card delivered", extra={"tip_id": tip_id, "scope": scope})

    async def _route_around(self, job: Job[TipCardPayload]) -> None:
        gone = job.payload.chat_id
        skipped = {*job.payload.gone, *([gone] if gone is not None else [])}
        await self.desk.save(job, replace(
            job.payload, gone=tuple(sorted(skipped)),
            chat_id=None, scope=None, card=None, photos=False, location=False, resend=False,
        ))
        assert job.row.tip_id is not None
        await self.desk.store.rerouted(job.row.tip_id, gone)
        log.warning("group unreachable, routing around it",
                    extra={"tip_id": job.row.tip_id, "chat_id": gone})
