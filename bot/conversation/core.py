"""The resident conversation, once for every channel.

``Conversation.handle(resident, event, chat)`` is the one private-chat router: it decides
whether an event is a menu command, an answer to a police question or a step of the draft,
calls the domain services, and answers through the channel's :class:`Chat` with neutral
messages (text, choices, edits of its own prompts, pictures).

Flow of a tip (state kept in the database, see bot/domain/intake.py, docs/intake-flow.mmd)::

    /new, menu or deep link -> commune -> category -> urgency -> description
        -> attachments (pictures, location) -> review -> submit -> receipt code

Choice ids are short and re-checked here, never trusted: ``d:c:<commune>``,
``d:k:<category>``, ``d:u:<0|1>``, ``d:cc`` (change commune), ``d:done``, ``d:ok``, ``d:x``,
``d:resume``, ``d:restart[:<commune>]``, ``d:lh:<lat>:<lon>``, ``d:ln``; menus ``m:*``
(announcements: ``m:sub`` offers the scopes ``m:sub:c:<commune>``, ``m:sub:p:<province>``,
``m:sub:all``; ``m:unsub`` is the button under every announcement; "Dừng"/"STOP" typed opt
out too), languages ``lang:<code>``.

Answered prompts are edited to show the answer without choices; one prompt per resident
keeps live choices (the newest), the older one loses them when a newer one is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.conversation import texts
from bot.conversation.model import (
    Chat,
    Choice,
    ChoicePressed,
    CommandIn,
    Edit,
    Event,
    FileIn,
    LocationIn,
    MessageRef,
    OtherIn,
    PictureIn,
    Resident,
    Say,
    TextIn,
    rows,
)
from bot.conversation.pictures import PictureRefused, photo_refusal, received_picture
from bot.conversation.texts import refusal
from bot.domain.broadcast.subscribers import (
    SubscriptionError,
    Subscriptions,
    is_stop_word,
)
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.geo import CommuneLocator
from bot.domain.intake import (
    MAX_PHOTOS,
    DraftView,
    IntakeError,
    IntakeService,
    Step,
    Submitted,
    checked_caption,
)
from bot.domain.notices import receipt_text
from bot.domain.outbox import OutboxWorker
from bot.domain.picture_jobs import PictureJobs
from bot.domain.receipts import normalise_code
from bot.domain.residents import ResidentPreferences
from bot.domain.text import echo
from bot.domain.tips import LookupThrottled, TipQueries
from bot.domain.triage import ReporterAnswer, TriageService
from bot.i18n import SUPPORTED_LANGUAGES, Gettext, Translator

log = logging.getLogger(__name__)

PHOTO_ACK_DELAY_SECONDS = 1.2  # one acknowledgement per album, not one per picture
ALBUM_WAIT_SECONDS = 2.0
SEARCH_RESULTS = 5
MAX_ANSWER = 3000
LIVE_PROMPTS = 10_000  # residents whose newest prompt is remembered (to close it later)
REVIEWS = 2_000  # reviews awaiting the confirm, kept in their "sent" wording


class HasZone(Protocol):
    @property
    def zone(self) -> ZoneInfo: ...


class ConversationServices(Protocol):
    """What the conversation uses (bot.context.Services has all of it). Read at each use:
    the locator is replaced when boundaries are imported."""

    @property
    def settings(self) -> HasZone: ...
    @property
    def directory(self) -> CommuneDirectory: ...
    @property
    def translator(self) -> Translator: ...
    @property
    def residents(self) -> ResidentPreferences: ...
    @property
    def categories(self) -> Categories: ...
    @property
    def locator(self) -> CommuneLocator: ...
    @property
    def intake(self) -> IntakeService: ...
    @property
    def tips(self) -> TipQueries: ...
    @property
    def outbox(self) -> OutboxWorker: ...
    @property
    def triage(self) -> TriageService: ...
    @property
    def pictures(self) -> PictureJobs: ...
    @property
    def subscriptions(self) -> Subscriptions: ...


@dataclass
class _PendingAck:
    chat: Chat
    language: str
    count: int
    captioned: bool
    timer: asyncio.TimerHandle | None = None


class Conversation:
    def __init__(
        self, services: ConversationServices, *,
        photo_ack_delay: float = PHOTO_ACK_DELAY_SECONDS,
        album_wait: float = ALBUM_WAIT_SECONDS,
    ) -> None:
        self._s = services
        self._photo_ack_delay = photo_ack_delay
        self._album_wait = album_wait
        self._live: OrderedDict[str, tuple[Chat, MessageRef]] = OrderedDict()
        self._acks: dict[str, _PendingAck] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # the review as it will read once sent, per resident at the review step: the confirm
        # (the busiest step) edits it in without reading the draft again
        self._reviews: OrderedDict[str, str] = OrderedDict()

    @property
    def services(self) -> ConversationServices:
        return self._s

    # --- the router -----------------------------------------------------------------------

    async def handle(self, who: Resident, event: Event, chat: Chat) -> None:
        """Everything a resident sends in their private chat comes through here."""
        match event:
            case CommandIn():
                await self._command(who, event, chat)
            case ChoicePressed():
                await self._choice(who, event, chat)
            case TextIn():
                await self._text(who, event, chat)
            case PictureIn():
                target = await self._question(who, event.reply_to)
                if target is not None:
                    await self._relay_picture(who, target, event, chat)
                else:
                    await self._attach_picture(who, event, chat)
            case LocationIn():
                await self._location(who, event, chat)
            case FileIn():
                _ = await self._texts(who)
                await chat.send(Say(_("Only pictures can be attached (JPEG, PNG, WebP or HEIC). "
                                      "This file was not added.")))
            case OtherIn():
                _ = await self._texts(who)
                await chat.send(Say(_("This mailbox accepts text, pictures and locations only.")))

    async def _command(self, who: Resident, event: CommandIn, chat: Chat) -> None:
        name, args = event.name, event.args
        if name == "start":
            code = deep_link_commune(args)
            if code is not None and self._s.directory.commune(code):
                await self.begin(who, chat, code, welcome=True)
                return
            _ = await self._texts(who)
            await chat.send(texts.greeting(_))
        elif name == "new":
            await self.begin(who, chat)
        elif name == "cancel":
            _ = await self._texts(who)
            dropped = await self._s.intake.cancel(who.pseudonym)
            self._reviews.pop(who.pseudonym, None)
            if dropped:
                await self._close_live(who.pseudonym)
            await chat.send(Say(_("Your draft tip was deleted. Nothing was sent.") if dropped
                                else _("There is no tip in progress.")))
        elif name == "help":
            _ = await self._texts(who)
            await chat.send(Say(texts.help_text(_)))
        elif name == "language":
            _ = await self._texts(who)
            await chat.send(Say(_("Choose your language:"), texts.language_choices()))
        elif name == "status":
            _ = await self._texts(who)
            typed = " ".join(args)
            if not typed:
                await chat.send(Say(
                    _("Send /status followed by your receipt code, e.g. /status 7K3Q-9MXD.")))
                return
            await self._lookup(who, typed, chat, _)
        elif name == "mytips":
            await self._my_tips(who, chat)
        elif name == "subscribe":
            await self._offer_subscription(who, chat)
        elif name == "unsubscribe":
            await self._unsubscribe(who, chat)
        elif name == "answer":
            await self._answer_command(who, args, chat)
        else:  # a command this mailbox does not have: never taken as a draft's text
            _ = await self._texts(who)
            await chat.send(Say(_("There is no such command here. /help shows what you can do.")))

    async def _text(self, who: Resident, event: TextIn, chat: Chat) -> None:
        """Any text: an answer to a police question, the draft's answer, a receipt code, or
        a hint with the menu."""
        target = await self._question(who, event.reply_to)
        if target is not None:
            await self._relay_text(who, target, event.text, chat)
            return
        if is_stop_word(event.text):  # "Dừng", "STOP": no more announcements
            await self._unsubscribe(who, chat)
            return
        if await self._draft_text(who, event.text, chat):
            return
        _ = await self._texts(who)
        if normalise_code(event.text) is not None:
            await self._lookup(who, event.text, chat, _)
            return
        await chat.send(Say(_("To send a tip, tap /new. To follow a tip, send its receipt code."),
                            texts.main_menu(_)))

    async def _choice(self, who: Resident, event: ChoicePressed, chat: Chat) -> None:
        data = event.choice_id
        if data.startswith("d:"):
            await self._draft_choice(who, event, chat)
        elif data.startswith("m:"):
            await self._menu(who, data, chat, event.message)
        elif data.startswith(texts.LANGUAGE_PREFIX):
            await self._language_chosen(who, event, chat)
        else:  # forged, or from an older version
            _ = await self._texts(who)
            await chat.acknowledge(_("This button is no longer valid."))

    # --- the draft ------------------------------------------------------------------------

    async def begin(
        self, who: Resident, chat: Chat, commune_code: int | None = None, *,
        restart: bool = False, welcome: bool = False,
    ) -> None:
        """Start a new draft and ask the first question. A draft in progress with something
        in it (text, pictures, a location) is never dropped silently: the resident chooses."""
        language = await self._language(who)
        _ = self._s.translator.for_language(language)
        intake = self._s.intake
        if not restart:
            draft = await intake.current(who.pseudonym)
            if draft is not None and draft.has_content:
                await self._prompt(who, chat, texts.draft_in_progress(draft, commune_code, _))
                return
        self._reviews.pop(who.pseudonym, None)
        try:
            view = await intake.begin(who.pseudonym, language, commune_code=commune_code)
        except IntakeError as error:
            await chat.send(Say(refusal(error, _)))
            return
        say = self._ask(view, _)
        if welcome:  # from a poster's QR code: /start's welcome was skipped
            say = Say(say.text + "\n\n" + texts.welcome_line(_), say.choices, html=say.html)
        await self._prompt(who, chat, say)

    def _ask(self, view: DraftView, _: Gettext) -> Say:
        return texts.prompt(view, self._s.categories, _)

    async def _draft_text(self, who: Resident, text: str, chat: Chat) -> bool:
        """Text while a draft is open; False if there is none (the router goes on)."""
        intake = self._s.intake
        view = await intake.current(who.pseudonym)
        if view is None:
            return False
        _ = self._s.translator.for_language(view.language)
        if view.step == Step.COMMUNE:
            await self._offer_communes(who, text, chat, _)
            return True
        if view.step not in (Step.DESCRIPTION, Step.ATTACHMENTS):
            await chat.send(Say(_("Please choose with the buttons above, or /cancel.")))
            return True
        try:
            view = await intake.add_text(who.pseudonym, text)
        except IntakeError as error:
            await chat.send(Say(refusal(error, _)))
            return True
        await self._prompt(who, chat, self._ask(view, _))
        return True

    async def _offer_communes(self, who: Resident, query: str, chat: Chat, _: Gettext) -> None:
        matches = self._s.directory.search(query, limit=SEARCH_RESULTS)
        if not matches:
            await chat.send(Say(_(
                "No commune or ward matches “{query}”. Try the name with its province, "
                "e.g. “phuc khanh lao cai”."
            ).format(query=echo(query))))
            return
        lines = [[Choice(f"d:c:{m.commune.code}", m.label())] for m in matches]
        lines.append([texts.cancel_choice(_)])
        await self._prompt(who, chat, Say(_("Choose the commune or ward:"), rows(*lines)))

    async def _draft_choice(self, who: Resident, event: ChoicePressed, chat: Chat) -> None:
        pseudonym, intake = who.pseudonym, self._s.intake
        _ = await self._texts(who)
        parts = event.choice_id.split(":")
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
                    await chat.acknowledge()
                    await self._answered(who, chat, event.message, _(
                        "🗑 Delete it and start again") + texts.DONE_MARK)
                    commune = int(code[0]) if code else None
                    await self.begin(who, chat, commune, restart=True,
                                     welcome=commune is not None)
                    return
                case ["d", "lh", lat, lon]:
                    view = await intake.keep_commune_location(
                        pseudonym, _coordinate(lat), _coordinate(lon))
                case ["d", "ln"]:
                    view = await intake.drop_commune_location(pseudonym)
                case ["d", "x"]:
                    await chat.acknowledge()
                    await intake.cancel(pseudonym)
                    self._reviews.pop(pseudonym, None)
                    await self._answered(who, chat, event.message, None)
                    await self._close_live(pseudonym)
                    await chat.send(Say(_("Your draft tip was deleted. Nothing was sent.")))
                    return
                case ["d", "ok"]:
                    await self._submit(who, event.message, chat, _)
                    return
                case _:
                    raise IntakeError("bad_button")
        except IntakeError as error:
            await chat.acknowledge(refusal(error, _))
            return
        await chat.acknowledge()
        await self._answered(who, chat, event.message, texts.answered(
            event.choice_id, view, self._s.categories, _))
        if view.step == Step.REVIEW:
            self._reviews[pseudonym] = texts.review_text(view, self._s.categories, _, sent=True)
            while len(self._reviews) > REVIEWS:
                self._reviews.popitem(last=False)
        await self._prompt(who, chat, self._ask(view, _))

    async def _location(self, who: Resident, event: LocationIn, chat: Chat) -> None:
        """A shared location: picks the commune when boundaries are known; else it is
        attached to the tip as the place of the incident."""
        pseudonym, intake = who.pseudonym, self._s.intake
        view = await intake.current(pseudonym)
        _ = await self._texts(who)
        if view is None:
            await chat.send(Say(_("To send a tip, tap /new first.")))
            return
        lat, lon = event.latitude, event.longitude
        if view.step == Step.COMMUNE:
            code = self._s.locator.locate(lat, lon)
            if code is None:
                await chat.send(Say(_(
                    "I could not tell the commune from this location. "
                    "Please type the name of the commune or ward.")))
                return
            view = await intake.choose_commune(pseudonym, code)
            await self._prompt(who, chat, texts.location_question(view, lat, lon, _))
            return
        try:
            view = await intake.set_location(pseudonym, lat, lon)
        except IntakeError as error:
            await chat.send(Say(refusal(error, _)))
            return
        if view.step == Step.ATTACHMENTS:
            await self._prompt(who, chat, texts.location_added(_))
        else:
            await chat.send(Say(_("📍 Location of the incident added.")))

    # --- submit and receipt ---------------------------------------------------------------

    async def _submit(self, who: Resident, review: MessageRef, chat: Chat, _: Gettext) -> None:
        """Commit first, then tell the resident, then wake the outbox. The choice is
        acknowledged while the tip commits; a failed acknowledgement never stands between a
        commit and its receipt. Once the tip is committed nothing here says "try again": a
        receipt the channel did not take is handed to the outbox, which sends the same
        receipt through the sealed reply address (its row was committed with the tip)."""
        services = self._s
        acknowledged = asyncio.ensure_future(_acknowledge_quietly(chat))
        try:
            result = await services.intake.submit(
                who.pseudonym, who.address, channel=who.channel)
        except IntakeError as error:
            await acknowledged
            await chat.send(Say(refusal(error, _)))
            return
        services.outbox.wake()
        text = receipt_text(_, result.code, duplicate=result.duplicate)
        # the review says it was sent (after a restart it only loses its choices)
        sent_review = self._reviews.pop(who.pseudonym, None)
        self._forget_live(who.pseudonym, review)
        *_done, failure = await asyncio.gather(
            acknowledged,
            _edit_quietly(chat, Edit(review, sent_review, html=True)),
            chat.deliver(Say(text, html=True)),
        )
        await self._settle_receipt(result, failure)

    async def _settle_receipt(self, result: Submitted, failure: object) -> None:
        """Tell the outbox how the receipt went: sent (its safety-net row is done) or not
        (the outbox sends it now). If even this fails, the row comes due by itself a little
        later (a merged duplicate's answer has no such row: its code stays in /mytips)."""
        outbox = self._s.outbox
        try:
            if failure is None:
                if not result.duplicate:  # a merged duplicate has no row of its own
                    await outbox.receipt_sent(result.tip_id)
                return
            retry_after = getattr(failure, "retry_after", None)
            log.warning("receipt not sent, handed to the outbox", extra={
                "tip_id": result.tip_id, "error_type": getattr(failure, "error_type", "?")})
            await outbox.receipt_missed(
                result.tip_id, retry_after=retry_after, duplicate=result.duplicate)
        except Exception:
            log.warning("could not record how the receipt went", exc_info=True,
                        extra={"tip_id": result.tip_id})

    # --- pictures -------------------------------------------------------------------------

    async def _attach_picture(self, who: Resident, event: PictureIn, chat: Chat) -> None:
        pseudonym, intake = who.pseudonym, self._s.intake
        language = await self._language(who)
        _ = self._s.translator.for_language(language)
        caption = (event.caption or "").strip() or None
        view = await intake.current(pseudonym)
        try:
            if view is not None and view.step == Step.DESCRIPTION:
                if caption is not None:  # the caption describes it: description + picture 1
                    view = await intake.add_text(pseudonym, caption)
                    caption = None
                    await self._prompt(who, chat, self._ask(view, _))
                elif event.album is not None:  # the album's captioned picture may be a
                    view = await self._after_description(pseudonym)  # moment ahead
            if view is None or view.step != Step.ATTACHMENTS:
                await chat.send(Say(_(
                    "Pictures can be added after you describe what happened. You can also "
                    "send the description as the picture's caption. To send a tip, tap /new."
                )))
                return
            caption = checked_caption(caption)  # before anything is downloaded
            # counted against the draft's 10 with this resident's pictures still in work,
            # before anything is downloaded
            async with received_picture(
                self._s.pictures, pseudonym, event.fetch, event.size,
                already=view.photo_count, limit=MAX_PHOTOS,
            ) as photo:
                count = await intake.add_photo(
                    pseudonym, photo, order=event.order, caption=caption)
        except PictureRefused as refused:
            await chat.send(Say(photo_refusal(refused.reason, _)))
            return
        except IntakeError as error:
            await chat.send(Say(refusal(error, _)))
            return
        self._schedule_photo_ack(who, chat, language, count, captioned=caption is not None)

    async def _after_description(self, pseudonym: str) -> DraftView | None:
        """The draft once it is past the description step, if that happens within a moment
        (the pictures of one album are handled at once; the captioned one moves it on)."""
        view = None
        for _attempt in range(max(1, int(self._album_wait / 0.2))):
            await asyncio.sleep(0.2)
            view = await self._s.intake.current(pseudonym)
            if view is None or view.step != Step.DESCRIPTION:
                break
        return view

    def _schedule_photo_ack(
        self, who: Resident, chat: Chat, language: str, count: int, *, captioned: bool
    ) -> None:
        """One "pictures received" prompt after an album settles, not one per picture."""
        pending = self._acks.get(who.pseudonym)
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            count = max(count, pending.count)
            captioned = captioned or pending.captioned
        ack = _PendingAck(chat, language, count, captioned)
        self._acks[who.pseudonym] = ack
        loop = asyncio.get_running_loop()
        ack.timer = loop.call_later(self._photo_ack_delay, self._fire_ack, who, ack)

    def _fire_ack(self, who: Resident, ack: _PendingAck) -> None:
        if self._acks.get(who.pseudonym) is ack:
            del self._acks[who.pseudonym]
        task = asyncio.ensure_future(self._send_ack(who, ack))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_ack(self, who: Resident, ack: _PendingAck) -> None:
        _ = self._s.translator.for_language(ack.language)
        try:
            await self._prompt(who, ack.chat, texts.photo_ack(ack.count, ack.captioned, _))
        except Exception:
            log.warning("could not acknowledge pictures", exc_info=True)

    # --- answers to police questions ------------------------------------------------------

    async def _question(self, who: Resident, reply_to: MessageRef | None) -> ReporterAnswer | None:
        """The tip whose police question this message replies to, if any."""
        if reply_to is None or not reply_to.id.isdigit():
            return None
        return await self._s.triage.question_for_reply(who.pseudonym, int(reply_to.id))

    async def _relay_text(
        self, who: Resident, target: ReporterAnswer, text: str, chat: Chat
    ) -> None:
        _ = await self._texts(who)
        if len(text) > MAX_ANSWER:
            await chat.send(Say(_("This is too long ({length} characters; at most {limit}). "
                                  "Please shorten it and send it again. Nothing was added.")
                                .format(length=len(text), limit=MAX_ANSWER)))
            return
        await self._s.triage.reporter_answer(target.tip_id, text, [])
        self._s.outbox.wake()
        await chat.send(Say(_("Your answer was passed to the police. Thank you.")))

    async def _relay_picture(
        self, who: Resident, target: ReporterAnswer, event: PictureIn, chat: Chat
    ) -> None:
        _ = await self._texts(who)
        caption = (event.caption or "").strip()[:MAX_ANSWER] or None
        try:
            async with received_picture(
                self._s.pictures, who.pseudonym, event.fetch, event.size
            ) as photo:
                await self._s.triage.reporter_answer(
                    target.tip_id, caption, [(photo.data, photo.width, photo.height)])
        except PictureRefused as refused:
            await chat.send(Say(photo_refusal(refused.reason, _)))
            return
        self._s.outbox.wake()
        await chat.send(Say(_("Your answer was passed to the police. Thank you.")))

    async def _answer_command(self, who: Resident, args: tuple[str, ...], chat: Chat) -> None:
        """/answer <code> <text>"""
        _ = await self._texts(who)
        if len(args) < 2:
            await chat.send(Say(_("Send /answer followed by the receipt code and your answer, "
                                  "e.g. /answer 7K3Q-9MXD The car was white.")))
            return
        target = await self._s.triage.own_tip(who.pseudonym, args[0])
        if target is None:
            await chat.send(Say(_("No tip has this code. Please check it and try again.")))
            return
        await self._relay_text(who, target, " ".join(args[1:]), chat)

    # --- following a tip, menus, preferences ----------------------------------------------

    async def _lookup(self, who: Resident, typed: str, chat: Chat, _: Gettext) -> None:
        try:
            tip = await self._s.tips.status(typed, asked_by=who.pseudonym)
        except LookupThrottled:
            await chat.send(Say(_("Too many wrong codes. Please try again in an hour.")))
            return
        if tip is None:
            await chat.send(Say(_("No tip has this code. Please check it and try again.")))
            return
        await chat.send(Say(texts.describe_status(tip, _, self._s.settings.zone), html=True))

    async def _my_tips(self, who: Resident, chat: Chat) -> None:
        _ = await self._texts(who)
        tips = await self._s.tips.mine(who.pseudonym)
        if not tips:
            await chat.send(Say(_("You have not sent any tips from this account yet.")))
            return
        zone = self._s.settings.zone
        lines = [_("Your tips:")] + ["• " + texts.describe_status(t, _, zone) for t in tips]
        await chat.send(Say("\n".join(lines), html=True))

    async def _offer_subscription(self, who: Resident, chat: Chat) -> None:
        """Which announcements: the commune used last (the default, first), its province,
        or all of them."""
        _ = await self._texts(who)
        code = await self._s.subscriptions.last_commune(who.pseudonym)
        commune = self._s.directory.commune(code) if code is not None else None
        province = self._s.directory.province(commune.province_code) if commune else None
        # not a prompt of the draft's: a draft in progress keeps its live choices
        await chat.send(texts.subscription_choices(commune, province, _))

    async def _subscription_chosen(
        self, who: Resident, data: str, chat: Chat, pressed: MessageRef
    ) -> None:
        language = await self._language(who)  # announcements come in it
        _ = self._s.translator.for_language(language)
        parts = data.split(":")
        try:
            match parts:
                case ["m", "sub", "all"]:
                    await self._s.subscriptions.subscribe(
                        who.pseudonym, who.address, "all", language=language)
                case ["m", "sub", "c" | "p" as kind, code] if (
                    code.isascii() and code.isdigit() and len(code) <= 9
                ):
                    await self._s.subscriptions.subscribe(
                        who.pseudonym, who.address,
                        "commune" if kind == "c" else "province", int(code), language=language)
                case _:
                    raise SubscriptionError("bad button")
        except SubscriptionError:
            await chat.send(Say(_("This button is no longer valid.")))
            return
        await _edit_quietly(chat, Edit(pressed))  # answered: its choices go
        await chat.send(Say(_(
            "You will receive security announcements from the police (for example on 19/8 "
            "and 26/6). Send /unsubscribe to stop."
        )))

    async def _unsubscribe(self, who: Resident, chat: Chat) -> None:
        _ = await self._texts(who)
        await self._s.subscriptions.unsubscribe(who.pseudonym)
        await chat.send(Say(_("You will no longer receive announcements.")))

    async def _menu(self, who: Resident, data: str, chat: Chat, pressed: MessageRef) -> None:
        await chat.acknowledge()
        if data == texts.MENU_NEW:
            await self.begin(who, chat)
            return
        _ = await self._texts(who)
        if data == texts.MENU_LOOKUP:
            await chat.send(Say(
                _("Type your receipt code (e.g. 7K3Q-9MXD), or /mytips for your tips.")))
        elif data == texts.MENU_SUBSCRIBE:
            await self._offer_subscription(who, chat)
        elif data.startswith(texts.MENU_SUBSCRIBE + ":"):
            await self._subscription_chosen(who, data, chat, pressed)
        elif data == texts.MENU_UNSUBSCRIBE:
            await self._unsubscribe(who, chat)
        elif data == texts.MENU_LANGUAGE:
            await chat.send(Say(_("Choose your language:"), texts.language_choices()))

    async def _language_chosen(self, who: Resident, event: ChoicePressed, chat: Chat) -> None:
        code = event.choice_id.removeprefix(texts.LANGUAGE_PREFIX)
        if code not in SUPPORTED_LANGUAGES:
            _ = await self._texts(who)
            await chat.acknowledge(_("This button is no longer valid."))
            return
        await chat.acknowledge()
        await self._s.residents.set_language(who.pseudonym, code)
        _ = self._s.translator.for_language(code)
        # the picker stays, so the other language is one press away
        await chat.edit(Edit(event.message, _("Language set to English."),
                             texts.language_choices(), html=True))

    # --- prompts ----------------------------------------------------------------------------

    async def _prompt(self, who: Resident, chat: Chat, say: Say) -> None:
        """Send a prompt with choices; the resident's previous prompt loses its choices
        (only the newest one can be answered)."""
        ref = await chat.send(say)
        previous = self._live.pop(who.pseudonym, None)
        if ref is not None and say.choices:
            self._live[who.pseudonym] = (chat, ref)
            while len(self._live) > LIVE_PROMPTS:
                self._live.popitem(last=False)
        if previous is not None and previous[1] != ref:
            await _edit_quietly(previous[0], Edit(previous[1]))

    async def _answered(
        self, who: Resident, chat: Chat, message: MessageRef, text: str | None
    ) -> None:
        """The pressed prompt shows its answer (``text``; None: its text stays) and no
        choices."""
        self._forget_live(who.pseudonym, message)
        await _edit_quietly(chat, Edit(message, text, html=True))

    def _forget_live(self, pseudonym: str, message: MessageRef) -> None:
        live = self._live.get(pseudonym)
        if live is not None and live[1] == message:
            del self._live[pseudonym]

    async def _close_live(self, pseudonym: str) -> None:
        live = self._live.pop(pseudonym, None)
        if live is not None:
            await _edit_quietly(live[0], Edit(live[1]))

    # --- languages ----------------------------------------------------------------------------

    async def _language(self, who: Resident) -> str:
        """The resident's chosen language, else their app's, else Vietnamese."""
        return await self._s.residents.language(who.pseudonym, who.platform_language)

    async def _texts(self, who: Resident) -> Gettext:
        return self._s.translator.for_language(await self._language(who))


def deep_link_commune(args: tuple[str, ...] | list[str]) -> int | None:
    """``/start c2998`` (from a QR poster) -> 2998; anything else -> None."""
    digits = args[0][1:] if args and len(args) == 1 and args[0].startswith("c") else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 9:
        return int(digits)
    return None


def _coordinate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise IntakeError("bad_location") from None


async def _acknowledge_quietly(chat: Chat) -> None:
    try:
        await chat.acknowledge()
    except Exception:  # the spinner times out by itself; the tip matters more
        log.warning("could not answer a confirm button", exc_info=True)


async def _edit_quietly(chat: Chat, edit: Edit) -> None:
    try:
        await chat.edit(edit)
    except Exception:  # an old or already-edited message: nothing to change
        log.debug("could not edit a prompt", exc_info=True)
