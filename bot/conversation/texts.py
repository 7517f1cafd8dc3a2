"""The sentences and prompts of the resident conversation (gettext ``_`` of the resident's
language), built from plain domain views: no channel, no database."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from bot.conversation.model import Choice, Choices, Say, rows
from bot.domain.cards import format_time
from bot.domain.categories import Categories
from bot.domain.communes import Commune, Province, place_in_sentence
from bot.domain.intake import DraftView, IntakeError, Step
from bot.domain.status import resident_label
from bot.domain.text import echo
from bot.domain.tips import TipProgress
from bot.i18n import SUPPORTED_LANGUAGES, Gettext

# choice ids (Telegram sends them back as callback data; keep them short and stable)
CANCEL, DONE, CONFIRM, CHANGE_COMMUNE = "d:x", "d:done", "d:ok", "d:cc"
RESUME, RESTART, NOT_HERE = "d:resume", "d:restart", "d:ln"
LANGUAGE_PREFIX = "lang:"
MENU_NEW, MENU_LOOKUP, MENU_SUBSCRIBE, MENU_LANGUAGE = "m:new", "m:look", "m:sub", "m:lang"
MENU_UNSUBSCRIBE = "m:unsub"  # the button under every announcement
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
DONE_MARK = " ✓"


def place(view: DraftView) -> str:
    """The draft's commune, as it reads inside a sentence, HTML-escaped."""
    return html.escape(place_in_sentence(view.commune, view.province))


def cancel_choice(_: Gettext) -> Choice:
    return Choice(CANCEL, _("❌ Cancel"))


def attachments_choices(_: Gettext) -> Choices:
    return rows([Choice(DONE, _("✅ Done – review")), cancel_choice(_)])


def welcome_line(_: Gettext) -> str:
    """For a resident who came straight from a poster's QR code and skipped /start."""
    return _("🔒 Anonymous: the police never see your name, account or phone number. "
             "In an emergency, call 113.")


def prompt(view: DraftView, categories: Categories, _: Gettext) -> Say:
    """The question for the draft's current step."""
    cancel = cancel_choice(_)
    if view.step == Step.COMMUNE:
        return Say(_(
            "Which commune or ward police should receive this tip? Type its name "
            "(without accents is fine, e.g. “phuc khanh lao cai”), or share a location."
        ), rows([cancel]), html=True)
    if view.step == Step.CATEGORY:
        listed = categories.all()
        lines = [
            [Choice(f"d:k:{c.key}", c.label(view.language)) for c in listed[i:i + 2]]
            for i in range(0, len(listed), 2)
        ]
        lines.append([Choice(CHANGE_COMMUNE, _("Change commune")), cancel])
        return Say(_("To: {place}").format(place=place(view)) + "\n" + _("What is it about?"),
                   rows(*lines), html=True)
    if view.step == Step.URGENCY:
        return Say(_("Is it happening right now and does someone need help urgently?"), rows(
            [Choice("d:u:1", _("🔴 Urgent – happening now"))],
            [Choice("d:u:0", _("Not urgent"))],
            [cancel],
        ), html=True)
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
        return Say(text, rows([cancel]), html=True)
    if view.step == Step.ATTACHMENTS:
        return Say(_(
            "Noted. You may add up to 10 pictures (as photos or as files: JPEG, PNG, WebP, "
            "HEIC) and the location of the incident (share a location: the attach button "
            "📎 → Location), or more text. Tap “Done” when finished."
        ) + "\n" + _("Pictures: {count}/10").format(count=view.photo_count),
            attachments_choices(_), html=True)
    return Say(review_text(view, categories, _), rows(
        [Choice(CONFIRM, _("📨 Send the tip"))], [cancel]), html=True)


REVIEW_CAPTION_CHARS = 100


def review_text(view: DraftView, categories: Categories, _: Gettext, *, sent: bool = False) -> str:
    category = categories.get(view.category or "")
    description = view.description or ""
    shown = description if len(description) <= 1500 else description[:1500] + "…"
    lines = [
        "<b>" + (_("Your tip (sent):") if sent else _("Please check your tip:")) + "</b>",
        _("To: {place}").format(place=place(view)),
        _("Type: {category}").format(
            category=html.escape(category.label(view.language) if category else "?")
        ),
        _("Urgent: {answer}").format(answer=_("yes") if view.urgent else _("no")),
        attachments_summary(view, _),
        # each caption shortened here (police get it whole): ten of 900 characters plus the
        # description must still fit in one message of at most 4,096
        *(f"📷 {number}: " + html.escape(echo(caption, REVIEW_CAPTION_CHARS))
          for number, caption in view.captions),
        "",
        html.escape(shown),
        "",
        _("✅ Sent. Your name, account and phone number are never shown to the police.")
        if sent else
        _("Tap “Send the tip” to send it. Your name, account and phone number are never shown "
          "to the police."),
    ]
    return "\n".join(lines)


def attachments_summary(view: DraftView, _: Gettext) -> str:
    return _("Pictures: {count}").format(count=view.photo_count) + " · " + _(
        "Location: {answer}").format(answer=_("yes") if view.has_location else _("no"))


