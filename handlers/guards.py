"""Where each family of buttons may be pressed (checked before any handler runs).

Telegram only lets a person press buttons a message carries, but a modified client can send
any ``callback_data`` with any message id of a chat it sees. So each family is pinned to its
place, and a press must name a button the message really carries:

- resident buttons (``lang:``, ``d:``, ``m:``): only in the resident's own private chat;
- police buttons (``t:``): only in groups.

Anything else is answered with a short refusal and changes nothing; a press aimed at a tip
card is audited on the tip (without the presser's identity).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType

from bot.context import TiplineContext
from handlers.common import answer, resident_texts

log = logging.getLogger(__name__)

Callback = Callable[[Update, TiplineContext], Coroutine[Any, Any, None]]
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


def carries_button(message: Message, data: str) -> bool:
    """Whether ``message`` shows an inline button with exactly this callback data."""
    markup = message.reply_markup
    if markup is None:
        return False
    return any(
        button.callback_data == data for row in markup.inline_keyboard for button in row
    )


def resident_press_allowed(update: Update) -> bool:
    """A resident button: pressed by the owner of the private chat, on a message of ours
    that carries it."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return False
    message = query.message
    return (
        message.chat.type == ChatType.PRIVATE
        and message.chat.id == query.from_user.id
        and carries_button(message, query.data or "")
    )


def police_press_allowed(update: Update) -> bool:
    """A police button: in a group, on a message that carries it (who may act, and whether
    the message is a live card of the tip, is checked by the handler)."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return False
    return query.message.chat.type in GROUP_TYPES and carries_button(
        query.message, query.data or ""
    )


def resident_buttons(callback: Callback) -> Callback:
    return _guarded(callback, resident_press_allowed, "resident")


def police_buttons(callback: Callback) -> Callback:
    return _guarded(callback, police_press_allowed, "police")


def _guarded(callback: Callback, allowed: Callable[[Update], bool], family: str) -> Callback:
    async def guarded(update: Update, context: TiplineContext) -> None:
        if allowed(update):
            await callback(update, context)
            return
        await refuse_misplaced_press(update, context, family)

    guarded.__name__ = getattr(callback, "__name__", "guarded")
    guarded.__doc__ = callback.__doc__
    return guarded


async def refuse_misplaced_press(update: Update, context: TiplineContext, family: str) -> None:
    """Answer with one short sentence; audit the attempt if it targeted a tip card."""
    query = update.callback_query
    assert query is not None
    message = query.message
    chat_type = message.chat.type if message is not None else "unknown"
    log.info("misplaced button refused", extra={"event": family, "scope": chat_type})
    if isinstance(message, Message) and message.chat.type in GROUP_TYPES:
        tip = await context.services.triage.card_tip(message.chat.id, message.message_id)
        if tip is not None and tip.id is not None:
            await context.services.triage.record_refusal(
                tip.id, f"{family}_button", by=query.from_user.id
            )
    _ = await resident_texts(update, context)
    await answer(query, _("This button is no longer valid."), show_alert=True)
