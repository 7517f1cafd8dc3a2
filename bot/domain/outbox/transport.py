"""What the outbox sends through (Telegram today), and the errors a transport may raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.domain.sealing import ReplyAddress

Buttons = list[list[tuple[str, str]]]  # rows of (label, callback data)


class DeliveryError(Exception):
    """Base of what a transport may raise."""


class RetryLater(DeliveryError):
    def __init__(
        self, reason: str, seconds: float | None = None, *, maybe_sent: bool = False
    ) -> None:
        super().__init__(reason)
        self.seconds = seconds  # None: use the back-off schedule
        self.maybe_sent = maybe_sent  # no answer (a timeout): Telegram may have posted it


class ChatGone(DeliveryError):
    """The bot was kicked/blocked or the chat does not exist."""


class ChatMoved(DeliveryError):
    def __init__(self, old_chat_id: int, new_chat_id: int) -> None:
        super().__init__(f"chat moved to {new_chat_id}")
        self.old_chat_id = old_chat_id
        self.new_chat_id = new_chat_id


class Transport(Protocol):
    async def send_html(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        buttons: Buttons | None = None,
    ) -> int: ...

    async def edit_html(
        self, chat_id: int, message_id: int, text: str, *, buttons: Buttons | None = None
    ) -> None: ...

    async def send_to_reporter(
        self, address: ReplyAddress, text: str, *, html: bool = False
    ) -> int: ...

    async def send_photos(
        self, chat_id: int, photos: Sequence[bytes], captions: Sequence[str],
        *, reply_to: int | None = None,
    ) -> list[int]: ...

    async def send_location(
        self, chat_id: int, latitude: float, longitude: float, *, reply_to: int | None = None
    ) -> int: ...
