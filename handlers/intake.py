"""Resident tip intake in private chats: thin handlers over ``IntakeService``.

Flow (state kept in the database, see bot/domain/intake.py and docs/intake-flow.mmd)::

    /new, menu or deep link -> commune -> category -> urgency -> description
        -> attachments (photos, location) -> review -> submit -> receipt code

Callback data are short and re-checked on the server: ``d:c:<commune>``, ``d:k:<category>``,
``d:u:<0|1>``, ``d:cc`` (change commune), ``d:done``, ``d:ok``, ``d:x``.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import timedelta

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import RetryAfter

from bot.context import TELEGRAM, TiplineContext
from bot.domain.intake import (
    MAX_PHOTOS,
    DraftView,
    IntakeError,
    Step,
    Submitted,
    checked_caption,
)
from bot.domain.notices import receipt_text
from bot.domain.sealing import ReplyAddress
from bot.domain.text import echo
from bot.i18n import Gettext
from bot.telegram_transport import raw_call
from handlers import answers
from handlers.common import answer, pseudonym_of, resident_language, resident_texts
from handlers.pictures import PictureRefused, photo_refusal, received_picture

log = logging.getLogger(__name__)

PHOTO_ACK_DELAY_SECONDS = 1.2  # one acknowledgement per album, not one per picture
SEARCH_RESULTS = 5
IMAGE_MIME_TYPES = {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}


# --- entry points --------------------------------------------------------------------------


async def begin(
    update: Update, context: TiplineContext, commune_code: int | None = None, *,
    restart: bool = False,
) -> None:
    """Start a new draft and ask the first question. A draft in progress with something in
    it (text, pictures, a location) is never dropped silently: the resident chooses."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    language = await resident_language(update, context)
    _ = context.texts(language)
    pseudonym = pseudonym_of(context, user)
    if not restart:
        draft = await context.services.intake.current(pseudonym)
        if draft is not None and draft.has_content:
            await context.bot.send_message(
                chat.id, draft_in_progress_text(draft, _), parse_mode=ParseMode.HTML,
                reply_markup=InlineKeyboardMarkup([
                    [InlineKeyboardButton(_("▶️ Continue that tip"), callback_data="d:resume")],
                    [InlineKeyboardButton(
                        _("🗑 Delete it and start again"),
                        callback_data="d:restart" if commune_code is None
                        else f"d:restart:{commune_code}",
                    )],
                ]),
            )
            return
    try:
        view = await context.services.intake.begin(
            pseudonym, language, commune_code=commune_code
        )
    except IntakeError as error:
        await context.bot.send_message(chat.id, refusal(error, _))
        return
    await ask(context, chat.id, view, _)


def draft_in_progress_text(view: DraftView, _: Gettext) -> str:
    return _(
        "You are already writing a tip (to: {place}; pictures: {count}). Continue it, or "
        "delete it and start again?"
    ).format(place=_place(view), count=view.photo_count)


async def new_command(update: Update, context: TiplineContext) -> None:
    """/new: start a tip."""
    await begin(update, context)


async def cancel_command(update: Update, context: TiplineContext) -> None:
    """/cancel: drop the draft, whatever its step."""
    assert update.effective_user is not None and update.effective_message is not None
    _ = await resident_texts(update, context)
    dropped = await context.services.intake.cancel(pseudonym_of(context, update.effective_user))
    await update.effective_message.reply_text(
        _("Your draft tip was deleted. Nothing was sent.") if dropped
        else _("There is no tip in progress.")
    )


# --- messages during a draft ---------------------------------------------------------------


