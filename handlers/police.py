"""Police triage in the commune group: card buttons, force-reply prompts, notes, /queue, /tip.

Callback data (never trusted, re-checked on the server): ``t:<tip id>:<action>[:<choice>]``.
The atomic change happens first (milliseconds), the callback is answered with its result,
then the slow work (card edits, messages to the reporter) goes through the outbox.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Awaitable
from datetime import datetime

from telegram import ForceReply, Message, ReplyParameters, Update, User
from telegram.constants import ParseMode

from bot.context import TiplineContext
from bot.domain.cards import format_time, reporter_alias
from bot.domain.deadlines import MAX_EXTENSION_DAYS, DeadlineChange, DeadlineRefusal, overdue
from bot.domain.receipts import code_of_tip_link
from bot.domain.records import EventRecord, TipRecord
from bot.domain.status import OPEN_STATUSES, TRANSITIONS, Action, police_label
from bot.domain.text import echo
from bot.domain.triage import Officer, TriageError, transfer_origin
from bot.i18n import N_, Gettext
from bot.telegram_transport import TelegramTransport, keyboard
from handlers.common import answer, police_texts

log = logging.getLogger(__name__)

CALLBACK = re.compile(r"^t:(\d{1,12}):([a-z]{2,10})(?::([a-z0-9_]{1,16}))?$")
SEARCH_RESULTS = 5
EVENT_LABELS = {  # the audit trail's events, as /tip lists them (police texts: Vietnamese)
    "received": N_("Audit: tip received"),
    "delivered": N_("Audit: card sent to the group"),
    "ack": N_("Audit: acknowledged"),
    "verify": N_("Audit: verifying"),
    "done": N_("Audit: processed"),
    "invalid": N_("Audit: invalid"),
    "transfer": N_("Audit: transferred"),
    "question": N_("Audit: question asked"),
    "answer": N_("Audit: reporter answered"),
    "note": N_("Audit: internal note"),
    "refused": N_("Audit: action refused"),
    "reporter_notified": N_("Audit: reporter informed"),
    "reporter_unreachable": N_("Audit: reporter unreachable"),
    "delivery_rerouted": N_("Audit: card delivery rerouted"),
    "duplicate_merged": N_("Audit: duplicate merged"),
    "reporter_banned": N_("Audit: reporter banned"),
    "complex": N_("Audit: complex case"),
    "extend": N_("Audit: deadline extended"),
}
# a settlement deadline change refused (bot/domain/deadlines.py), as the officer is told
DEADLINE_REFUSALS = {
    "closed": N_("Tip {code} is closed: its settlement deadline no longer changes."),
    "complex_already": N_("Tip {code} was already recorded as a complex case at {at}; this is "
                          "recorded only once."),
    "complex_not_taken_up": N_("Sorry, tip {code} is not taken up yet: take it up first "
                               "(Take up), then record it as a complex case."),
    "complex_late": N_("Sorry, tip {code} can no longer be recorded as a complex case: its "
                       "settlement deadline ({due}) has passed."),
    "extended_already": N_("Sorry, tip {code} was already extended by {days} days at {at}; "
                           "a deadline is extended only once."),
    "bad_days": N_("Sorry, an extension is from 1 to {max} days (at most 2 months)."),
    "extension_late": N_("Sorry, tip {code} can no longer be extended: an extension must be "
                         "requested at least 5 days before the settlement deadline ({due}), "
                         "that is by {latest}."),
    "no_reason": N_("Please give the reason too."),
}
COMPLEX_USAGE = N_("Usage: /complex <code> <reason>, e.g. /complex 7K3Q-9MXD to be verified "
                   "in several places")
EXTEND_USAGE = N_("Usage: /extend <code> <days> <reason>, e.g. /extend 7K3Q-9MXD 30 waiting "
                  "for an expert opinion")


# buttons that ask the officer to type something: (action, choice) -> (purpose, prompt, the
# action whose statuses it needs)
FORCE_REPLY_PROMPTS = {
    ("ask", None): ("ask_prompt", N_(
        "{officer}, reply to this message with your question for the reporter of tip {code}."
    ), "ask"),
    ("done", "duplicate"): ("dup_prompt", N_(
        "{officer}, reply to this message with the code of the tip that {code} duplicates."
    ), "done"),
    ("complex", None): ("complex_prompt", N_(
        "{officer}, reply to this message with the reason why tip {code} is a complex case "
        "(its settlement deadline becomes 2 months from receipt)."
    ), "complex"),
    ("transfer", "pick"): ("move_prompt", N_(
        "{officer}, reply to this message with the name of the commune or ward that should "
        "receive tip {code}."
    ), "transfer"),
}


def officer_of(user: User) -> Officer:
    return Officer(user.id, user.full_name[:128])


async def on_button(update: Update, context: TiplineContext) -> None:
    """A card button: parse, re-check tip/card/presser, change atomically, answer, refresh."""
    query = update.callback_query
    assert query is not None
    _ = police_texts(context)
    match = CALLBACK.match(query.data or "")
    message = query.message
    if match is None or not isinstance(message, Message):
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    tip_id, action, choice = int(match[1]), match[2], match[3]
    triage = context.services.triage
    try:
        tip = await triage.tip(tip_id)
    except TriageError:
        await answer(query, _("This button is no longer valid."), show_alert=True)
        return
    on_card = await triage.active_card(tip_id, message.chat.id, message.message_id)
    in_chat = on_card or (action == "xc" and await triage.has_active_card_in(
        tip_id, message.chat.id))
    if not in_chat:
        await answer(query, _("This card is out of date. Use /tip {code} for the current one.")
                           .format(code=tip.code), show_alert=True)
        return
    if not await triage.may_act(tip, query.from_user.id):
        await triage.record_refusal(tip_id, action, by=query.from_user.id)
        await answer(query,
            _("Sorry, only officers of this commune or province can handle this tip."),
            show_alert=True,
        )
        return
    await _dispatch(update, context, tip, action, choice, message)


async def _dispatch(
    update: Update, context: TiplineContext, tip: TipRecord, action: str, choice: str | None,
    message: Message,
) -> None:
    query = update.callback_query
    assert query is not None and tip.id is not None
    _ = police_texts(context)
    renderer = context.services.renderer
    officer = officer_of(query.from_user)
    if action == "back" and choice is None:
        await answer(query)
        await _edit_buttons(message, renderer.buttons(tip))
        return
    menu = action in ("done", "invalid", "transfer") and choice is None
    prompt = FORCE_REPLY_PROMPTS.get((action, choice))
    if menu or prompt is not None:  # a next step on the card: only if the status allows it
        needed = action if prompt is None else prompt[2]
        if tip.status not in _sources(needed):
            await answer(query, _conflict_text(tip, _), show_alert=True)
            return
        if action == "complex":  # refused before the officer types a reason for nothing
            try:
                context.services.triage.deadline_check(tip, "complex")
            except DeadlineRefusal as refusal:
                await answer(query, deadline_refusal_text(refusal, tip, context),
                             show_alert=True)
                return
        await answer(query)
        if prompt is None:
            await _edit_buttons(message, renderer.choice_buttons(tip, action))
        else:
            purpose, text, _needed = prompt
            await _force_reply_prompt(context, message, tip, officer, purpose, _(text))
        return
    await _change(update, context, tip, action, choice, officer)


async def _change(
    update: Update, context: TiplineContext, tip: TipRecord, action: str, choice: str | None,
    officer: Officer,
) -> None:
    query = update.callback_query
    assert query is not None and tip.id is not None
    _ = police_texts(context)
    triage = context.services.triage
    try:
        if action == "transfer" and choice == "province":
            await triage.transfer(tip.id, officer, to_commune=None)
            result = _("Tip {code} was sent up to the province group.")
        elif action == "xc" and choice is not None and choice.isascii() and choice.isdigit():
            await triage.transfer(tip.id, officer, to_commune=int(choice))
            result = _("Tip {code} was transferred.")
        elif action in ("ack", "verify", "done", "invalid") and (
            (action in ("done", "invalid")) == (choice is not None)
        ):
            await triage.act(tip.id, Action(action), officer, choice=choice)
            result = _("Done: tip {code} updated.")
        else:
            raise TriageError("bad_choice")
    except TriageError as error:
        await answer(query, _refusal_text(error, tip, _), show_alert=True)
        return
    await answer(query, result.format(code=tip.code))
    context.services.outbox.wake()


def _sources(action: str) -> frozenset[str]:
    return TRANSITIONS[Action(action)][0]


def _conflict_text(tip: TipRecord, _: Gettext) -> str:
    status = police_label(tip.status, _)
    if tip.owner_name and tip.status != "new":
        return _("Already {status} – {officer} is in charge.").format(
            status=status.lower(), officer=tip.owner_name)
    return _("This tip is already: {status}.").format(status=status.lower())


def _refusal_text(error: TriageError, tip: TipRecord, _: Gettext) -> str:
    if error.reason == "conflict" and error.tip is not None:
        return _conflict_text(error.tip, _)
    if error.reason == "not_found":
        return _("This button is no longer valid.")
    return _("That choice is not possible for this tip.")


async def _edit_buttons(message: Message, buttons: list[list[tuple[str, str]]]) -> None:
    try:
        await message.edit_reply_markup(reply_markup=keyboard(buttons))
    except Exception as error:  # "message is not modified" and old messages: nothing to do
        if "not modified" not in str(error).lower():
            log.warning("could not edit card buttons", extra={"error_type": type(error).__name__})


async def _force_reply_prompt(
    context: TiplineContext, card: Message, tip: TipRecord, officer: Officer, purpose: str,
    text: str,
) -> None:
    assert tip.id is not None
    # the mention is what makes a selective ForceReply open the reply box for this officer
    mention = f'<a href="tg://user?id={officer.id}">{html.escape(officer.name)}</a>'
    prompt = await context.bot.send_message(
        card.chat.id,
        html.escape(text).format(officer=mention, code=tip.code),
        parse_mode=ParseMode.HTML,
        reply_markup=ForceReply(selective=True, input_field_placeholder="…"),
        reply_parameters=ReplyParameters(card.message_id, allow_sending_without_reply=True),
    )
    await context.services.triage.remember_prompt(
        tip.id, card.chat.id, prompt.message_id, purpose, officer
    )


# --- replies in the group: answers to prompts, internal notes ------------------------------


async def on_group_reply(update: Update, context: TiplineContext) -> None:
    """A reply in a police group: to our prompt (question, duplicate code, commune name) or
    to a card (internal note, never relayed)."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None and message.reply_to_message is not None
    text = (message.text or message.caption or "").strip()
    if not text:
        return
    triage = context.services.triage
    _ = police_texts(context)
    replied = message.reply_to_message.message_id
    prompt = await triage.prompt(message.chat.id, replied)
    if prompt is not None:
        if prompt.officer_id != user.id:
            await message.reply_text(
                _("Only the officer who pressed the button can answer this request.")
            )
            return
        prompted = await triage.tip(prompt.tip_id)
        if not await triage.may_act(prompted, user.id):
            await triage.record_refusal(prompt.tip_id, prompt.purpose, by=user.id)
            return
        assert prompt.id is not None
        if not await triage.consume_prompt(prompt.id):
            return  # answered already (a second reply must not send a second question)
        await _answer_prompt(message, context, prompted, prompt.purpose, text, officer_of(user))
        return
    carded = await triage.card_tip(message.chat.id, replied)
    if carded is None or carded.id is None:
        return
    if not await triage.may_act(carded, user.id):
        await triage.record_refusal(carded.id, "note", by=user.id)
        return
    await triage.note(carded.id, officer_of(user), text)
    await message.reply_text(_("📝 Internal note saved (not sent to the reporter)."))


