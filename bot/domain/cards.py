"""The tip card police see in their group: escaped HTML, split so nothing is cut off.

Police work in Vietnamese, so the card is Vietnamese. It shows the per-tip alias
("Người báo tin #12"), never anything about who the reporter is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from storage.models import Tip

TEXT_LIMIT = 4096  # Telegram sendMessage limit (characters after entity parsing)
CAPTION_LIMIT = 1024
STATUS_LABELS = {
    "new": "Mới – chờ tiếp nhận",
    "acknowledged": "Đã tiếp nhận",
    "verifying": "Đang xác minh",
    "processed": "Đã xử lý xong",
    "invalid": "Không hợp lệ",
    "transferred": "Đã chuyển",
}
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

    def render(self, tip: Tip, *, queue_scope: str | None = None) -> list[str]:
        """The card as one or more HTML messages, each within Telegram's limit."""
        assert tip.id is not None
        commune = self.directory.commune(tip.commune_code)
        province = self.directory.province(tip.province_code)
        category = self.categories.get(tip.category)
        place = ", ".join(x.name for x in (commune, province) if x is not None)
        lines = []
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
            f"⏳ Hạn tiếp nhận: {format_time(tip.ack_due_at, self.zone)}",
            f"📌 Trạng thái: {STATUS_LABELS.get(tip.status, tip.status)}",
        ]
        extras = []
        if tip.photo_count:
            extras.append(f"{tip.photo_count} ảnh (gửi kèm bên dưới)")
        if tip.latitude is not None:
            extras.append("vị trí sự việc (ghim bên dưới)")
        if extras:
            lines.append("📎 " + ", ".join(extras))
        header = "\n".join(lines) + "\n\n<b>Nội dung:</b>\n"
        return split_html_body(header, html.escape(tip.description), f"(tiếp – {tip.code})\n")


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


def photo_caption(tip_code: str, index: int, total: int) -> str:
    return f"Ảnh {index}/{total} – tin báo {tip_code}"