async def on_text(update: Update, context: TiplineContext) -> bool:
    """Text while a draft is open; returns False if there is no draft (caller decides)."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None and message.text is not None
    pseudonym = pseudonym_of(context, user)
    intake = context.services.intake
    view = await intake.current(pseudonym)
    if view is None:
        return False
    _ = context.texts(view.language)
    if view.step == Step.COMMUNE:
        await offer_communes(message, context, message.text, _)
        return True
    if view.step not in (Step.DESCRIPTION, Step.ATTACHMENTS):
        await message.reply_text(_("Please choose with the buttons above, or /cancel."))
        return True
    try:
        view = await intake.add_text(pseudonym, message.text)
    except IntakeError as error:
        await message.reply_text(refusal(error, _))
        return True
    await ask(context, message.chat_id, view, _)
    return True


async def on_photo(update: Update, context: TiplineContext) -> None:
    """A picture sent as a photo: download the largest size, sanitise, attach."""
    message = update.effective_message
    assert message is not None and message.photo
    largest = max(message.photo, key=lambda size: size.width * size.height)
    target = await answers.question_replied_to(update, context)
    if target is not None:
        await answers.relay_picture(update, context, target, largest.file_id, largest.file_size)
        return
    await _attach_picture(update, context, largest.file_id, largest.file_size)


async def on_document(update: Update, context: TiplineContext) -> None:
    """A file: only pictures are accepted (this is how EXIF/GPS would sneak in)."""
    message = update.effective_message
    assert message is not None and message.document is not None
    document = message.document
    name = (document.file_name or "").lower()
    looks_like_image = (document.mime_type or "") in IMAGE_MIME_TYPES or name.endswith(
        (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")
    )
    if not looks_like_image:
        _ = await resident_texts(update, context)
        await message.reply_text(
            _("Only pictures can be attached (JPEG, PNG, WebP or HEIC). This file was not added.")
        )
        return
    target = await answers.question_replied_to(update, context)
    if target is not None:
        await answers.relay_picture(update, context, target, document.file_id, document.file_size)
        return
    await _attach_picture(update, context, document.file_id, document.file_size)


async def on_location(update: Update, context: TiplineContext) -> None:
    """A shared location: picks the commune when boundaries are known; else it is attached
    to the tip as the place of the incident."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and message.location is not None and user is not None
    pseudonym = pseudonym_of(context, user)
    intake = context.services.intake
    view = await intake.current(pseudonym)
    _ = await resident_texts(update, context)
    if view is None:
        await message.reply_text(_("To send a tip, tap /new first."))
        return
    lat, lon = message.location.latitude, message.location.longitude
    if view.step == Step.COMMUNE:
        code = context.services.locator.locate(lat, lon)
        if code is None:
            await message.reply_text(_(
                "I could not tell the commune from this location. "
                "Please type the name of the commune or ward."
            ))
            return
        view = await intake.choose_commune(pseudonym, code)
        # Shared to find the commune, it is likely where the resident is: kept for the tip
        # only if they say it is also where it happened (it travels in the button, the
        # server keeps nothing meanwhile).
        here = f"d:lh:{lat:.6f}:{lon:.6f}"
        await message.reply_text(
            _("📍 This location is in {place}. Is it also where it happened?").format(
                place=_place(view)),
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup([
                [InlineKeyboardButton(_("Yes, it happened here"), callback_data=here)],
                [InlineKeyboardButton(_("No, only to find the commune"), callback_data="d:ln")],
            ]),
        )
        return
    try:
        view = await intake.set_location(pseudonym, lat, lon)
    except IntakeError as error:
        await message.reply_text(refusal(error, _))
        return
    await message.reply_text(_("📍 Location of the incident added."))


async def on_other_media(update: Update, context: TiplineContext) -> None:
    """Stickers, voice, video...: politely refused, nothing changes."""
    assert update.effective_message is not None
    _ = await resident_texts(update, context)
    await update.effective_message.reply_text(
        _("This mailbox accepts text, pictures and locations only.")
    )


# --- buttons -------------------------------------------------------------------------------