async def _answer_prompt(
    message: Message, context: TiplineContext, tip: TipRecord, purpose: str, text: str,
    officer: Officer,
) -> None:
    assert tip.id is not None
    _ = police_texts(context)
    triage = context.services.triage
    try:
        if purpose == "ask_prompt":
            await triage.ask(tip.id, officer, text)
            reply = _("✅ Question sent to the reporter of tip {code}.")
        elif purpose == "dup_prompt":
            original = await triage.tip_by_code(text)
            if original is None or original.id == tip.id:
                await message.reply_text(_("No other tip has the code “{code}”.").format(
                    code=echo(text, 20)))  # plain text: shown as typed
                return
            await triage.act(tip.id, Action.DONE, officer, choice="duplicate",
                             extra={"duplicate_of": original.code})
            reply = _("Done: tip {code} updated.")
        elif purpose == "move_prompt":
            await _offer_transfer_targets(message, context, tip, text)
            return
        elif purpose == "complex_prompt":
            await _declare_complex(message, context, tip, text, officer)
            return
        else:
            return
    except TriageError as error:
        await message.reply_text(_refusal_text(error, tip, _))
        return
    context.services.outbox.wake()
    await message.reply_text(reply.format(code=tip.code))


async def _offer_transfer_targets(
    message: Message, context: TiplineContext, tip: TipRecord, query: str
) -> None:
    _ = police_texts(context)
    matches = [m for m in context.services.directory.search(query, limit=SEARCH_RESULTS)
               if m.commune.code != tip.commune_code]
    if not matches:
        await message.reply_text(_("No commune matches “{query}”.").format(query=echo(query)))
        return
    buttons = [[(m.label(), f"t:{tip.id}:xc:{m.commune.code}")] for m in matches]
    await message.reply_text(
        _("Transfer tip {code} to:").format(code=tip.code), reply_markup=keyboard(buttons)
    )


