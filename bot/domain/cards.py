"""The tip card police see in their group: escaped HTML, split so nothing is cut off.

Police work in Vietnamese, so the card is Vietnamese. It shows the per-tip alias
("Người báo tin #12"), never anything about who the reporter is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.status import TipStatus, allowed_actions, police_label


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


TEXT_LIMIT = 4096  # Telegram sendMessage limit (characters after entity parsing)
CAPTION_LIMIT = 1024
OUTCOME_LABELS = {
    "agency": "Chuyển cơ quan điều tra",
    "admin": "Xử lý hành chính",
    "unfounded": "Không có căn cứ",
    "duplicate": "Trùng tin báo khác",
}
INVALID_LABELS = {
    "spam": "Tin rác, quấy rối",
    "no_facts": "Không có sự việc cụ thể",
    "not_ours": "Không thuộc thẩm quyền",
    "other": "Lý do khác",
}
TRANSFER_LABELS = {
    "province": "⬆️ Lên công an tỉnh",
    "pick": "🏘 Chuyển xã/phường khác",
}
BUTTON_ROWS = (
    (("ack", "✅ Tiếp nhận"),),
    (("verify", "🔍 Đang xác minh"), ("done", "☑️ Xử lý xong")),
    (("ask", "❓ Hỏi thêm"),),
    (("transfer", "↪️ Chuyển"), ("invalid", "🚫 Không hợp lệ")),
)
# the outbox may post a card twice around a crash (sent, then the process died before it
# recorded that): a card sent again after such a break says so
RESENT_NOTE = ("🔁 <b>Gửi lại</b>: thẻ này có thể trùng với một thẻ đã gửi trước đó (máy chủ "
               "bị gián đoạn khi đang gửi). Hãy xử lý trên thẻ này.")
QUEUE_NOTES = {
    "province": "⚠️ Xã chưa có nhóm tiếp nhận: tin được chuyển lên nhóm cấp tỉnh.",
    "ops": "⚠️ CHƯA ĐỊNH TUYẾN: xã và tỉnh chưa có nhóm tiếp nhận.",
}


def reporter_alias(tip_id: int) -> str:
    return f"Người báo tin #{tip_id}"


def format_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M %d/%m/%Y")


@dataclass(frozen=True)
class CardRenderer:
    directory: CommuneDirectory
    categories: Categories
    zone: ZoneInfo

    def render(
        self, tip: TipView, *, queue_scope: str | None = None, resent: bool = False
    ) -> list[str]:
        """The card as one or more HTML messages, each within Telegram's limit; ``resent``:
        an earlier attempt may have posted it already (marked, so police see the pair)."""
        assert tip.id is not None
        commune = self.directory.commune(tip.commune_code)
        province = self.directory.province(tip.province_code)
        category = self.categories.get(tip.category)
        place = ", ".join(x.name for x in (commune, province) if x is not None)
        lines = [RESENT_NOTE] if resent else []
        if tip.urgent:
            lines.append("🔴 <b>KHẨN CẤP</b>")
        note = QUEUE_NOTES.get(queue_scope or tip.queue_scope)
        if note:
            lines.append(note)
        lines += [
            f"📥 <b>Tin báo</b> <code>{tip.code}</code>",
            f"📍 {html.escape(place)}",
            f"🏷 Loại: {html.escape(category.label('vi') if category else tip.category)}",
            f"👤 {reporter_alias(tip.id)}",
            f"🕒 Nhận lúc: {format_time(tip.created_at, self.zone)} (giờ Việt Nam)",
            f"📌 Trạng thái: {self._status_line(tip)}",
        ]
        if tip.owner_name and tip.acknowledged_at:
            lines.append(f"👮 Phụ trách: {html.escape(tip.owner_name)} (tiếp nhận "
                         f"{format_time(tip.acknowledged_at, self.zone)})")
        if tip.closed_at is not None:
            lines.append(f"🏁 Đóng lúc: {format_time(tip.closed_at, self.zone)}")
        elif tip.status == TipStatus.NEW:
            lines.append(f"⏳ Hạn tiếp nhận: {format_time(tip.ack_due_at, self.zone)}")
        else:
            lines.append(f"⏳ Hạn giải quyết: {format_time(tip.settle_due_at, self.zone)}")
        extras = []
        if tip.photo_count:
            extras.append(f"{tip.photo_count} ảnh (gửi kèm bên dưới)")
        if tip.latitude is not None:
            extras.append("vị trí sự việc (ghim bên dưới)")
        if extras:
            lines.append("📎 " + ", ".join(extras))
        header = "\n".join(lines) + "\n\n<b>Nội dung:</b>\n"
        return split_html_body(header, html.escape(tip.description), f"(tiếp – {tip.code})\n")


    def _status_line(self, tip: TipView) -> str:
        label = police_label(tip.status)
        if tip.status == TipStatus.PROCESSED and tip.outcome:
            return f"{label} – {OUTCOME_LABELS.get(tip.outcome, tip.outcome)}"
        if tip.status == TipStatus.INVALID and tip.outcome:
            return f"{label} – {INVALID_LABELS.get(tip.outcome, tip.outcome)}"
        return label

    def buttons(self, tip: TipView) -> list[list[tuple[str, str]]]:
        """The actions allowed in the tip's current status (none once closed)."""
        allowed = {str(a) for a in allowed_actions(tip.status)}
        rows = [[(label, f"t:{tip.id}:{action}") for action, label in row if action in allowed]
                for row in BUTTON_ROWS]
        return [row for row in rows if row]

    def choice_buttons(self, tip: TipView, action: str) -> list[list[tuple[str, str]]]:
        """Second step of "Xử lý xong", "Không hợp lệ" and "Chuyển"."""
        options = {"done": OUTCOME_LABELS, "invalid": INVALID_LABELS,
                   "transfer": TRANSFER_LABELS}[action]
        rows = [[(label, f"t:{tip.id}:{action}:{key}")] for key, label in options.items()]
        rows.append([("« Quay lại", f"t:{tip.id}:back")])
        return rows

    def retired(self, tip: TipView, to_commune: int | None) -> str:
        """What an old card says after the tip moved to another commune (or the province)."""
        commune = self.directory.commune(to_commune) if to_commune is not None else None
        where = commune.name if commune else "nhóm cấp tỉnh"
        return (f"↪️ <b>Tin báo</b> <code>{tip.code}</code> đã được chuyển đến "
                f"{html.escape(where)}. Thẻ này không còn dùng để xử lý.")


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


def photo_caption(
    tip_code: str, index: int, total: int, resident_caption: str | None = None
) -> str:
    """Under each picture in the group: which tip, and what the resident wrote under it
    (plain text; at most 900 characters, so the whole stays within Telegram's 1,024)."""
    label = f"Ảnh {index}/{total} – tin báo {tip_code}"
    return f"{label}\n“{resident_caption}”" if resident_caption else label
