"""Webhook intake: persist first, then answer 200, then process; dedupe by update_id.

An update is written to ``inbound_updates`` before Telegram gets its 200, so a crash after
the 200 does not lose it: at start-up, unhandled rows are queued again. When every handler
group has run, the payload is wiped from the row.

The payload holds the sender's id, names and username (and the tip's text), so it is stored
sealed (Fernet under a key derived from TIPLINE_SECRET_KEY), never in clear: wiping a row
does not erase its bytes from SQLite's WAL and free pages (or PostgreSQL's WAL), and a copy
of the database files must not hold identities (tests/test_leaks.py carves them).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from telegram import Update
from telegram.ext import TypeHandler

from bot.context import TiplineApplication, TiplineContext
from bot.domain.identity import derive_key
from storage.db import Database
from storage.models import InboundUpdate, utcnow

log = logging.getLogger(__name__)
HANDLED_MARKER_GROUP = 1000  # runs after every other handler group


class WebhookInbox:
    def __init__(self, db: Database, application: TiplineApplication, secret: bytes) -> None:
        self._db = db
        self._application = application
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "webhook-payload")))

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
            payload = self._open(row.payload) if row.payload else None
            if payload is not None:
                await self._enqueue(payload)
            else:  # nothing to replay (sealed under another key?): it cannot be handled
                log.warning("stored webhook update unreadable, dropped",
                            extra={"update_id": row.update_id})
                await self._wipe(row.update_id)
        if pending:
            log.info("requeued unhandled webhook updates", extra={"count": len(pending)})

    async def receive(self, payload: dict[str, Any]) -> bool:
        """Persist and queue one update; False if it was a duplicate."""
        update_id = payload.get("update_id")
        if not isinstance(update_id, int):
            raise ValueError("update without an integer update_id")
        try:
            async with self._db.transaction(durable=True) as session:  # then the 200
                session.add(InboundUpdate(update_id=update_id, payload=self._seal(payload)))
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

    def _seal(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def _open(self, stored: str) -> dict[str, Any] | None:
        if stored.startswith("{"):  # stored in clear by an earlier version
            return dict(json.loads(stored))
        try:
            return dict(json.loads(self._fernet.decrypt(stored.encode())))
        except (InvalidToken, ValueError):
            return None

    async def _mark_handled(self, update: Update, _context: TiplineContext) -> None:
        await self._wipe(update.update_id)

    async def _wipe(self, update_id: int) -> None:
        async with self._db.transaction() as session:
            await session.exec(
                sql_update(InboundUpdate)
                .where(col(InboundUpdate.update_id) == update_id)
                .values(handled_at=utcnow(), payload=None)
            )