# --- the settlement deadline: complex case, extension ----------------------------------------


def deadline_refusal_text(refusal: DeadlineRefusal, tip: TipRecord,
                          context: TiplineContext) -> str:
    """Why the deadline did not change, politely, in the police's language."""
    _ = police_texts(context)
    zone = context.services.settings.zone

    def when(moment: datetime | None) -> str:
        return format_time(moment, zone) if moment is not None else "?"

    text = DEADLINE_REFUSALS.get(refusal.reason, DEADLINE_REFUSALS["closed"])
    return _(text).format(code=tip.code, due=when(refusal.due), at=when(refusal.at),
                          latest=when(refusal.latest), days=refusal.days or 0,
                          max=MAX_EXTENSION_DAYS)


async def _declare_complex(
    message: Message, context: TiplineContext, tip: TipRecord, reason: str, officer: Officer,
) -> None:
    assert tip.id is not None
    await _change_deadline(
        message, context, tip,
        context.services.triage.declare_complex(tip.id, officer, reason),
        N_("⚖️ Tip {code} recorded as a complex case. Settlement deadline: {old} → {new}."))


async def _tip_to_change(
    message: Message, context: TiplineContext, typed_code: str
) -> TipRecord | None:
    """The tip a deadline command names, if this group sees it and the sender may act."""
    _ = police_texts(context)
    triage = context.services.triage
    tip = await triage.tip_by_code(typed_code)
    if tip is None or tip.id is None or not await triage.can_see_in(tip, message.chat.id):
        await message.reply_text(_("No tip with this code in this group's area."))
        return None
    assert message.from_user is not None
    if not await triage.may_act(tip, message.from_user.id):
        await triage.record_refusal(tip.id, "deadline", by=message.from_user.id)
        await message.reply_text(
            _("Sorry, only officers of this commune or province can handle this tip."))
        return None
    return tip