async def on_button(update: Update, context: TiplineContext) -> None:
    """Draft buttons; the data is parsed and checked, never trusted."""
    query = update.callback_query
    assert query is not None and query.message is not None
    pseudonym = pseudonym_of(context, query.from_user)
    intake = context.services.intake
    _ = await resident_texts(update, context)
    parts = (query.data or "").split(":")
    chat_id = query.message.chat.id
    try:
        match parts:
            case ["d", "c", code] if code.isascii() and code.isdigit():
                view = await intake.choose_commune(pseudonym, int(code))
            case ["d", "cc"]:
                view = await intake.change_commune(pseudonym)
            case ["d", "k", key]:
                view = await intake.choose_category(pseudonym, key)
            case ["d", "u", flag] if flag in ("0", "1"):
                view = await intake.set_urgency(pseudonym, flag == "1")
            case ["d", "done"]:
                view = await intake.finish_attachments(pseudonym)
            case ["d", "resume"]:
                current = await intake.current(pseudonym)
                if current is None:
                    raise IntakeError("no_draft")
                view = current
            case ["d", "restart", *code] if not code or (
                len(code) == 1 and code[0].isascii() and code[0].isdigit()
                and len(code[0]) <= 9
            ):
                await answer(query)
                await _close_buttons(query.message)
                await begin(update, context, int(code[0]) if code else None, restart=True)
                return
            case ["d", "lh", lat, lon]:
                view = await intake.keep_commune_location(
                    pseudonym, _coordinate(lat), _coordinate(lon))
            case ["d", "ln"]:
                view = await intake.drop_commune_location(pseudonym)
            case ["d", "x"]:
                await answer(query)
                await intake.cancel(pseudonym)
                await _close_buttons(query.message)
                await context.bot.send_message(
                    chat_id, _("Your draft tip was deleted. Nothing was sent.")
                )
                return
            case ["d", "ok"]:
                await _submit(context, query, pseudonym, chat_id, _)
                return
            case _:
                raise IntakeError("bad_button")
    except IntakeError as error:
        await answer(query, refusal(error, _), show_alert=True)
        return
    await answer(query)
    await _close_buttons(query.message)
    await ask(context, chat_id, view, _)


def _coordinate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise IntakeError("bad_location") from None


async def _submit(
    context: TiplineContext, query: CallbackQuery, pseudonym: str, chat_id: int, _: Gettext
) -> None:
    """Commit first, then tell the resident, then wake the outbox. The button is answered
    while the tip commits; a failed answer never stands between a commit and its receipt.
    Once the tip is committed nothing here says "try again": a receipt Telegram did not take
    (5xx, timeout, 429) is handed to the outbox, which sends the same receipt through the
    sealed reply address (its row was committed with the tip)."""
    services = context.services
    answered = asyncio.ensure_future(_answer_quietly(query))
    try:
        result = await services.intake.submit(
            pseudonym, ReplyAddress(TELEGRAM, str(chat_id)), channel="telegram"
        )
    except IntakeError as error:
        await answered
        await context.bot.send_message(chat_id, refusal(error, _))
        return
    services.outbox.wake()
    text = receipt_text(_, result.code, duplicate=result.duplicate)
    *_done, failure = await asyncio.gather(
        answered, _close_buttons(query.message), _send_receipt(context, chat_id, text)
    )
    await _settle_receipt(context, result, failure)


async def _send_receipt(context: TiplineContext, chat_id: int, text: str) -> Exception | None:
    """The receipt, at once; returns why Telegram did not take it (None: sent)."""
    try:
        await raw_call(context.bot, "sendMessage", {  # the busiest call of all: no Message built
            "chat_id": chat_id, "parse_mode": "HTML", "text": text,
        })
    except Exception as error:
        return error
    return None