def answered(choice_id: str, view: DraftView, categories: Categories, _: Gettext) -> str | None:
    """What a prompt says once answered by ``choice_id`` (its choices gone): the answer,
    ticked. None: the prompt's text stays (only its choices go)."""
    parts = choice_id.split(":")
    if parts[:2] == ["d", "c"]:
        return _("To: {place}").format(place=place(view)) + DONE_MARK
    if parts[:2] == ["d", "k"]:
        category = categories.get(view.category or "")
        label = category.label(view.language) if category else "?"
        return (_("To: {place}").format(place=place(view)) + "\n"
                + _("Type: {category}").format(category=html.escape(label)) + DONE_MARK)
    if parts[:2] == ["d", "u"]:
        return _("Urgent: {answer}").format(
            answer=_("yes") if view.urgent else _("no")) + DONE_MARK
    if choice_id == DONE:
        return attachments_summary(view, _) + DONE_MARK
    if choice_id == CHANGE_COMMUNE:
        return _("Change commune") + DONE_MARK
    if choice_id == RESUME:
        return _("▶️ Continue that tip") + DONE_MARK
    if parts[:2] == ["d", "lh"] or choice_id == NOT_HERE:
        question = _("📍 This location is in {place}. Is it also where it happened?")
        label = (_("Yes, it happened here") if choice_id != NOT_HERE
                 else _("No, only to find the commune"))
        return question.format(place=place(view)) + "\n" + label + DONE_MARK
    return None


def draft_in_progress(view: DraftView, commune_code: int | None, _: Gettext) -> Say:
    return Say(_(
        "You are already writing a tip (to: {place}; pictures: {count}). Continue it, or "
        "delete it and start again?"
    ).format(place=place(view), count=view.photo_count), rows(
        [Choice(RESUME, _("▶️ Continue that tip"))],
        [Choice(RESTART if commune_code is None else f"{RESTART}:{commune_code}",
                _("🗑 Delete it and start again"))],
    ), html=True)


def location_question(view: DraftView, latitude: float, longitude: float, _: Gettext) -> Say:
    # Shared to find the commune, it is likely where the resident is: kept for the tip only
    # if they say it is also where it happened (it travels in the choice id, the server
    # keeps nothing meanwhile).
    here = f"d:lh:{latitude:.6f}:{longitude:.6f}"
    return Say(
        _("📍 This location is in {place}. Is it also where it happened?").format(
            place=place(view)),
        rows([Choice(here, _("Yes, it happened here"))],
             [Choice(NOT_HERE, _("No, only to find the commune"))]),
        html=True,
    )


def photo_ack(count: int, captioned: bool, _: Gettext) -> Say:
    return Say(
        _("📷 Pictures attached: {count}/10. Send more, or tap “Done”.").format(count=count)
        + ("\n" + _("Captions are kept with their pictures and passed on to the police.")
           if captioned else ""),
        attachments_choices(_),
    )


def location_added(_: Gettext) -> Say:
    return Say(_("📍 Location of the incident added.") + "\n"
               + _("Send more, or tap “Done”."), attachments_choices(_))


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


# --- follow-up and menus ------------------------------------------------------------------


def status_label(status: str, _: Gettext) -> str:
    return resident_label(status, _)  # the one table: bot/domain/status.py


def describe_status(tip: TipProgress, _: Gettext, zone: ZoneInfo) -> str:
    return _("Tip {code} (sent {when}): {status}.").format(
        code=f"<code>{tip.code}</code>",
        when=format_time(tip.created_at, zone),
        status=status_label(tip.status, _),
    )


def main_menu(_: Gettext) -> Choices:
    return rows(
        [Choice(MENU_NEW, _("📝 Send a tip"))],
        [Choice(MENU_LOOKUP, _("🔎 Follow a tip"))],
        [Choice(MENU_SUBSCRIBE, _("🔔 Get announcements"))],
        [Choice(MENU_LANGUAGE, _("🌐 Language"))],
    )


def language_choices() -> Choices:
    return rows([Choice(LANGUAGE_PREFIX + code, LANGUAGE_NAMES[code])
                 for code in SUPPORTED_LANGUAGES])


def greeting(_: Gettext) -> Say:
    return Say(
        _("Hello! This is the security mailbox of the commune police: "
          "you can send tips about security and public order here, anonymously.")
        + "\n\n"
        + _("• Your identity stays secret: the police see only an alias, "
            "never your name, account or phone number.")
        + "\n"
        + _("• Concrete facts (where, when, who, what) make a tip much easier to verify.")
        + "\n"
        + _("• In an emergency, call 113 right now.")
        + "\n\n"
        + _("/help shows what I can do, /language changes the language."),
        main_menu(_),
    )


def help_text(_: Gettext) -> str:
    return "\n".join([
        _("What you can do here:"),
        _("/new – send a tip"),
        _("/status <code> – follow a tip; /mytips – your tips"),
        _("/cancel – delete the tip you are writing"),
        _("/subscribe, /unsubscribe – security announcements"),
        _("/start – about this mailbox"),
        _("/language – choose Vietnamese or English"),
        _("/help – this help"),
    ]) + "\n\n" + _("In an emergency, call 113 right now.")


def subscription_choices(
    commune: Commune | None, province: Province | None, _: Gettext
) -> Say:
    """Which announcements to receive: the commune used last first (the default), its
    province, or all of them."""
    lines: list[list[Choice]] = []
    if commune is not None and province is not None:
        lines.append([Choice(f"{MENU_SUBSCRIBE}:c:{commune.code}", _("📍 {commune} (recommended)")
                             .format(commune=commune.name))])
        lines.append([Choice(f"{MENU_SUBSCRIBE}:p:{province.code}", "🏙 " + province.name)])
    lines.append([Choice(f"{MENU_SUBSCRIBE}:all", _("🇻🇳 The whole country"))])
    text = _("Which announcements would you like to receive? Those of your commune also "
             "bring the province's and the nationwide ones (19/8, 26/6).")
    if commune is None:
        text += "\n\n" + _("Once you have sent a tip, you can also choose your commune.")
    return Say(text, rows(*lines))


def stop_button(_: Gettext) -> tuple[str, str]:
    """The (label, choice id) under every announcement: opt out in one press."""
    return _("🔕 Stop these announcements"), MENU_UNSUBSCRIBE