async def complex_command(update: Update, context: TiplineContext) -> None:
    """/complex <code> <reason>: the case is complex, settlement within 2 months."""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    args = context.args or []
    if len(args) < 2:
        await message.reply_text(_(COMPLEX_USAGE))
        return
    tip = await _tip_to_change(message, context, args[0])
    if tip is None or message.from_user is None:
        return
    await _declare_complex(message, context, tip, " ".join(args[1:]), officer_of(
        message.from_user))


async def extend_command(update: Update, context: TiplineContext) -> None:
    """/extend <code> <days> <reason>: the one extension of the settlement deadline."""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    args = context.args or []
    if len(args) < 3 or not (args[1].isascii() and args[1].isdigit() and len(args[1]) <= 4):
        await message.reply_text(_(EXTEND_USAGE))
        return
    tip = await _tip_to_change(message, context, args[0])
    if tip is None or tip.id is None or message.from_user is None:
        return
    days, reason = int(args[1]), " ".join(args[2:])
    await _change_deadline(
        message, context, tip,
        context.services.triage.extend(tip.id, officer_of(message.from_user), days, reason),
        N_("📅 Tip {code} extended by {days} days. Settlement deadline: {old} → {new}."),
        days=days)


async def _change_deadline(
    message: Message, context: TiplineContext, tip: TipRecord,
    change: Awaitable[tuple[TipRecord, DeadlineChange]], done: str, **values: object,
) -> None:
    """Run a deadline change (complex case, extension) and say how it went: the refusal's
    reason, or ``done`` (a msgid) with the old and new deadline; the card follows."""
    _ = police_texts(context)
    try:
        changed, what = await change
    except DeadlineRefusal as refusal:
        await message.reply_text(deadline_refusal_text(refusal, tip, context))
        return
    except TriageError as error:
        await message.reply_text(_refusal_text(error, tip, _))
        return
    context.services.outbox.wake()
    zone = context.services.settings.zone
    await message.reply_text(_(done).format(
        code=changed.code, old=format_time(what.old_due, zone),
        new=format_time(what.new_due, zone), **values))


