"""Small helpers shared by the handlers (identity to pseudonym, language, replies)."""

from __future__ import annotations

from telegram import Update, User

from bot.context import TELEGRAM, TiplineContext
from bot.i18n import Gettext


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
