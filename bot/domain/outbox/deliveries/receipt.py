"""The receipt the confirm handler could not give: the same words, through the sealed
reply address. A receipt row stands outside its tip's line (see the worker)."""

from __future__ import annotations

import logging

from bot.domain.outbox.deliveries.base import Delivery, Job
from bot.domain.outbox.payloads import OutboxKind, ReceiptPayload
from bot.domain.outbox.transport import ChatGone
from bot.domain.sealing import SealBroken
from bot.i18n import DEFAULT_LANGUAGE

log = logging.getLogger("bot.domain.outbox")


class ReceiptDelivery(Delivery[ReceiptPayload]):
    kind = OutboxKind.RECEIPT

    async def deliver(self, job: Job[ReceiptPayload]) -> None:
        assert job.row.tip_id is not None
        tip, reporter = await self.desk.store.reporter(job.row.tip_id)
        if tip is None or reporter is None:  # the reply link was purged: nobody to tell
            return
        notices = self.desk.notices
        text = notices.receipt(tip.code, reporter.language or DEFAULT_LANGUAGE,
                               duplicate=job.payload.duplicate)
        try:
            address = notices.open(reporter.sealed_chat)
            await self.desk.transport.send_to_reporter(address, text, html=True)
        except (ChatGone, SealBroken):  # blocked the bot since: the code is in /mytips
            log.info("receipt undeliverable", extra={"tip_id": job.row.tip_id, "status": "gone"})
            await self.desk.mark(job.row, "failed")
            return
        log.info("receipt sent by the outbox", extra={"tip_id": job.row.tip_id})
