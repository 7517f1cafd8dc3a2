"""Retention: what is deleted, when. The link back to a reporter (pseudonym + sealed chat)
goes ``retention_days`` after the tip is closed; expired drafts and handled webhook payloads
go too. Tips and their audit trail stay (they hold no identity)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select

from storage.db import Database
from storage.models import InboundUpdate, RelayMessage, TipReporter, utcnow

log = logging.getLogger(__name__)
HANDLED_UPDATES_KEPT = timedelta(days=2)  # long enough to dedupe Telegram's redeliveries


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
