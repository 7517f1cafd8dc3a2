"""Residents in private chats, on Telegram: a thin adapter around the channel-neutral
conversation (bot/conversation). Each update becomes a neutral event; the conversation's
answers are rendered here (choices as inline buttons whose callback data is the choice id;
pictures fetched through handlers/pictures.py when the conversation asks for them)."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import Bot, CallbackQuery, Message, Update, User
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter

from bot.context import TELEGRAM, TiplineContext
from bot.conversation.model import (
    ChoicePressed,
    CommandIn,
    Edit,
    Event,
    FileIn,
    LocationIn,
    MessageRef,
    OtherIn,
    PictureIn,
    PictureOut,
    Resident,
    Say,
    TextIn,
    Undelivered,
)
from bot.domain.sealing import ReplyAddress
from handlers.common import answer, pseudonym_of, resident_texts
from handlers.keyboards import keyboard_json
from handlers.pictures import fetcher

log = logging.getLogger(__name__)

CHANNEL = "telegram"
IMAGE_MIME_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")


class TelegramChat:
    """A resident's private chat as the conversation sees it. Plain Bot API calls: only
    the message id of what is sent is kept."""

    def __init__(self, bot: Bot, chat_id: int, query: CallbackQuery | None = None) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._query = query
        self.acknowledged = query is None

    async def send(self, message: Say | PictureOut) -> MessageRef | None:
        if isinstance(message, PictureOut):
            sent = await self._bot.send_photo(self._chat_id, message.data, caption=message.caption)
            return MessageRef(str(sent.message_id))
        result = await self._bot.do_api_request("sendMessage", self._say(message))
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return MessageRef(str(message_id)) if message_id is not None else None

    async def deliver(self, message: Say) -> Undelivered | None:
        try:
            await self._bot.do_api_request("sendMessage", self._say(message))
        except Exception as error:
            retry_after = None
            if isinstance(error, RetryAfter):
                wait = error.retry_after
                retry_after = float(wait.total_seconds() if isinstance(wait, timedelta) else wait)
            return Undelivered(type(error).__name__, retry_after)
        return None

    async def edit(self, edit: Edit) -> None:
        call: dict[str, object] = {
            "chat_id": self._chat_id, "message_id": int(edit.message.id),
        }
        if edit.choices:
            call["reply_markup"] = keyboard_json(edit.choices)
        try:
            if edit.text is None:
                await self._bot.do_api_request("editMessageReplyMarkup", call)
                return
            call["text"] = edit.text
            if edit.html:
                call["parse_mode"] = ParseMode.HTML
            await self._bot.do_api_request("editMessageText", call)
        except BadRequest as error:
            if "not modified" not in error.message.lower():
                raise

    async def acknowledge(self, alert: str | None = None) -> None:
        if self.acknowledged or self._query is None:
            return
        self.acknowledged = True
        await answer(self._query, alert, show_alert=alert is not None)

    def _say(self, message: Say) -> dict[str, object]:
        call: dict[str, object] = {"chat_id": self._chat_id, "text": message.text}
        if message.html:
            call["parse_mode"] = ParseMode.HTML
        if message.choices:
            call["reply_markup"] = keyboard_json(message.choices)
        return call


def resident_of(context: TiplineContext, user: User, chat_id: int) -> Resident:
    return Resident(
        pseudonym=pseudonym_of(context, user),
        platform_language=user.language_code,
        address=ReplyAddress(TELEGRAM, str(chat_id)),
        channel=CHANNEL,
    )


def event_of(message: Message, context: TiplineContext) -> Event:
    """The neutral event a private message stands for."""
    reply_to = (MessageRef(str(message.reply_to_message.message_id))
                if message.reply_to_message is not None else None)
    if message.text is not None:
        if message.text.startswith("/"):  # ours (args parsed by PTB) or one we do not know
            words = message.text.split()
            name = words[0][1:].split("@", 1)[0].lower()
            args = context.args if context.args is not None else words[1:]
            return CommandIn(name, tuple(args))
        return TextIn(message.text, reply_to)
    caption = message.caption
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return PictureIn(fetcher(context.bot, largest.file_id), largest.file_size, caption,
                         message.message_id, message.media_group_id, reply_to)
    if message.document is not None:
        document = message.document
        name = (document.file_name or "").lower()
        if (document.mime_type or "") in IMAGE_MIME_TYPES or name.endswith(IMAGE_SUFFIXES):
            return PictureIn(fetcher(context.bot, document.file_id), document.file_size,
                             caption, message.message_id, message.media_group_id, reply_to)
        return FileIn()
    if message.location is not None:
        return LocationIn(message.location.latitude, message.location.longitude)
    return OtherIn()


async def on_private_message(update: Update, context: TiplineContext) -> None:
    """Commands, text, pictures, files, locations... of a private chat: to the router."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    chat = TelegramChat(context.bot, message.chat_id)
    await context.conversation.handle(
        resident_of(context, user, message.chat_id), event_of(message, context), chat)


async def on_choice(update: Update, context: TiplineContext) -> None:
    """A pressed resident button (checked by handlers.guards first)."""
    query = update.callback_query
    assert query is not None and query.message is not None
    chat_id = query.message.chat.id
    chat = TelegramChat(context.bot, chat_id, query)
    event = ChoicePressed(query.data or "", MessageRef(str(query.message.message_id)))
    try:
        await context.conversation.handle(resident_of(context, query.from_user, chat_id),
                                          event, chat)
    finally:
        if not chat.acknowledged:  # the spinner stops whatever happened
            await chat.acknowledge()


async def unknown_button(update: Update, context: TiplineContext) -> None:
    """Button data no handler knows (forged, or from an older version): a polite alert."""
    query = update.callback_query
    assert query is not None
    _ = await resident_texts(update, context)
    await answer(query, _("This button is no longer valid."), show_alert=True)
