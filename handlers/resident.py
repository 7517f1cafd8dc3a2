"""Resident-facing handlers in private chats: /start, /help, /language."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import TiplineContext
from bot.i18n import SUPPORTED_LANGUAGES
from handlers import intake
from handlers.common import answer, pseudonym_of, resident_texts
from handlers.keyboards import LANGUAGE_CALLBACK_PREFIX, language_keyboard, main_menu


def deep_link_commune(args: list[str] | None) -> int | None:
    """``/start c2998`` (from a QR poster) -> 2998; anything else -> None."""
    digits = args[0][1:] if args and len(args) == 1 and args[0].startswith("c") else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 9:
        return int(digits)
    return None


async def start(update: Update, context: TiplineContext) -> None:
    """Greet the resident; a deep link from a commune poster starts a tip right away."""
    _ = await resident_texts(update, context)
    assert update.effective_message is not None
    commune_code = deep_link_commune(context.args)
    if commune_code is not None and context.services.directory.commune(commune_code):
        await intake.begin(update, context, commune_code=commune_code)
        return
    await update.effective_message.reply_text(
        _(
            "Hello! This is the security mailbox of the commune police: "
            "you can send tips about security and public order here, anonymously."
        )
        + "\n\n"
        + _(
            "• Your identity stays secret: the police see only an alias, "
            "never your name, account or phone number."
        )
        + "\n"
        + _("• Concrete facts (where, when, who, what) make a tip much easier to verify.")
        + "\n"
        + _("• In an emergency, call 113 right now.")
        + "\n\n"
        + _("/help shows what I can do, /language changes the language."),
        reply_markup=main_menu(_),
    )


async def help_command(update: Update, context: TiplineContext) -> None:
    """List what a resident can do."""
    _ = await resident_texts(update, context)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _("What you can do here:")
        + "\n"
        + _("/new – send a tip")
        + "\n"
        + _("/status <code> – follow a tip; /mytips – your tips")
        + "\n"
        + _("/cancel – delete the tip you are writing")
        + "\n"
        + _("/subscribe, /unsubscribe – security announcements")
        + "\n"
        + _("/start – about this mailbox")
        + "\n"
        + _("/language – choose Vietnamese or English")
        + "\n"
        + _("/help – this help")
        + "\n\n"
        + _("In an emergency, call 113 right now."),
        parse_mode=None,
    )


async def language_command(update: Update, context: TiplineContext) -> None:
    """Offer the languages as buttons."""
    _ = await resident_texts(update, context)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _("Choose your language:"), reply_markup=language_keyboard()
    )


async def language_chosen(update: Update, context: TiplineContext) -> None:
    """Store the chosen language (button data is checked, never trusted)."""
    query = update.callback_query
    assert query is not None
    code = (query.data or "").removeprefix(LANGUAGE_CALLBACK_PREFIX)
    if code not in SUPPORTED_LANGUAGES:
        _ = await resident_texts(update, context)
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    await answer(query)
    await context.services.residents.set_language(pseudonym_of(context, query.from_user), code)
    _ = context.texts(code)
    try:  # the picker stays, so the other language is one press away
        await query.edit_message_text(
            _("Language set to English."), parse_mode=ParseMode.HTML,
            reply_markup=language_keyboard(),
        )
    except BadRequest as error:  # the same language pressed twice: nothing to change
        if "not modified" not in error.message.lower():
            raise


async def unknown_button(update: Update, context: TiplineContext) -> None:
    """Button data no handler knows (forged, or from an older version): a polite alert."""
    query = update.callback_query
    assert query is not None
    _ = await resident_texts(update, context)
    await answer(query, _("This button is no longer valid."), show_alert=True)