# --- commands ------------------------------------------------------------------------------


async def queue_command(update: Update, context: TiplineContext) -> None:
    """/queue: open tips of this group's commune (or province), urgent and oldest first."""
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    tips = await context.services.triage.queue(message.chat.id)
    if not tips:
        await message.reply_text(_("No open tips for this group."))
        return
    zone = context.services.settings.zone
    now = context.services.clock.now()
    lines = [_("Open tips ({count}):").format(count=len(tips))]
    for tip in tips[:40]:
        due = tip.ack_due_at if tip.status == "new" else tip.settle_due_at
        late = " ⚠️ " + _("OVERDUE") if overdue(tip, now) else ""
        lines.append(
            f"{'🔴 ' if tip.urgent else ''}<code>{tip.code}</code> · "
            f"{html.escape(police_label(tip.status, _))} · "
            + _("due {when}").format(when=format_time(due, zone)) + late
        )
    if len(tips) > 40:
        lines.append(_("… and {count} more.").format(count=len(tips) - 40))
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def tip_command(update: Update, context: TiplineContext) -> None:
    """/tip <code>: post the card again (the new one is live) with the tip's history."""
    await _show_tip(update, context, " ".join(context.args or []))


async def tip_link_command(update: Update, context: TiplineContext) -> None:
    """``/tip_7K3Q_9MXD``, the one-tap form in digests and /overdue: as ``/tip 7K3Q-9MXD``.
    One addressed to another bot (``…@OtherBot``) is not ours to answer."""
    message = update.effective_message
    assert message is not None and message.text is not None
    command = message.text.split(maxsplit=1)[0]
    addressee = command.partition("@")[2]
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return
    await _show_tip(update, context, code_of_tip_link(command) or "")


async def _show_tip(update: Update, context: TiplineContext, typed_code: str) -> None:
    _ = police_texts(context)
    message = update.effective_message
    assert message is not None
    triage = context.services.triage
    tip = await triage.tip_by_code(typed_code)
    if tip is None or tip.id is None or not await triage.can_see_in(tip, message.chat.id):
        await message.reply_text(_("No tip with this code in this group's area."))
        return
    renderer = context.services.renderer
    history = await triage.history(tip.id)
    parts = renderer.render(
        tip, transferred_from=transfer_origin(history) if tip.transfers else None)
    card = await message.reply_text(
        parts[0], parse_mode=ParseMode.HTML,
        reply_markup=keyboard(renderer.buttons(tip)) if tip.status in OPEN_STATUSES else None,
    )
    await triage.add_card(tip.id, message.chat.id, card.message_id)
    for part in parts[1:]:  # a long description goes on in more messages, as on the first card
        await message.reply_text(part, parse_mode=ParseMode.HTML)
    await _attachments_below(context, tip, message.chat.id, card.message_id)
    await message.reply_text(
        history_text(tip, history, context), parse_mode=ParseMode.HTML
    )


