"""Handler registration, split by audience. Order matters: see the comments on ``group``."""

from __future__ import annotations

from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.context import TiplineApplication
from bot.conversation.texts import LANGUAGE_PREFIX
from bot.i18n import N_, SUPPORTED_LANGUAGES, Translator
from handlers import admin, campaigns, edits, errors, kpi, police, resident
from handlers.guards import police_buttons, resident_buttons

RESIDENT_COMMANDS = [
    ("new", N_("Send a tip")),
    ("status", N_("Follow a tip by its code")),
    ("mytips", N_("Your tips")),
    ("cancel", N_("Delete the tip you are writing")),
    ("start", N_("About this mailbox")),
    ("help", N_("What you can do here")),
    ("language", N_("Choose the language")),
    ("subscribe", N_("Receive security announcements")),
    ("answer", N_("Answer a police question")),
]
GROUP_COMMANDS = [
    ("queue", N_("Open tips of this group")),
    ("tip", N_("Show a tip's card and history")),
    ("complex", N_("Record a complex case (2 months)")),
    ("extend", N_("Extend a settlement deadline (once)")),
    ("stats", N_("Figures and chart: received, processed, on time")),
    ("overdue", N_("Overdue tips of this group")),
    ("help", N_("Officers' help")),
    ("where", N_("What this group is linked to")),
    ("find", N_("Find a commune code")),
    ("link", N_("Link this group (admins)")),
    ("unlink", N_("Unlink this group (admins)")),
    ("ban", N_("Ban the reporter of a tip (admins)")),
    ("campaign", N_("Send an announcement to subscribers (admins)")),
]


# The update types the bot asks for, the same in polling and webhook mode. Edits arrive so
# that their senders can be told they are not taken into account (handlers.edits);
# chat_member (sent to bots that administer a group) forgets a leaver's membership at once.
# "/tip_7K3Q_9MXD" or "/tip_7K3Q_9MXD@SomeBot" and nothing else on the line
TIP_LINK_PATTERN = r"^/tip_[0-9A-Za-z]{4}_[0-9A-Za-z]{4}(@\w+)?\s*$"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "chat_member"]


def register(application: TiplineApplication) -> None:
    """Attach every handler. group 0: commands and buttons; group 1: service messages.
    Message and command handlers see new messages only (``fresh``): an edited message is
    answered by handlers.edits and never handled a second time."""
    fresh = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE & fresh
    groups = filters.ChatType.GROUPS & fresh

    # residents, private chats only: every command, message and button goes to the
    # conversation's one router (handlers.resident is the Telegram adapter)
    for command, _description in [*RESIDENT_COMMANDS, ("unsubscribe", "")]:
        application.add_handler(
            CommandHandler(command, resident.on_private_message, filters=private))
    application.add_handler(CallbackQueryHandler(
        resident_buttons(resident.on_choice), pattern=f"^({LANGUAGE_PREFIX}|d:|m:)"))
    # messages of a draft (after the commands above, so "/cancel" is never a description);
    # other commands ("/foo") are left unanswered
    application.add_handler(MessageHandler(
        private & ~filters.COMMAND & ~filters.StatusUpdate.ALL, resident.on_private_message))

    # police triage in groups: card buttons, commands, replies to cards and prompts
    application.add_handler(CallbackQueryHandler(police_buttons(police.on_button), pattern=r"^t:"))
    application.add_handler(CommandHandler("queue", police.queue_command, filters=groups))
    application.add_handler(CommandHandler("tip", police.tip_command, filters=groups))
    # the one-tap "/tip_7K3Q_9MXD" of digests and /overdue (not a registered command name)
    application.add_handler(MessageHandler(
        groups & filters.Regex(TIP_LINK_PATTERN), police.tip_link_command))
    application.add_handler(CommandHandler("complex", police.complex_command, filters=groups))
    application.add_handler(CommandHandler("extend", police.extend_command, filters=groups))
    application.add_handler(CommandHandler("help", police.group_help, filters=groups))
    application.add_handler(CommandHandler("stats", kpi.stats_command, filters=groups))
    application.add_handler(CommandHandler("overdue", kpi.overdue_command, filters=groups))
    application.add_handler(MessageHandler(
        groups & filters.REPLY & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND,
        police.on_group_reply,
    ))

    # police groups and admins; /link and /unlink explain themselves in private chats too
    application.add_handler(CommandHandler("link", admin.link, filters=fresh))
    application.add_handler(CommandHandler("unlink", admin.unlink, filters=fresh))
    application.add_handler(CommandHandler("where", admin.where, filters=groups))
    application.add_handler(CommandHandler("find", admin.find, filters=fresh))
    application.add_handler(CommandHandler("ban", admin.ban, filters=fresh))
    # announcements from the admins' chat (admins only, checked in the handler)
    application.add_handler(CommandHandler("campaign", campaigns.campaign_command, filters=fresh))
    application.add_handler(CallbackQueryHandler(campaigns.on_button, pattern=r"^cp:"))

    # an edit is never handled again: its sender is told to send a correction instead
    application.add_handler(MessageHandler(
        # text and captions only: a live location moving is an edit too, and is not news
        filters.UpdateType.EDITED_MESSAGE & (filters.TEXT | filters.CAPTION),
        edits.on_edited_message,
    ))

    # any other command in a private chat: a polite hint, never a draft's text
    application.add_handler(MessageHandler(private & filters.COMMAND, resident.on_private_message))

    # any other button (forged or from an old version): answered, nothing changes
    application.add_handler(CallbackQueryHandler(resident.unknown_button))

    # service messages, in their own group so a command handler never shadows them
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, admin.group_migrated), 1)
    # someone left or was removed: their "member of the group" answer is forgotten at once
    application.add_handler(
        MessageHandler(filters.StatusUpdate.LEFT_CHAT_MEMBER, police.member_left), 1
    )
    application.add_handler(
        ChatMemberHandler(police.member_changed, ChatMemberHandler.CHAT_MEMBER), 1
    )

    application.add_error_handler(errors.on_error)


async def set_command_menus(application: TiplineApplication, translator: Translator) -> None:
    """Command menus per language: residents in private chats, officers in groups."""
    for language in SUPPORTED_LANGUAGES:
        _ = translator.for_language(language)
        code = "" if language == "vi" else language  # Vietnamese is the default menu
        await application.bot.set_my_commands(
            [BotCommand(name, _(text)) for name, text in RESIDENT_COMMANDS],
            scope=BotCommandScopeAllPrivateChats(),
            language_code=code or None,
        )
    vi = translator.for_language("vi")
    await application.bot.set_my_commands(
        [BotCommand(name, vi(text)) for name, text in GROUP_COMMANDS],
        scope=BotCommandScopeAllGroupChats(),
    )
