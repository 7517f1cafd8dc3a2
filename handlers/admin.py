"""Group onboarding by admins: /link, /unlink, /where, /find, and supergroup migration."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.constants import ParseMode

from bot.context import TiplineContext
from bot.domain.linking import LinkingError, LinkTarget, Scope
from bot.domain.text import echo
from bot.i18n import Gettext
from handlers.common import is_admin, police_texts

log = logging.getLogger(__name__)
MAX_FIND_RESULTS = 8


def describe(target: LinkTarget, _: Gettext) -> str:
    if target.commune is not None:
        return _("the tip queue of {commune}, {province} (code {code})").format(
            commune=target.commune.name, province=target.province.name, code=target.code
        )
    return _("the escalation group of {province} (province code {code})").format(
        province=target.province.name, code=target.code
    )


async def _refuse_unless_admin_in_group(update: Update, context: TiplineContext) -> bool:
    """True (and a polite reply) when the command must not run here or by this person."""
    _ = police_texts(context)
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    if chat.type not in (chat.GROUP, chat.SUPERGROUP):
        await message.reply_text(_("Please use this command in the police group chat."))
        return True
    if not is_admin(context, update.effective_user):
        log.info("refused admin command", extra={"chat_id": chat.id, "event": "refused"})
        await message.reply_text(
            _("Sorry, only tip-line administrators can link or unlink groups.")
        )
        return True
    return False


async def link(update: Update, context: TiplineContext) -> None:
    """/link <commune code> | /link province <province code>"""
    if await _refuse_unless_admin_in_group(update, context):
        return
    _ = police_texts(context)
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    assert message is not None and chat is not None and user is not None
    args = [a.lower() for a in context.args or []]
    scope: Scope = "province" if args[:1] in (["province"], ["tinh"], ["tỉnh"]) else "commune"
    code_text = args[1] if scope == "province" and len(args) == 2 else args[0] if args else ""
    well_formed = code_text.isascii() and code_text.isdigit() and len(code_text) <= 9
    if not well_formed or len(args) > (2 if scope == "province" else 1):
        await message.reply_text(
            _("Usage: /link <commune code> or /link province <province code>. "
              "Find a code with /find <name>.")
        )
        return
    try:
        result = await context.services.linking.link(
            chat_id=chat.id, scope=scope, code=int(code_text), linked_by=user.id
        )
    except LinkingError as error:
        sentence = (
            _("No commune has code {code}. Use /find <name> to look it up.")
            if error.reason == "unknown_commune"
            else _("No province has code {code}.")
        )
        await message.reply_text(sentence.format(code=error.code))
        return
    text = _("This group is now {what}.").format(what=describe(result.target, _))
    if result.replaced_chat_id is not None:
        text += "\n" + _("It replaces the group that had this role before.")
    if result.previous_target is not None:
        text += "\n" + _("It is no longer {what}.").format(what=describe(result.previous_target, _))
    log.info("group linked", extra={"chat_id": chat.id, "scope": scope, "code": int(code_text)})
    await message.reply_text(text)


async def unlink(update: Update, context: TiplineContext) -> None:
    """/unlink: the group stops being a queue."""
    if await _refuse_unless_admin_in_group(update, context):
        return
    _ = police_texts(context)
    assert update.effective_message is not None and update.effective_chat is not None
    target = await context.services.linking.unlink(chat_id=update.effective_chat.id)
    if target is None:
        await update.effective_message.reply_text(_("This group is not linked to anything."))
        return
    await update.effective_message.reply_text(
        _("This group is no longer {what}.").format(what=describe(target, _))
    )


async def where(update: Update, context: TiplineContext) -> None:
    """/where: what this group is linked to (anyone in the group may ask)."""
    _ = police_texts(context)
    assert update.effective_message is not None and update.effective_chat is not None
    target = await context.services.linking.where(chat_id=update.effective_chat.id)
    if target is None:
        await update.effective_message.reply_text(
            _("This group is not linked yet. An administrator can link it with "
              "/link <commune code>.")
        )
        return
    await update.effective_message.reply_text(
        _("This group is {what}.").format(what=describe(target, _))
    )


async def find(update: Update, context: TiplineContext) -> None:
    """/find <name>: commune codes for /link (accent-insensitive, typo-tolerant)."""
    _ = police_texts(context)
    assert update.effective_message is not None
    query = " ".join(context.args or [])
    matches = context.services.directory.search(query, limit=MAX_FIND_RESULTS)
    if not matches:
        await update.effective_message.reply_text(
            _("No commune matches “{query}”.").format(query=echo(query))
        )
        return
    lines = [f"<code>{m.commune.code}</code> {html.escape(m.label())}" for m in matches]
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def group_migrated(update: Update, context: TiplineContext) -> None:
    """A group became a supergroup: carry its link over to the new chat id."""
    message = update.effective_message
    assert message is not None
    if message.migrate_to_chat_id:
        old_id, new_id = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old_id, new_id = message.migrate_from_chat_id, message.chat_id
    else:
        return
    moved = await context.services.linking.group_migrated(old_chat_id=old_id, new_chat_id=new_id)
    log.info("group migrated", extra={"chat_id": old_id, "new_chat_id": new_id, "moved": moved})


async def ban(update: Update, context: TiplineContext) -> None:
    """/ban <code>: stop the person behind a tip from sending more, without unmasking them."""
    _ = police_texts(context)
    message, user = update.effective_message, update.effective_user
    assert message is not None
    if not is_admin(context, user):
        await message.reply_text(_("Sorry, only tip-line administrators can ban reporters."))
        return
    assert user is not None
    typed = " ".join(context.args or [])
    result = await context.services.tips.ban_reporter(
        typed, admin_id=user.id, admin_name=user.full_name
    )
    if not result.found:
        await message.reply_text(_("No tip has the code “{code}”.").format(code=echo(typed, 20)))
    elif result.already:
        await message.reply_text(_("The reporter of this tip was already banned."))
    else:
        log.info("reporter banned", extra={"tip_code": typed[:20]})
        await message.reply_text(_(
            "The reporter of this tip can no longer send tips. Their identity stays hidden, "
            "also from you."
        ))
