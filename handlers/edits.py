"""Edited messages: never handled a second time.

A tip, an answer to a police question or an internal note is taken as first sent: the
police may already have read it, and an edit would silently change what was received. The
sender is told once, politely, to send a correction as a new message instead."""

from __future__ import annotations

from telegram import Update

from bot.context import TiplineContext
from handlers.common import police_texts, resident_texts


async def on_edited_message(update: Update, context: TiplineContext) -> None:
    message = update.edited_message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return
    if message.chat.type == "private":
        _ = await resident_texts(update, context)
        await message.reply_text(_(
            "Edits are not passed on: the police see your message as first sent. "
            "If something needs correcting, please send the correction as a new message."
        ))
        return
    # in a group, only edits of what the bot acted on (a reply to a card or a prompt)
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return
    _ = police_texts(context)
    await message.reply_text(_(
        "Edits are not recorded: the note or answer was kept as first sent. "
        "Please reply again with the correction."
    ))