async def _attachments_below(
    context: TiplineContext, tip: TipRecord, chat_id: int, card_id: int
) -> None:
    """What the card says comes below it: the tip's pictures (with their captions) and its
    location, as replies to the card, as when it was first delivered."""
    transport = TelegramTransport(context.bot)
    if tip.photo_count:
        pictures = await context.services.triage.pictures(tip.id)
        if pictures:
            renderer = context.services.renderer
            captions = [renderer.photo_caption(tip.code, index, len(pictures), picture.caption)
                        for index, picture in enumerate(pictures, 1)]
            await transport.send_photos(chat_id, [p.data for p in pictures], captions,
                                        reply_to=card_id)
    if tip.latitude is not None and tip.longitude is not None:
        await transport.send_location(chat_id, tip.latitude, tip.longitude, reply_to=card_id)


def history_text(tip: TipRecord, events: list[EventRecord], context: TiplineContext) -> str:
    _ = police_texts(context)
    zone = context.services.settings.zone
    renderer = context.services.renderer
    lines = [f"🗂 <b>{html.escape(_('Audit: tip history'))}</b> <code>{tip.code}</code>"]
    for event in events:
        who = {
            "resident": reporter_alias(tip.id, _), "system": _("Audit: system"),
            "unknown": _("Audit: someone not allowed to act"),
        }.get(event.actor_kind, event.actor_name or "?")
        details = json.loads(event.details or "{}")
        text = details.get("text")
        extra = f": {html.escape(str(text)[:500])}" if text else ""
        if event.event in ("done", "invalid") and details.get("choice"):
            choice = str(details["choice"])
            extra = f" ({html.escape(renderer.choice_label(choice))})"
        if event.event in ("complex", "extend") and details.get("new_due"):
            due = datetime.fromisoformat(str(details["new_due"]))
            extra = f": {html.escape(str(details.get('reason', ''))[:500])} (" + html.escape(
                _("settle by {time}").format(time=format_time(due, zone))) + ")"
        label = EVENT_LABELS.get(event.event)
        lines.append(
            f"• {format_time(event.at, zone)} – {_(label) if label else event.event}"
            f" – {html.escape(who)}{extra}"
        )
    text = "\n".join(lines)
    return text if len(text) <= 4000 else text[:3990] + "…"


async def group_help(update: Update, context: TiplineContext) -> None:
    """/help in a police group."""
    _ = police_texts(context)
    assert update.effective_message is not None
    await update.effective_message.reply_text("\n".join([
        _("Officers' commands:"),
        _("/queue – open tips of this group, urgent and oldest first"),
        _("/tip <code> – show a tip's card again, with its history"),
        _("/complex <code> <reason> – a complex case: to be settled within 2 months of "
          "receipt"),
        _("/extend <code> <days> <reason> – one extension of up to 60 days, requested at "
          "least 5 days before the deadline"),
        _("/stats [week|month|YYYY-MM] – figures and chart: received, processed, on time"),
        _("/overdue – overdue tips of this group now"),
        _("/where – what this group is linked to"),
        _("Buttons on a card: acknowledge, verifying, processed, transfer, invalid, ask the "
          "reporter. Replying to a card saves an internal note; only “Ask” reaches the "
          "reporter."),
    ]))



# --- membership changes --------------------------------------------------------------------


async def member_left(update: Update, context: TiplineContext) -> None:
    """"X left the group" (or was removed): forget that X was a member, at once."""
    message = update.effective_message
    if message is None or message.left_chat_member is None:
        return
    context.services.membership.forget(message.chat.id, message.left_chat_member.id)


async def member_changed(update: Update, context: TiplineContext) -> None:
    """A ``chat_member`` update (the bot administers the group): any change of status
    (left, removed, restricted, promoted) makes the next check ask Telegram again."""
    changed = update.chat_member
    if changed is None:
        return
    context.services.membership.forget(changed.chat.id, changed.new_chat_member.user.id)
