"""Webhook intake: persist first, then answer 200, then process; dedupe by update_id.

An update is written to ``inbound_updates`` before Telegram gets its 200, so a crash after
the 200 does not lose it: at start-up, unhandled rows are queued again. When every handler
group has run, the payload (which holds platform ids) is wiped from the row.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from telegram import Update
from telegram.ext import TypeHandler

from bot.context import TiplineApplication, TiplineContext
from storage.db import Database
from storage.models import InboundUpdate, utcnow

log = logging.getLogger(__name__)
HANDLED_MARKER_GROUP = 1000  # runs after every other handler group


class WebhookInbox:
    def __init__(self, db: Database, application: TiplineApplication) -> None:
        self._db = db
        self._application = application

    async def attach(self) -> None:
        """Mark updates handled after all groups ran; requeue what a crash left behind."""
        self._application.add_handler(TypeHandler(Update, self._mark_handled), HANDLED_MARKER_GROUP)
        async with self._db.session() as session:
            pending = (
                await session.exec(
                    select(InboundUpdate)
                    .where(col(InboundUpdate.handled_at).is_(None))
                    .order_by(col(InboundUpdate.update_id))
                )
            ).all()
        for row in pending:
            if row.payload:
                await self._enqueue(json.loads(row.payload))
        if pending:
            log.info("requeued unhandled webhook updates", extra={"count": len(pending)})

    async def receive(self, payload: dict[str, Any]) -> bool:
        """Persist and queue one update; False if it was a duplicate."""
        update_id = payload.get("update_id")
        if not isinstance(update_id, int):
            raise ValueError("update without an integer update_id")
        try:
            async with self._db.transaction() as session:
                session.add(InboundUpdate(update_id=update_id, payload=json.dumps(payload)))
        except IntegrityError:
            log.info("duplicate webhook update ignored", extra={"update_id": update_id})
            return False
        if not self._application.running:
            return True  # stored: queued again at the next start (see attach)
        await self._enqueue(payload)
        return True

    async def _enqueue(self, payload: dict[str, Any]) -> None:
        update = Update.de_json(payload, self._application.bot)
        await self._application.update_queue.put(update)

    async def _mark_handled(self, update: Update, _context: TiplineContext) -> None:
        async with self._db.transaction() as session:
            await session.exec(
                sql_update(InboundUpdate)
                .where(col(InboundUpdate.update_id) == update.update_id)
                .values(handled_at=utcnow(), payload=None)
            )