async def _settle_receipt(
    context: TiplineContext, result: Submitted, failure: Exception | None
) -> None:
    """Tell the outbox how the receipt went: sent (its safety-net row is done) or not (the
    outbox sends it now). If even this fails, the row comes due by itself a little later
    (a merged duplicate's answer has no such row: its code stays in /mytips)."""
    outbox = context.services.outbox
    try:
        if failure is None:
            if not result.duplicate:  # a merged duplicate has no row of its own
                await outbox.receipt_sent(result.tip_id)
            return
        log.warning("receipt not sent, handed to the outbox", extra={
            "tip_id": result.tip_id, "error_type": type(failure).__name__})
        retry_after = None
        if isinstance(failure, RetryAfter):
            wait = failure.retry_after
            retry_after = float(wait.total_seconds() if isinstance(wait, timedelta) else wait)
        await outbox.receipt_missed(
            result.tip_id, retry_after=retry_after, duplicate=result.duplicate
        )
    except Exception:
        log.warning("could not record how the receipt went", exc_info=True,
                    extra={"tip_id": result.tip_id})


async def _answer_quietly(query: CallbackQuery) -> None:
    try:
        await answer(query)
    except Exception:  # the spinner times out by itself; the tip matters more
        log.warning("could not answer a confirm button", exc_info=True)


# --- prompts -------------------------------------------------------------------------------


async def ask(context: TiplineContext, chat_id: int, view: DraftView, _: Gettext) -> None:
    """Send the question for the draft's current step."""
    text, buttons = prompt(context, view, _)
    await context.bot.send_message(
        chat_id, text, parse_mode=ParseMode.HTML,
        reply_markup=InlineKeyboardMarkup(buttons) if buttons else None,
    )


def prompt(
    context: TiplineContext, view: DraftView, _: Gettext
) -> tuple[str, list[list[InlineKeyboardButton]]]:
    cancel = InlineKeyboardButton(_("❌ Cancel"), callback_data="d:x")
    place = _place(view)
    if view.step == Step.COMMUNE:
        return _(
            "Which commune or ward police should receive this tip? Type its name "
            "(without accents is fine, e.g. “phuc khanh lao cai”), or share a location."
        ), [[cancel]]
    if view.step == Step.CATEGORY:
        categories = context.services.categories.all()
        rows = [
            [InlineKeyboardButton(c.label(view.language), callback_data=f"d:k:{c.key}")
             for c in categories[i:i + 2]]
            for i in range(0, len(categories), 2)
        ]
        rows.append([InlineKeyboardButton(_("Change commune"), callback_data="d:cc"), cancel])
        return _("To: {place}").format(place=place) + "\n" + _("What is it about?"), rows
    if view.step == Step.URGENCY:
        return _("Is it happening right now and does someone need help urgently?"), [
            [InlineKeyboardButton(_("🔴 Urgent – happening now"), callback_data="d:u:1")],
            [InlineKeyboardButton(_("Not urgent"), callback_data="d:u:0")],
            [cancel],
        ]
    if view.step == Step.DESCRIPTION:
        text = _(
            "Describe what happened: where, when, who, what. Concrete facts make a tip much "
            "easier to verify. Anonymous tips are received and checked when they contain "
            "concrete facts. (At most 4,000 characters.)"
        )
        if view.urgent:
            text = _(
                "🔴 If anyone is in danger, CALL 113 NOW. This tip will be marked urgent "
                "and shown to the police group at once."
            ) + "\n\n" + text
        return text, [[cancel]]
    if view.step == Step.ATTACHMENTS:
        return _(
            "Noted. You may add up to 10 pictures (as photos or as files: JPEG, PNG, WebP, "
            "HEIC) and the location of the incident (📎 → Location), or more text. "
            "Tap “Done” when finished."
        ) + "\n" + _("Pictures: {count}/10").format(count=view.photo_count), [
            [InlineKeyboardButton(_("✅ Done – review"), callback_data="d:done"), cancel]
        ]
    return review_text(context, view, _), [
        [InlineKeyboardButton(_("📨 Send the tip"), callback_data="d:ok")],
        [cancel],
    ]


REVIEW_CAPTION_CHARS = 100


