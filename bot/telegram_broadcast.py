"""The broadcast engine's Telegram transport (bot/domain/broadcast/transport.py): one
announcement to a resident's private chat, a photo's file id reused after its first upload.
Errors are mapped as for the outbox (bot/telegram_transport.py); a 400 that is not about
the chat is the message's fault: ``Undeliverable``."""

from __future__ import annotations

import functools

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest

from bot.context import TELEGRAM
from bot.domain.broadcast.transport import ChatGone, Undeliverable
from bot.domain.sealing import ReplyAddress
from bot.telegram_transport import _mapped


class TelegramBroadcastTransport:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send_announcement(
        self, address: ReplyAddress, text: str, *, photo: bytes | str | None = None,
        button: tuple[str, str] | None = None,
    ) -> str | None:
        if address.platform != TELEGRAM:
            raise ChatGone(f"no transport for platform {address.platform!r}")
        chat_id = int(address.chat_id)
        markup = (InlineKeyboardMarkup([[InlineKeyboardButton(button[0], callback_data=button[1])]])
                  if button else None)
        try:
            if photo is not None:
                message: Message = await _mapped(functools.partial(
                    self._bot.send_photo, chat_id, photo, caption=text, reply_markup=markup,
                ), chat_id)
                if isinstance(photo, bytes) and message.photo:
                    return max(message.photo, key=lambda size: size.width).file_id
                return None
            await _mapped(functools.partial(
                self._bot.send_message, chat_id, text, reply_markup=markup), chat_id)
        except BadRequest as error:
            raise Undeliverable(error.message) from error
        return None
