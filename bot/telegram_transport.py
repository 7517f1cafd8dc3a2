"""The outbox's Telegram transport: uploads and sends, mapping PTB errors to the domain's
delivery errors. Photos are uploaded from our sanitised bytes; nothing is forwarded."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.context import TELEGRAM
from bot.domain.outbox import Buttons, ChatGone, ChatMoved, RetryLater
from bot.domain.sealing import ReplyAddress

T = TypeVar("T")
GONE_DESCRIPTIONS = ("chat not found", "bot was kicked", "group chat was deactivated")
# the bot is still there but may not post (e.g. media restricted): an admin can fix that,
# so wait rather than route the tip away for good
RIGHTS_DESCRIPTIONS = ("not enough rights", "have no rights")
RIGHTS_RETRY_SECONDS = 300.0


class TelegramTransport:
    """Everything goes out through PTB's bot (its rate limiter, its errors mapped to the
    outbox's). Texts (cards, notices, digests, their edits) go as plain Bot API calls through
    PTB's public ``Bot.do_api_request``, like the resident's replies: only the sent message's
    id is kept, so building PTB objects for the call and parsing the whole echoed message
    (with its keyboard) into them would cost ~0.6 ms of CPU per card for nothing
    (bench/bench_transport.py: 0.64 vs 0.07 ms; docs/benchmarks.md). Pictures and
    locations keep the typed methods (uploads)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send_html(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        buttons: Buttons | None = None,
    ) -> int:
        call: dict[str, object] = {"chat_id": chat_id, "text": text,
                                   "parse_mode": ParseMode.HTML}
        if reply_to is not None:
            call["reply_parameters"] = {"message_id": reply_to,
                                        "allow_sending_without_reply": True}
        if buttons:
            call["reply_markup"] = keyboard_json(buttons)
        sent = await _mapped(functools.partial(self._bot.do_api_request, "sendMessage", call),
                             chat_id)
        return _message_id(sent)

    async def edit_html(
        self, chat_id: int, message_id: int, text: str, *, buttons: Buttons | None = None
    ) -> None:
        try:
            call: dict[str, object] = {"chat_id": chat_id, "message_id": message_id,
                                       "text": text, "parse_mode": ParseMode.HTML}
            if buttons:
                call["reply_markup"] = keyboard_json(buttons)
            await _mapped(functools.partial(
                self._bot.do_api_request, "editMessageText", call), chat_id)
        except BadRequest as error:
            if "message is not modified" in error.message.lower():
                return  # already shows this: done
            if "message to edit not found" in error.message.lower():
                return  # deleted by someone in the group: nothing left to edit
            raise

    async def send_to_reporter(
        self, address: ReplyAddress, text: str, *, html: bool = False
    ) -> int:
        """Plain text unless ``html`` (our own texts only: police questions are not HTML)."""
        if address.platform != TELEGRAM:
            raise ChatGone(f"no transport for platform {address.platform!r}")
        chat_id = int(address.chat_id)
        message = await _mapped(lambda: self._bot.send_message(
            chat_id, text, parse_mode="HTML" if html else None
        ), chat_id)
        return message.message_id

    async def send_photos(
        self, chat_id: int, photos: Sequence[bytes], captions: Sequence[str],
        *, reply_to: int | None = None,
    ) -> list[int]:
        ids: list[int] = []
        for start in range(0, len(photos), 10):  # sendMediaGroup takes 2-10 items
            batch = list(zip(photos[start:start + 10], captions[start:start + 10], strict=True))
            if len(batch) == 1:
                data, caption = batch[0]
                message = await _mapped(functools.partial(
                    self._bot.send_photo, chat_id, data, caption=caption,
                    reply_parameters=_reply(reply_to),
                ), chat_id)
                ids.append(message.message_id)
                continue
            media = [InputMediaPhoto(data, caption=caption) for data, caption in batch]
            messages = await _mapped(functools.partial(
                self._bot.send_media_group, chat_id, media, reply_parameters=_reply(reply_to)
            ), chat_id)
            ids.extend(m.message_id for m in messages)
        return ids

    async def send_location(
        self, chat_id: int, latitude: float, longitude: float, *, reply_to: int | None = None
    ) -> int:
        message = await _mapped(lambda: self._bot.send_location(
            chat_id, latitude=latitude, longitude=longitude, reply_parameters=_reply(reply_to)
        ), chat_id)
        return message.message_id


def keyboard_json(buttons: Buttons) -> dict[str, object]:
    """The inline keyboard as the Bot API's JSON (for ``do_api_request``)."""
    return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row]
                                for row in buttons]}


def _message_id(sent: object) -> int:
    if not isinstance(sent, dict) or not isinstance(sent.get("message_id"), int):
        raise TelegramError("Invalid server response: no message id")
    return int(sent["message_id"])


def keyboard(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
         for row in buttons]
    )


def _reply(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


async def _mapped(call: Callable[[], Awaitable[T]], chat_id: int) -> T:
    try:
        return await call()
    except RetryAfter as error:
        seconds = error.retry_after
        raise RetryLater("429 Too Many Requests", float(
            seconds.total_seconds() if hasattr(seconds, "total_seconds") else seconds
        )) from error
    except ChatMigrated as error:
        raise ChatMoved(chat_id, error.new_chat_id) from error
    except Forbidden as error:
        raise ChatGone(error.message) from error
    except BadRequest as error:
        if any(text in error.message.lower() for text in GONE_DESCRIPTIONS):
            raise ChatGone(error.message) from error
        if any(text in error.message.lower() for text in RIGHTS_DESCRIPTIONS):
            raise RetryLater(f"no rights: {error.message}", RIGHTS_RETRY_SECONDS) from error
        raise
    except (TimedOut, NetworkError) as error:  # includes 5xx answers
        # no answer in time: the request may have reached Telegram and been posted
        raise RetryLater(f"{type(error).__name__}: {error.message}",
                         maybe_sent=isinstance(error, TimedOut)) from error