def review_text(context: TiplineContext, view: DraftView, _: Gettext) -> str:
    category = context.services.categories.get(view.category or "")
    description = view.description or ""
    shown = description if len(description) <= 1500 else description[:1500] + "…"
    lines = [
        "<b>" + _("Please check your tip:") + "</b>",
        _("To: {place}").format(place=_place(view)),
        _("Type: {category}").format(
            category=html.escape(category.label(view.language) if category else "?")
        ),
        _("Urgent: {answer}").format(answer=_("yes") if view.urgent else _("no")),
        _("Pictures: {count}").format(count=view.photo_count)
        + " · " + _("Location: {answer}").format(
            answer=_("yes") if view.has_location else _("no")),
        # each caption shortened here (police get it whole): ten of 900 characters plus the
        # description must still fit in one message of at most 4,096
        *(f"📷 {number}: " + html.escape(echo(caption, REVIEW_CAPTION_CHARS))
          for number, caption in view.captions),
        "",
        html.escape(shown),
        "",
        _("Tap “Send the tip” to send it. Your name, account and phone number are never shown "
          "to the police."),
    ]
    return "\n".join(lines)


def _place(view: DraftView) -> str:
    if view.commune is None:
        return "?"
    province = view.province.name if view.province else ""
    return html.escape(f"{view.commune.name}, {province}".rstrip(", "))


async def offer_communes(message: Message, context: TiplineContext, query: str, _: Gettext) -> None:
    matches = context.services.directory.search(query, limit=SEARCH_RESULTS)
    if not matches:
        await message.reply_text(_(
            "No commune or ward matches “{query}”. Try the name with its province, "
            "e.g. “phuc khanh lao cai”."
        ).format(query=echo(query)))
        return
    buttons = [
        [InlineKeyboardButton(m.label(), callback_data=f"d:c:{m.commune.code}")] for m in matches
    ]
    buttons.append([InlineKeyboardButton(_("❌ Cancel"), callback_data="d:x")])
    await message.reply_text(
        _("Choose the commune or ward:"), reply_markup=InlineKeyboardMarkup(buttons)
    )


# --- pictures ------------------------------------------------------------------------------


async def _attach_picture(
    update: Update, context: TiplineContext, file_id: str, file_size: int | None
) -> None:
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    pseudonym = pseudonym_of(context, user)
    language = await resident_language(update, context)
    _ = context.texts(language)
    intake = context.services.intake
    caption = (message.caption or "").strip() or None
    view = await intake.current(pseudonym)
    try:
        if view is not None and view.step == Step.DESCRIPTION:
            if caption is not None:  # the caption describes it: description + first picture
                view = await intake.add_text(pseudonym, caption)
                caption = None
                await ask(context, message.chat_id, view, _)
            elif message.media_group_id is not None:  # the album's captioned picture may
                view = await _after_description(context, pseudonym)  # be a moment ahead
        if view is None or view.step != Step.ATTACHMENTS:
            await message.reply_text(_(
                "Pictures can be added after you describe what happened. You can also send "
                "the description as the picture's caption. To send a tip, tap /new."
            ))
            return
        caption = checked_caption(caption)  # before anything is downloaded
        # counted against the draft's 10 with this resident's pictures still in work,
        # before anything is downloaded
        async with received_picture(
            context, pseudonym, file_id, file_size, already=view.photo_count, limit=MAX_PHOTOS
        ) as photo:
            count = await intake.add_photo(
                pseudonym, photo, order=message.message_id, caption=caption
            )
    except PictureRefused as refused:
        await message.reply_text(photo_refusal(refused.reason, _))
        return
    except IntakeError as error:
        await message.reply_text(refusal(error, _))
        return
    _schedule_photo_ack(
        context, pseudonym, message.chat_id, language, count, captioned=caption is not None
    )


ALBUM_WAIT_SECONDS = 2.0


