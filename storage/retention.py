"""The retention policy's deletes (bot/domain/retention.py says what goes, when)."""

from __future__ import annotations

import logging

from sqlalchemy import delete, update
from sqlmodel import col, select

from bot.domain.retention import HANDLED_UPDATES_KEPT, UNLINKED_AT, UNLINKED_BY, UNLINKED_CODE
from storage.db import Database
from storage.models import Ban, InboundUpdate, RelayMessage, Tip, TipReporter, utcnow

log = logging.getLogger(__name__)


async def purge_reporter_links(db: Database) -> int:
    """Reporter links past retention, with the record of which relayed question went to
    which pseudonym (it would tie the tip to the person as well)."""
    due = select(TipReporter.tip_id).where(
        col(TipReporter.purge_after).is_not(None), col(TipReporter.purge_after) <= utcnow()
    )
    async with db.transaction() as session:
        await session.exec(
            delete(RelayMessage).where(
                col(RelayMessage.side) == "reporter", col(RelayMessage.tip_id).in_(due)
            )
        )
        result = await session.exec(
            delete(TipReporter).where(
                col(TipReporter.purge_after).is_not(None), col(TipReporter.purge_after) <= utcnow()
            )
        )
        linked_codes = select(Tip.code).join(TipReporter, col(TipReporter.tip_id) == col(Tip.id))
        await session.exec(
            update(Ban)  # also bans whose tip lost its link before this was done
            .where(col(Ban.tip_code) != UNLINKED_CODE, col(Ban.tip_code).not_in(linked_codes))
            .values(tip_code=UNLINKED_CODE, banned_at=UNLINKED_AT, banned_by=UNLINKED_BY)
        )
    count = int(result.rowcount or 0)
    if count:
        log.info("reporter links purged", extra={"count": count})
    return count


async def purge_handled_updates(db: Database) -> int:
    async with db.transaction() as session:
        result = await session.exec(
            delete(InboundUpdate).where(
                col(InboundUpdate.handled_at).is_not(None),
                col(InboundUpdate.handled_at) < utcnow() - HANDLED_UPDATES_KEPT,
            )
        )
    return int(result.rowcount or 0)
