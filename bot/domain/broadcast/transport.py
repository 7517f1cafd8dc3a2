"""What a broadcast sends through (Telegram: bot/telegram_broadcast.py). Errors are the
outbox's (``RetryLater`` for 429/5xx/network, ``ChatGone`` for 403 and "chat not found"),
plus ``Undeliverable`` for a refusal that is the message's fault, not the chat's."""

from __future__ import annotations

from typing import Protocol

from bot.domain.outbox.transport import ChatGone, DeliveryError, RetryLater
from bot.domain.sealing import ReplyAddress

__all__ = ["BroadcastTransport", "ChatGone", "DeliveryError", "RetryLater", "Undeliverable"]


class Undeliverable(DeliveryError):
    """A 400 that is not about the chat (e.g. a caption too long): failed, not retried."""


class BroadcastTransport(Protocol):
    async def send_announcement(
        self, address: ReplyAddress, text: str, *, photo: bytes | str | None = None,
        button: tuple[str, str] | None = None,
    ) -> str | None:
        """Send one announcement (a photo with ``text`` as caption, or a text message) with
        an optional (label, choice id) button. Returns the photo's file id once uploaded
        (reused for the next sends), else None."""
        ...
