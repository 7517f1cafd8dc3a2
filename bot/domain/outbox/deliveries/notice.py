"""The reporter told of a status change or a police question, in their language. A
reporter who cannot be reached any more is audited once, and each live card's group is
told once, however often the row is retried."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.domain.cards import TipView
from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import OutboxKind, ReporterNoticePayload, UnreachableWhy
from bot.domain.outbox.transport import ChatGone
from bot.domain.sealing import SealBroken
from bot.i18n import DEFAULT_LANGUAGE

log = logging.getLogger("bot.domain.outbox")


class ReporterNoticeDelivery(Delivery[ReporterNoticePayload]):
    kind = OutboxKind.REPORTER_NOTICE

    async def deliver(self, job: Job[ReporterNoticePayload]) -> None:
        tip_id = job.row.tip_id
        assert tip_id is not None
        tip, reporter = await self.desk.store.reporter(tip_id)
        assert tip is not None
        notices = self.desk.notices
        language = reporter.language if reporter and reporter.language else DEFAULT_LANGUAGE
        text = notices.render(tip, job.payload, language)
        if reporter is None:
            await self._unreachable(job, tip, "purged")
            return
        if job.payload.unreachable:  # found out on an earlier attempt
            await self._unreachable(job, tip, job.payload.unreachable)
            return
        try:
            address = notices.open(reporter.sealed_chat)
            message_id = await self.desk.transport.send_to_reporter(address, text)
        except (ChatGone, SealBroken):
            await self._unreachable(job, tip, "gone")
            return
        question = job.payload.notice == "question"
        await self.desk.store.reporter_notified(
            tip_id, notice=job.payload.notice,
            question_to=(reporter.pseudonym, message_id) if question else None,
        )

    async def _unreachable(
        self, job: Job[ReporterNoticePayload], tip: TipView, why: UnreachableWhy
    ) -> None:
        assert tip.id is not None
        if not job.payload.unreachable:
            job.payload = replace(job.payload, unreachable=why)
            job.row.payload = job.payload.to_json()
            await self.desk.store.reporter_unreachable(
                tip.id, job.row.id, why=why, payload=job.row.payload
            )
            log.info("reporter unreachable", extra={"tip_id": tip.id, "status": why})
        for card in await self.desk.store.live_cards(tip.id):
            if card.id in job.payload.warned:
                continue
            try:
                await self.desk.transport.send_html(
                    card.chat_id, self.desk.notices.unreachable(tip), reply_to=card.message_id
                )
            except ChatGone:
                log.warning("card's group is gone", extra={"tip_id": tip.id})
            await self.desk.save(job, replace(job.payload,
                                              warned=job.payload.warned | {card.id}))
