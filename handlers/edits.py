"""Edited messages: never handled a second time.

A tip, an answer to a police question or an internal note is taken as first sent: the
police may already have read it, and an edit would silently change what was received. The
sender is told once per message, politely, to send a correction as a new message instead."""

from __future__ import annotations

from telegram import Message, Update

from bot.context import TiplineContext
from handlers.common import police_texts, resident_texts

HINTED_KEY = "edit_hinted"  # in PTB's in-memory chat_data: message ids already answered
HINTS_REMEMBERED = 50


async def on_edited_message(update: Update, context: TiplineContext) -> None:
    message = update.edited_message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return
    if message.chat.type != "private" and not await _replies_to_card_or_prompt(message, context):
        return  # in a group, only edits of what the bot acted on (a note, an answer)
    chat_data = context.chat_data if context.chat_data is not None else {}
    hinted: list[int] = chat_data.setdefault(HINTED_KEY, [])
    if message.message_id in hinted:
        return  # told once per message: editing again gets no second hint
    hinted.append(message.message_id)
    del hinted[:-HINTS_REMEMBERED]
    if message.chat.type == "private":
        _ = await resident_texts(update, context)
        await message.reply_text(_(
            "Edits are not passed on: the police see your message as first sent. "
            "If something needs correcting, please send the correction as a new message."
        ))
        return
    _ = police_texts(context)
    await message.reply_text(_(
        "Edits are not recorded: the note or answer was kept as first sent. "
        "Please reply again with the correction."
    ))


async def _replies_to_card_or_prompt(message: Message, context: TiplineContext) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return False
    triage = context.services.triage
    return (
        await triage.card_tip(message.chat.id, replied.message_id) is not None
        or await triage.prompt(message.chat.id, replied.message_id) is not None
    )
