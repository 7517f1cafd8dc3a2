"""The reporter's answers to police questions: a reply to the question, or /answer <code>.
Text and sanitised pictures only, relayed under the per-tip alias."""

from __future__ import annotations

import logging

from telegram import Message, Update

from bot.context import TiplineContext
from bot.domain.triage import ReporterAnswer
from handlers.common import pseudonym_of, resident_texts
from handlers.pictures import PictureRefused, photo_refusal, received_picture

log = logging.getLogger(__name__)
MAX_ANSWER = 3000


async def question_replied_to(update: Update, context: TiplineContext) -> ReporterAnswer | None:
    """The tip whose police question this message replies to, if any."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return None
    return await context.services.triage.question_for_reply(
        pseudonym_of(context, user), message.reply_to_message.message_id
    )


async def relay_text(
    update: Update, context: TiplineContext, target: ReporterAnswer, text: str
) -> None:
    message = update.effective_message
    assert message is not None
    _ = await resident_texts(update, context)
    if len(text) > MAX_ANSWER:
        await message.reply_text(_("This is too long ({length} characters; at most {limit}). "
                                   "Please shorten it and send it again. Nothing was added.")
                                 .format(length=len(text), limit=MAX_ANSWER))
        return
    await context.services.triage.reporter_answer(target.tip_id, text, [])
    context.services.outbox.wake()
    await message.reply_text(_("Your answer was passed to the police. Thank you."))


async def relay_picture(
    update: Update, context: TiplineContext, target: ReporterAnswer, file_id: str,
    file_size: int | None,
) -> None:
    message, user = update.effective_message, update.effective_user
    assert isinstance(message, Message) and user is not None
    _ = await resident_texts(update, context)
    caption = (message.caption or "").strip()[:MAX_ANSWER] or None
    try:
        async with received_picture(
            context, pseudonym_of(context, user), file_id, file_size
        ) as photo:
            await context.services.triage.reporter_answer(
                target.tip_id, caption, [(photo.data, photo.width, photo.height)]
            )
    except PictureRefused as refused:
        await message.reply_text(photo_refusal(refused.reason, _))
        return
    context.services.outbox.wake()
    await message.reply_text(_("Your answer was passed to the police. Thank you."))


async def answer_command(update: Update, context: TiplineContext) -> None:
    """/answer <code> <text>"""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    _ = await resident_texts(update, context)
    args = context.args or []
    if len(args) < 2:
        await message.reply_text(_("Send /answer followed by the receipt code and your answer, "
                                   "e.g. /answer 7K3Q-9MXD The car was white."))
        return
    target = await context.services.triage.own_tip(pseudonym_of(context, user), args[0])
    if target is None:
        await message.reply_text(_("No tip has this code. Please check it and try again."))
        return
    await relay_text(update, context, target, " ".join(args[1:]))
