"""Small helpers shared by the handlers (identity to pseudonym, language, replies)."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Update, User
from telegram.error import BadRequest

from bot.context import TELEGRAM, TiplineContext
from bot.i18n import Gettext

log = logging.getLogger(__name__)


def pseudonym_of(context: TiplineContext, user: User) -> str:
    return context.services.pseudonyms.resident(TELEGRAM, user.id)


async def resident_language(update: Update, context: TiplineContext) -> str:
    """The resident's chosen language, else their app's, else Vietnamese."""
    user = update.effective_user
    if user is None:
        return "vi"
    return await context.services.residents.language(
        pseudonym_of(context, user), user.language_code
    )


async def resident_texts(update: Update, context: TiplineContext) -> Gettext:
    """A ``_`` bound to the resident's language."""
    return context.texts(await resident_language(update, context))


def police_texts(context: TiplineContext) -> Gettext:
    """Police groups work in Vietnamese."""
    return context.texts("vi")


def is_admin(context: TiplineContext, user: User | None) -> bool:
    return user is not None and user.id in context.services.settings.admin_ids


async def answer(
    query: CallbackQuery, text: str | None = None, *, show_alert: bool = False
) -> None:
    """Answer a button press. Telegram refuses answers after ~15 s ("query is too old");
    when the bot is that far behind, the work behind the button must still be done (a tip
    still committed), so a refused answer is logged and dropped, not raised."""
    try:
        await query.answer(text, show_alert=show_alert)
    except BadRequest as error:
        if "query is too old" not in error.message.lower():
            raise
        log.warning("late callback answer dropped")
