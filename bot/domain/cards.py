"""The tip card police see in their group: escaped HTML, split so nothing is cut off.

Police work in Vietnamese, so the card is rendered through the Vietnamese catalogue (the
renderer is given a ``_`` bound to it; the English ids below are the msgids). It shows the
per-tip alias ("Người báo tin #12"), never anything about who the reporter is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.status import (
    OPEN_STATUSES,
    Action,
    TipStatus,
    allowed_actions,
    police_label,
)
from bot.i18n import N_, Gettext


class TipView(Protocol):
    """What the card (and the outbox) read of a tip; a stored tip is one."""

    @property
    def id(self) -> int | None: ...
    @property
    def code(self) -> str: ...
    @property
    def commune_code(self) -> int: ...
    @property
    def province_code(self) -> int: ...
    @property
    def category(self) -> str: ...
    @property
    def urgent(self) -> bool: ...
    @property
    def description(self) -> str: ...
    @property
    def latitude(self) -> float | None: ...
    @property
    def longitude(self) -> float | None: ...
    @property
    def photo_count(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def queue_scope(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def ack_due_at(self) -> datetime: ...
    @property
    def settle_due_at(self) -> datetime: ...
    @property
    def owner_name(self) -> str | None: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def overdue_marked_at(self) -> datetime | None: ...
    @property
    def complex_at(self) -> datetime | None: ...
    @property
    def extension_days(self) -> int | None: ...
    @property
    def transfers(self) -> int: ...


TEXT_LIMIT = 4096  # Telegram sendMessage limit (characters after entity parsing)
CAPTION_LIMIT = 1024
# key (stored in the database and in callback data) -> msgid, translated when shown
OUTCOME_LABELS = {
    "agency": N_("Passed to the investigating agency"),
    "admin": N_("Administrative handling"),
    "unfounded": N_("No grounds"),
    "duplicate": N_("Duplicate of another tip"),
}
INVALID_LABELS = {
    "spam": N_("Spam, harassment"),
    "no_facts": N_("No concrete incident"),
    "not_ours": N_("Outside our jurisdiction"),
    "other": N_("Other reason"),
}
TRANSFER_LABELS = {
    "province": N_("⬆️ Up to the provincial police"),
    "pick": N_("🏘 To another commune/ward"),
}
BUTTON_ROWS = (
    (("ack", N_("✅ Take up")),),
    (("verify", N_("🔍 Verifying")), ("done", N_("☑️ Done handling"))),
    (("ask", N_("❓ Ask for more")), ("complex", N_("⚖️ Complex case"))),
    (("transfer", N_("↪️ Transfer")), ("invalid", N_("🚫 Not valid"))),
)
# the outbox may post a card twice around a crash (sent, then the process died before it
# recorded that): a card sent again after such a break says so
RESENT_NOTE = N_("🔁 <b>Sent again</b>: this card may duplicate one sent earlier (the server "
                 "was interrupted while sending). Handle the tip on this card.")
QUEUE_NOTES = {
    "province": N_("⚠️ The commune has no intake group: the tip went up to the province "
                   "group."),
    "ops": N_("⚠️ NOT ROUTED: neither the commune nor the province has an intake group."),
}


def reporter_alias(tip_id: int, _: Gettext) -> str:
    return _("Reporter #{number}").format(number=tip_id)


def format_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M %d/%m/%Y")


@dataclass(frozen=True)
class CardRenderer:
    directory: CommuneDirectory
    categories: Categories
    zone: ZoneInfo
    texts: Gettext  # police groups work in Vietnamese: bound to the Vietnamese catalogue

    def render(
        self, tip: TipView, *, queue_scope: str | None = None, resent: bool = False,
        transferred_from: int | None = None,
    ) -> list[str]:
        """The card as one or more HTML messages, each within Telegram's limit; ``resent``:
        an earlier attempt may have posted it already (marked, so police see the pair);
        ``transferred_from``: the commune the tip was transferred from (its deadlines still
        count from the original receipt, and the card says so)."""
        assert tip.id is not None
        _ = self.texts
        commune = self.directory.commune(tip.commune_code)
        province = self.directory.province(tip.province_code)
        category = self.categories.get(tip.category)
        place = ", ".join(x.name for x in (commune, province) if x is not None)
        lines = [_(RESENT_NOTE)] if resent else []
        if tip.urgent:
            lines.append(_("🔴 <b>URGENT</b>"))
        overdue = self._overdue_line(tip)
        if overdue:
            lines.append(overdue)
        note = QUEUE_NOTES.get(queue_scope or tip.queue_scope)
        if note:
            lines.append(_(note))
        lines += [
            _("📥 <b>Tip</b> {code}").format(code=f"<code>{tip.code}</code>"),
            f"📍 {html.escape(place)}",
            _("🏷 Category: {category}").format(
                category=html.escape(category.label("vi") if category else tip.category)),
            f"👤 {reporter_alias(tip.id, _)}",
            _("🕒 Received at: {time} (Vietnam time)").format(
                time=format_time(tip.created_at, self.zone)),
            _("📌 Status: {status}").format(status=self._status_line(tip)),
        ]
        if transferred_from is not None:
            origin = self.directory.commune(transferred_from)
            lines.append(_("↪️ Transferred from {place} – deadlines count from the original "
                           "receipt at {time}").format(
                place=html.escape(origin.name if origin else str(transferred_from)),
                time=format_time(tip.created_at, self.zone)))
        if tip.owner_name and tip.acknowledged_at:
            lines.append(_("👮 In charge: {officer} (took it up {time})").format(
                officer=html.escape(tip.owner_name),
                time=format_time(tip.acknowledged_at, self.zone)))
        if tip.closed_at is not None:
            lines.append(_("🏁 Closed at: {time}").format(
                time=format_time(tip.closed_at, self.zone)))
        else:
            if tip.status == TipStatus.NEW:
                lines.append(_("⏳ To be taken up by: {time}").format(
                    time=format_time(tip.ack_due_at, self.zone)))
            lines.append(self._settlement_line(tip))
        extras = []
        if tip.photo_count:
            extras.append(_("{count} photos (sent below)").format(count=tip.photo_count))
        if tip.latitude is not None:
            extras.append(_("location of the incident (pinned below)"))
        if extras:
            lines.append("📎 " + ", ".join(extras))
        header = "\n".join(lines) + "\n\n" + _("<b>Description:</b>") + "\n"
        continuation = _("(continued – {code})").format(code=tip.code) + "\n"
        return split_html_body(header, html.escape(tip.description), continuation)

    def _overdue_line(self, tip: TipView) -> str | None:
        """The "⚠️ Quá hạn" line, once the rounds found the tip past a deadline
        (``overdue_marked_at``, bot/domain/reminders.py) and while that is still so: the
        settlement's deadline while the tip is open (an extension past the mark lifts it),
        the acknowledgement's while it is still waiting to be taken up (a late take-up
        lifts it: the tip is no longer overdue, as ``deadlines.overdue`` says)."""
        marked = tip.overdue_marked_at
        if marked is None or tip.closed_at is not None or tip.status not in OPEN_STATUSES:
            return None
        if marked >= tip.settle_due_at:
            return self.texts("⚠️ <b>Overdue</b>: the deadline to settle it was {time}").format(
                time=format_time(tip.settle_due_at, self.zone))
        if tip.status != TipStatus.NEW:
            return None
        return self.texts("⚠️ <b>Overdue</b>: the deadline to take it up was {time}").format(
            time=format_time(tip.ack_due_at, self.zone))

    def _settlement_line(self, tip: TipView) -> str:
        """The settlement deadline in force, and why it is longer than 20 days."""
        _ = self.texts
        line = _("⏳ To be settled by: {time}").format(
            time=format_time(tip.settle_due_at, self.zone))
        state = []
        if tip.complex_at is not None:
            state.append(_("complex case: 2 months"))
        if tip.extension_days:
            state.append(_("extended by {days} days").format(days=tip.extension_days))
        return f"{line} ({'; '.join(state)})" if state else line

    def _status_line(self, tip: TipView) -> str:
        label = police_label(tip.status, self.texts)
        if tip.status == TipStatus.PROCESSED and tip.outcome:
            return f"{label} – {self._label(OUTCOME_LABELS, tip.outcome)}"
        if tip.status == TipStatus.INVALID and tip.outcome:
            return f"{label} – {self._label(INVALID_LABELS, tip.outcome)}"
        return label

    def _label(self, table: dict[str, str], key: str) -> str:
        return self.texts(table[key]) if key in table else key

    def choice_label(self, key: str) -> str:
        """An outcome or invalid-reason key as police read it; an unknown key as stored."""
        return self._label(OUTCOME_LABELS | INVALID_LABELS, key)

    def buttons(self, tip: TipView) -> list[list[tuple[str, str]]]:
        """The actions allowed in the tip's current status (none once closed). "Complex
        case" once the tip is taken up (beside the settlement deadline), until recorded."""
        allowed = {str(a) for a in allowed_actions(tip.status)}
        if tip.complex_at is not None or tip.status == TipStatus.NEW:
            allowed.discard(str(Action.COMPLEX))
        rows = [[(self.texts(label), f"t:{tip.id}:{action}") for action, label in row
                 if action in allowed]
                for row in BUTTON_ROWS]
        return [row for row in rows if row]

    def choice_buttons(self, tip: TipView, action: str) -> list[list[tuple[str, str]]]:
        """Second step of "Xử lý xong", "Không hợp lệ" and "Chuyển"."""
        _ = self.texts
        options = {"done": OUTCOME_LABELS, "invalid": INVALID_LABELS,
                   "transfer": TRANSFER_LABELS}[action]
        rows = [[(_(label), f"t:{tip.id}:{action}:{key}")] for key, label in options.items()]
        rows.append([(_("« Back"), f"t:{tip.id}:back")])
        return rows

    def retired(self, tip: TipView, to_commune: int | None) -> str:
        """What an old card says after the tip moved to another commune (or the province)."""
        commune = self.directory.commune(to_commune) if to_commune is not None else None
        _ = self.texts
        where = commune.name if commune else _("the province group")
        return _("↪️ <b>Tip</b> {code} has been transferred to {place}. This card is no longer "
                 "used for handling it.").format(
            code=f"<code>{tip.code}</code>", place=html.escape(where))

    def photo_caption(
        self, tip_code: str, index: int, total: int, resident_caption: str | None = None
    ) -> str:
        """Under each picture in the group: which tip, and what the resident wrote under it
        (plain text; at most 900 characters, so the whole stays within Telegram's 1,024)."""
        _ = self.texts
        label = _("Photo {index}/{total} – tip {code}").format(
            index=index, total=total, code=tip_code)
        return f"{label}\n“{resident_caption}”" if resident_caption else label


def split_html_body(header: str, body: str, continuation: str) -> list[str]:
    """Header + escaped body in as many messages as needed; never splits an entity."""
    parts: list[str] = []
    room = TEXT_LIMIT - len(header)
    chunk, rest = _cut(body, room)
    parts.append(header + chunk)
    while rest:
        chunk, rest = _cut(rest, TEXT_LIMIT - len(continuation))
        parts.append(continuation + chunk)
    return parts


def _cut(text: str, room: int) -> tuple[str, str]:
    """Cut escaped text at a line or word break, never inside an &entity;."""
    if len(text) <= room:
        return text, ""
    cut = max(text.rfind("\n", 0, room), text.rfind(" ", 0, room))
    if cut < room // 2:
        cut = room
    amp = text.rfind("&", 0, cut)
    if amp != -1 and text.find(";", amp) >= cut:
        cut = amp
    return text[:cut], text[cut:].lstrip()