async def _after_description(context: TiplineContext, pseudonym: str) -> DraftView | None:
    """The draft once it is past the description step, if that happens within a moment
    (the pictures of one album are handled at once; the captioned one moves the draft on)."""
    view = None
    for _attempt in range(int(ALBUM_WAIT_SECONDS / 0.2)):
        await asyncio.sleep(0.2)
        view = await context.services.intake.current(pseudonym)
        if view is None or view.step != Step.DESCRIPTION:
            break
    return view


def _schedule_photo_ack(
    context: TiplineContext, pseudonym: str, chat_id: int, language: str, count: int, *,
    captioned: bool = False,
) -> None:
    """One "pictures received" message after an album settles, instead of one per picture.
    The job is named by pseudonym: job names reach the scheduler's logs, chat ids must not."""
    job_queue = context.job_queue
    assert job_queue is not None
    name = f"photo-ack:{pseudonym[:16]}"
    for job in job_queue.get_jobs_by_name(name):
        if isinstance(job.data, dict):
            count = max(count, job.data["count"])
            captioned = captioned or job.data["captioned"]
        job.schedule_removal()
    job_queue.run_once(
        _send_photo_ack,  # type: ignore[arg-type]  # PTB types jobs with its default context
        PHOTO_ACK_DELAY_SECONDS, name=name,
        data={"chat_id": chat_id, "language": language, "count": count, "captioned": captioned},
    )


async def _send_photo_ack(context: TiplineContext) -> None:
    job = context.job
    assert job is not None and isinstance(job.data, dict)
    _ = context.texts(job.data["language"])
    await context.bot.send_message(
        job.data["chat_id"],
        _("📷 Pictures attached: {count}/10. Send more, or tap “Done”.").format(
            count=job.data["count"]
        ) + ("\n" + _("Captions are kept with their pictures and passed on to the police.")
             if job.data["captioned"] else ""),
        reply_markup=InlineKeyboardMarkup([[
            InlineKeyboardButton(_("✅ Done – review"), callback_data="d:done"),
            InlineKeyboardButton(_("❌ Cancel"), callback_data="d:x"),
        ]]),
    )


# --- sentences -----------------------------------------------------------------------------


def refusal(error: IntakeError, _: Gettext) -> str:
    details = error.details
    sentences = {
        "banned": _("Sorry, tips from this account are not accepted by the mailbox. "
                    "In an emergency, call 113 or go to the nearest police station."),
        "rate_hour": _("You have sent {limit} tips in the last hour. Please try again later. "
                       "In an emergency, call 113."),
        "rate_day": _("You have sent {limit} tips in the last 24 hours. Please try again "
                      "tomorrow. In an emergency, call 113."),
        "no_draft": _("There is no tip in progress. To send a tip, tap /new."),
        "wrong_step": _("That step is already done. Please use the latest message, or /cancel."),
        "caption_too_long": _("This caption is too long ({length} characters; at most "
                              "{limit}). Please send the picture again with a shorter caption, "
                              "or send the text as a message. Nothing was added."),
        "text_too_long": _("This is too long ({length} characters; at most {limit}). Please "
                           "shorten it and send it again. Nothing was added."),
        "too_many_photos": _("A tip can have at most {limit} pictures. This one was not added."),
        "empty_description": _("Please describe what happened in a few words."),
        "unknown_commune": _("That commune is not in the list. Please type its name again."),
        "unknown_category": _("This button is no longer valid."),
        "bad_button": _("This button is no longer valid."),
        "bad_location": _("This location is not valid."),
    }
    return sentences.get(error.reason, _("This button is no longer valid.")).format(**details)


async def _close_buttons(message: object) -> None:
    """Remove the buttons of an answered prompt so old buttons are not pressed again."""
    if isinstance(message, Message) and message.reply_markup is not None:
        try:
            await raw_call(message.get_bot(), "editMessageReplyMarkup", {
                "chat_id": message.chat_id, "message_id": message.message_id,
            })
        except Exception:  # an old or already-edited message: nothing to close
            log.debug("could not close buttons", exc_info=True)
