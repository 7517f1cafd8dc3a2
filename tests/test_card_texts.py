"""The police card's words come from the Vietnamese catalogue: the card police read is the
same text as before, and changing a translation in the catalogue changes the card."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.i18n import LOCALES_DIR, Translator

PHUC_KHANH = 2998


@dataclass(frozen=True)
class Tip:
    id: int = 12
    code: str = "AB12CD"
    commune_code: int = PHUC_KHANH
    province_code: int = 15  # Tỉnh Lào Cai
    category: str = "traffic"
    urgent: bool = True
    description: str = "Xe tải chở quá tải & chạy quá tốc độ"
    latitude: float | None = 22.1
    longitude: float | None = 104.0
    photo_count: int = 2
    status: str = "acknowledged"
    outcome: str | None = None
    queue_scope: str = "commune"
    created_at: datetime = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    ack_due_at: datetime = datetime(2026, 1, 2, 5, 4, tzinfo=UTC)
    settle_due_at: datetime = datetime(2026, 1, 9, 5, 4, tzinfo=UTC)
    owner_name: str | None = "Trần <Văn> Ba"
    acknowledged_at: datetime | None = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
    closed_at: datetime | None = None
    overdue_marked_at: datetime | None = None
    complex_at: datetime | None = None
    extension_days: int | None = None
    transfers: int = 0


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


def renderer(directory: CommuneDirectory, translator: Translator) -> CardRenderer:
    return CardRenderer(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"),
                        translator.for_language("vi"))


def test_the_card_police_read_is_vietnamese_word_for_word(directory: CommuneDirectory) -> None:
    cards = renderer(directory, Translator.load())
    tip = Tip()
    [text] = cards.render(tip, resent=True)
    assert text == (
        "🔁 <b>Gửi lại</b>: thẻ này có thể trùng với một thẻ đã gửi trước đó (máy chủ bị gián "
        "đoạn khi đang gửi). Hãy xử lý trên thẻ này.\n"
        "🔴 <b>KHẨN CẤP</b>\n"
        "📥 <b>Tin báo</b> <code>AB12CD</code>\n"
        "📍 Xã Phúc Khánh, Tỉnh Lào Cai\n"
        "🏷 Loại: Vi phạm giao thông\n"
        "👤 Người báo tin #12\n"
        "🕒 Nhận lúc: 10:04 02/01/2026 (giờ Việt Nam)\n"
        "📌 Trạng thái: Đã tiếp nhận\n"
        "👮 Phụ trách: Trần &lt;Văn&gt; Ba (tiếp nhận 11:00 02/01/2026)\n"
        "⏳ Hạn giải quyết: 12:04 09/01/2026\n"
        "📎 2 ảnh (gửi kèm bên dưới), vị trí sự việc (ghim bên dưới)\n\n"
        "<b>Nội dung:</b>\n"
        "Xe tải chở quá tải &amp; chạy quá tốc độ"
    )
    assert cards.buttons(tip) == [
        [("🔍 Đang xác minh", "t:12:verify"), ("☑️ Xử lý xong", "t:12:done")],
        [("❓ Hỏi thêm", "t:12:ask"), ("⚖️ Vụ việc phức tạp", "t:12:complex")],
        [("↪️ Chuyển", "t:12:transfer"), ("🚫 Không hợp lệ", "t:12:invalid")],
    ]
    assert cards.choice_buttons(tip, "done")[0] == [("Chuyển cơ quan điều tra",
                                                     "t:12:done:agency")]
    assert cards.choice_buttons(tip, "done")[-1] == [("« Quay lại", "t:12:back")]
    closed = Tip(status="invalid", outcome="no_facts", closed_at=datetime(2026, 1, 3, tzinfo=UTC))
    assert "📌 Trạng thái: Không hợp lệ – Không có sự việc cụ thể\n" in cards.render(closed)[0]
    assert "🏁 Đóng lúc: 07:00 03/01/2026" in cards.render(closed)[0]
    assert cards.retired(tip, None) == ("↪️ <b>Tin báo</b> <code>AB12CD</code> đã được chuyển "
                                        "đến nhóm cấp tỉnh. Thẻ này không còn dùng để xử lý.")
    assert cards.photo_caption("AB12CD", 1, 2, "biển số") == "Ảnh 1/2 – tin báo AB12CD\n“biển số”"


def test_the_card_text_comes_from_the_catalogue(
    directory: CommuneDirectory, tmp_path: Path
) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, locales)
    po = locales / "vi" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    for before, after in [('msgstr "🏷 Loại: {category}"', 'msgstr "🏷 Phân loại: {category}"'),
                          ('msgstr "Đã tiếp nhận"', 'msgstr "Đã nhận"'),
                          ('msgstr "❓ Hỏi thêm"', 'msgstr "❓ Hỏi người báo tin"')]:
        assert text.count(before) == 1, before
        text = text.replace(before, after)
    po.write_text(text, encoding="utf-8")
    tip = Tip()
    shipped = renderer(directory, Translator.load()).render(tip)[0]
    edited_cards = renderer(directory, Translator.load(locales))
    edited = edited_cards.render(tip)[0]
    assert "🏷 Loại: Vi phạm giao thông" in shipped and "📌 Trạng thái: Đã tiếp nhận\n" in shipped
    assert "🏷 Phân loại: Vi phạm giao thông" in edited and "🏷 Loại:" not in edited
    assert "📌 Trạng thái: Đã nhận\n" in edited
    assert ("❓ Hỏi người báo tin", "t:12:ask") in edited_cards.buttons(tip)[1]


def test_the_card_shows_the_settlement_deadline_in_force(directory: CommuneDirectory) -> None:
    cards = renderer(directory, Translator.load())
    new = Tip(status="new", urgent=False, owner_name=None, acknowledged_at=None)
    lines = cards.render(new)[0].splitlines()
    # a new tip: both deadlines; "complex case" is offered once it is taken up
    assert "⏳ Hạn tiếp nhận: 12:04 02/01/2026" in lines
    assert "⏳ Hạn giải quyết: 12:04 09/01/2026" in lines
    assert "t:12:complex" not in [data for row in cards.buttons(new) for _l, data in row]
    both = Tip(complex_at=datetime(2026, 1, 3, tzinfo=UTC), extension_days=30)
    assert "⏳ Hạn giải quyết: 12:04 09/01/2026 (vụ việc phức tạp: 2 tháng; đã gia hạn 30 ngày)" \
        in cards.render(both)[0].splitlines()
    assert "t:12:complex" not in [data for row in cards.buttons(both) for _l, data in row]
    moved = Tip(status="new", transfers=1)
    assert ("↪️ Chuyển từ Xã Phúc Khánh – thời hạn tính từ lúc nhận tin báo ban đầu 10:04 "
            "02/01/2026") in cards.render(moved, transferred_from=PHUC_KHANH)[0].splitlines()
