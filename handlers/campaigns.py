"""Announcements from the admins' chat (the ops chat): ``/campaign`` drafts a custom
campaign (its text after the command, or the message it replies to: text, or a photo and
its caption), shows it with buttons (preview, confirm, cancel); the run's progress message
carries pause / resume / cancel. Admins only (TIPLINE_ADMIN_IDS), in the admins' chat only,
and only buttons the message carries (``carries_button``)."""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode

from bot.context import TiplineContext
from bot.domain.broadcast.campaigns import control
from bot.domain.broadcast.images import clean_announcement_photo
from bot.domain.broadcast.records import CampaignRecord
from bot.i18n import Gettext
from handlers.common import answer, is_admin, police_texts
from handlers.guards import carries_button

log = logging.getLogger(__name__)
MAX_TEXT, MAX_CAPTION = 4096, 1024
_SCOPE = re.compile(r"^(all|province:\d{1,9}|commune:\d{1,9})$")
_AT = re.compile(r"^at\s+(\d{4}-\d{2}-\d{2} \d{2}:\d{2})\s*")


def _in_admins_chat(update: Update, context: TiplineContext) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.id == context.services.settings.ops_chat_id


def describe_scope(campaign: CampaignRecord, context: TiplineContext, _: Gettext) -> str:
    directory = context.services.directory
    if campaign.scope == "commune" and campaign.scope_code is not None:
        commune = directory.commune(campaign.scope_code)
        return _("subscribers of {place}").format(
            place=commune.name if commune else campaign.scope_code)
    if campaign.scope == "province" and campaign.scope_code is not None:
        province = directory.province(campaign.scope_code)
        return _("subscribers of {place}").format(
            place=province.name if province else campaign.scope_code)
    return _("all subscribers")


def _when(campaign: CampaignRecord, context: TiplineContext, _: Gettext) -> str:
    if campaign.send_at is None or campaign.send_at <= context.services.clock.now():
        return _("now")
    local = campaign.send_at.astimezone(context.services.settings.zone)
    return _("on {time}").format(time=local.strftime("%d/%m/%Y %H:%M"))


def _draft_buttons(campaign_id: int, _: Gettext) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(_("👁 Preview"), callback_data=f"cp:preview:{campaign_id}")],
        [InlineKeyboardButton(_("✅ Confirm"), callback_data=f"cp:confirm:{campaign_id}"),
         InlineKeyboardButton(_("✖ Cancel"), callback_data=f"cp:cancel:{campaign_id}")],
    ])


