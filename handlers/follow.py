"""Following a tip and the main menu: /status, /mytips, receipt codes typed as text,
campaign opt-in (/subscribe, /unsubscribe)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import Update
from telegram.constants import ParseMode

from bot.context import TiplineContext
from bot.domain.cards import format_time
from bot.domain.receipts import normalise_code
from bot.domain.status import resident_label
from bot.domain.tips import LookupThrottled, TipStatus
from bot.i18n import Gettext
from handlers import answers, intake
from handlers.common import answer, pseudonym_of, resident_texts
from handlers.keyboards import (
    MENU_LANGUAGE,
    MENU_LOOKUP,
    MENU_NEW,
    MENU_SUBSCRIBE,
    language_keyboard,
    main_menu,
)


def status_label(status: str, _: Gettext) -> str:
    return resident_label(status, _)


def describe_status(tip: TipStatus, _: Gettext, zone: ZoneInfo) -> str:
    return _("Tip {code} (sent {when}): {status}.").format(
        code=f"<code>{tip.code}</code>",
        when=format_time(tip.created_at, zone),
        status=status_label(tip.status, _),
    )


async def status_command(update: Update, context: TiplineContext) -> None:
    """/status <code>"""
    assert update.effective_message is not None
    _ = await resident_texts(update, context)
    typed = " ".join(context.args or [])
    if not typed:
        await update.effective_message.reply_text(
            _("Send /status followed by your receipt code, e.g. /status 7K3Q-9MXD.")
        )
        return
    await _lookup(update, context, typed, _)


async def _lookup(update: Update, context: TiplineContext, typed: str, _: Gettext) -> None:
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    try:
        tip = await context.services.tips.status(typed, asked_by=pseudonym_of(context, user))
    except LookupThrottled:
        await message.reply_text(
            _("Too many wrong codes. Please try again in an hour.")
        )
        return
    if tip is None:
        await message.reply_text(_("No tip has this code. Please check it and try again."))
        return
    await message.reply_text(
        describe_status(tip, _, context.services.settings.zone), parse_mode=ParseMode.HTML
    )


async def my_tips_command(update: Update, context: TiplineContext) -> None:
    """/mytips: this person's tips, newest first."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    _ = await resident_texts(update, context)
    tips = await context.services.tips.mine(pseudonym_of(context, user))
    if not tips:
        await message.reply_text(_("You have not sent any tips from this account yet."))
        return
    zone = context.services.settings.zone
    lines = [_("Your tips:")] + ["• " + describe_status(t, _, zone) for t in tips]
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def subscribe_command(update: Update, context: TiplineContext) -> None:
    """/subscribe: agree to receive awareness campaigns (19/8, 26/6, ...)."""
    await _set_subscription(update, context, True)


async def unsubscribe_command(update: Update, context: TiplineContext) -> None:
    """/unsubscribe"""
    await _set_subscription(update, context, False)


async def _set_subscription(update: Update, context: TiplineContext, subscribed: bool) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    _ = await resident_texts(update, context)
    await context.services.residents.set_subscribed(pseudonym_of(context, user), subscribed)
    await context.bot.send_message(chat.id, _(
        "You will receive security announcements from the police (for example on 19/8 and "
        "26/6). Send /unsubscribe to stop."
    ) if subscribed else _("You will no longer receive announcements."))


async def on_menu(update: Update, context: TiplineContext) -> None:
    """Main-menu buttons."""
    query = update.callback_query
    assert query is not None
    await answer(query)
    _ = await resident_texts(update, context)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    if query.data == MENU_NEW:
        await intake.begin(update, context)
    elif query.data == MENU_LOOKUP:
        await context.bot.send_message(
            chat_id, _("Type your receipt code (e.g. 7K3Q-9MXD), or /mytips for your tips.")
        )
    elif query.data == MENU_SUBSCRIBE:
        await _set_subscription(update, context, True)
    elif query.data == MENU_LANGUAGE:
        await context.bot.send_message(
            chat_id, _("Choose your language:"), reply_markup=language_keyboard()
        )


async def on_private_text(update: Update, context: TiplineContext) -> None:
    """Any text in a private chat: the draft's answer, a receipt code, or a hint."""
    message = update.effective_message
    assert message is not None and message.text is not None
    target = await answers.question_replied_to(update, context)
    if target is not None:
        await answers.relay_text(update, context, target, message.text)
        return
    if await intake.on_text(update, context):
        return
    _ = await resident_texts(update, context)
    if normalise_code(message.text) is not None:
        await _lookup(update, context, message.text, _)
        return
    await message.reply_text(
        _("To send a tip, tap /new. To follow a tip, send its receipt code."),
        reply_markup=main_menu(_),
    )

