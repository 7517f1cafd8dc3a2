"""Inline keyboards shared by several resident handlers."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import SUPPORTED_LANGUAGES, Gettext

LANGUAGE_CALLBACK_PREFIX = "lang:"
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
MENU_NEW, MENU_LOOKUP, MENU_SUBSCRIBE, MENU_LANGUAGE = "m:new", "m:look", "m:sub", "m:lang"


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(LANGUAGE_NAMES[code], callback_data=LANGUAGE_CALLBACK_PREFIX + code)
        for code in SUPPORTED_LANGUAGES
    ]])


def main_menu(_: Gettext) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(_("📝 Send a tip"), callback_data=MENU_NEW)],
        [InlineKeyboardButton(_("🔎 Follow a tip"), callback_data=MENU_LOOKUP)],
        [InlineKeyboardButton(_("🔔 Get announcements"), callback_data=MENU_SUBSCRIBE)],
        [InlineKeyboardButton(_("🌐 Language"), callback_data=MENU_LANGUAGE)],
    ])