async def campaign_command(update: Update, context: TiplineContext) -> None:
    """/campaign [all|province:CODE|commune:CODE] [at YYYY-MM-DD HH:MM] <text>"""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    if not is_admin(context, update.effective_user):
        await message.reply_text(_("Sorry, only tip-line administrators can send "
                                   "announcements."))
        return
    if not _in_admins_chat(update, context):
        await message.reply_text(_("Please use this command in the admins' chat."))
        return
    services = context.services
    raw = (message.text or "").split(maxsplit=1)
    rest = raw[1].strip() if len(raw) > 1 else ""
    scope, code = "all", None
    first = rest.split(maxsplit=1)
    if first and _SCOPE.match(first[0]):
        scope, _sep, code_text = first[0].partition(":")
        code = int(code_text) if code_text else None
        rest = first[1] if len(first) > 1 else ""
    send_at = services.clock.now()
    at = _AT.match(rest)
    if at:
        try:
            local = datetime.strptime(at.group(1), "%Y-%m-%d %H:%M")
        except ValueError:
            local = None
        if local is None:
            await message.reply_text(_usage(_))
            return
        send_at = local.replace(tzinfo=services.settings.zone)
        rest = rest[at.end():]
    known = (scope == "all" or (code is not None and (
        services.directory.commune(code) if scope == "commune"
        else services.directory.province(code)) is not None))
    source: Message | None = message.reply_to_message
    text, photo = rest.strip(), None
    if source is not None and not text:
        text = (source.text or source.caption or "").strip()
    if source is not None and source.photo:
        largest = max(source.photo, key=lambda size: size.width * size.height)
        data = await (await context.bot.get_file(largest.file_id)).download_as_bytearray()
        try:
            photo = clean_announcement_photo(bytes(data))
        except ValueError:
            await message.reply_text(_("This picture cannot be used."))
            return
    if not text or not known:
        await message.reply_text(_usage(_))
        return
    limit = MAX_CAPTION if photo else MAX_TEXT
    if len(text) > limit:
        await message.reply_text(_("The text is too long ({length} characters; at most "
                                   "{limit}).").format(length=len(text), limit=limit))
        return
    user = update.effective_user
    assert user is not None
    store = services.campaigns.store
    campaign_id = await store.add_custom(
        title=text.splitlines()[0][:80], text=text, photo=photo, scope=scope, scope_code=code,
        send_at=send_at, status="draft", created_by=user.id, now=services.clock.now())
    campaign = await store.campaign(campaign_id)
    assert campaign is not None
    log.info("campaign drafted", extra={"event": "campaign_draft", "count": campaign_id})
    await message.reply_text(
        _("📢 Announcement draft #{id}, to {scope}, {when}:").format(
            id=campaign_id, scope=describe_scope(campaign, context, _),
            when=_when(campaign, context, _))
        + "\n\n" + html.escape(text[:600]) + ("…" if len(text) > 600 else "")
        + ("\n\n🖼 " + _("with a picture") if photo else ""),
        parse_mode=ParseMode.HTML, reply_markup=_draft_buttons(campaign_id, _))


def _usage(_: Gettext) -> str:
    return _("Usage: /campaign [all | province:CODE | commune:CODE] [at YYYY-MM-DD HH:MM] "
             "text of the announcement. Or reply with /campaign to a message (its text, or a "
             "picture and its caption).")


async def on_button(update: Update, context: TiplineContext) -> None:
    """cp:<preview|confirm|pause|resume|cancel>:<campaign id>"""
    query = update.callback_query
    assert query is not None
    _ = police_texts(context)
    message = query.message
    if (not isinstance(message, Message) or not carries_button(message, query.data or "")
            or not _in_admins_chat(update, context)):
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    if not is_admin(context, query.from_user):
        await answer(query, _("Sorry, only tip-line administrators can send announcements."),
                     show_alert=True)
        return
    parts = (query.data or "").split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    command, campaign_id = parts[1], int(parts[2])
    services = context.services
    store = services.campaigns.store
    campaign = await store.campaign(campaign_id)
    if campaign is None:
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    if command == "preview":
        await answer(query)
        photo, file_id = await store.photo(campaign_id)
        picture = file_id or photo
        if picture is not None:
            await context.bot.send_photo(message.chat_id, picture, caption=campaign.text("vi"))
        else:
            await context.bot.send_message(message.chat_id, campaign.text("vi"))
        return
    if command not in ("confirm", "pause", "resume", "cancel"):
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    changed = await control(store, campaign_id, command)
    log.info("campaign changed from the admins' chat",
             extra={"event": f"campaign_{command}", "count": campaign_id, "ok": changed})
    if changed and command in ("confirm", "resume"):
        await services.campaigns.tick()  # due now: starts (or is driven again) at once
    done = {"confirm": _("confirmed"), "pause": _("paused"), "resume": _("resumed"),
            "cancel": _("cancelled")}[command]
    await answer(query, (_("Announcement #{id}: {done}.").format(id=campaign_id, done=done)
                         if changed else _("Nothing to change.")))
    if changed and command in ("confirm", "cancel") and campaign.status == "draft":
        await query.edit_message_reply_markup(None)  # the draft's buttons are spent
        await message.reply_text(
            _("Announcement #{id}: {done}, {when}.").format(
                id=campaign_id, done=done, when=_when(campaign, context, _))
            if command == "confirm" else
            _("Announcement #{id}: {done}.").format(id=campaign_id, done=done))
