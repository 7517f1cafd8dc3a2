"""Retention: what is deleted, when. The link back to a reporter (pseudonym + sealed chat)
goes ``retention_days`` after the tip is closed; expired drafts and handled webhook payloads
go too. Tips and their audit trail stay (they hold no identity).

A ban stays (it works by pseudonym), but once the link of the tip it was made through is
purged, the ban keeps nothing else: its tip code would say "tip X came from pseudonym P", the
very link the purge removes, and its time and admin would pair it with the tip's
``reporter_banned`` audit event (which keeps who banned and when)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select

from storage.db import Database
from storage.models import Ban, InboundUpdate, RelayMessage, Tip, TipReporter, utcnow

log = logging.getLogger(__name__)
HANDLED_UPDATES_KEPT = timedelta(days=2)  # long enough to dedupe Telegram's redeliveries
# a ban once its tip's reporter link is purged: no tip code, no time, no admin
UNLINKED_CODE = ""
UNLINKED_AT = datetime(2000, 1, 1, tzinfo=UTC)
UNLINKED_BY = 0


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
