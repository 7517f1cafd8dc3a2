"""/stats and /overdue end to end: the real bot against the sandbox, the worked example of
docs/kpi.md in the database, the clock set to its "now" (01/12/2026 09:00 ICT)."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import handlers.kpi
from bot.domain.kpi_chart import render_chart
from bot.sandbox import BotApiSandbox
from tests.conftest import MovableClock, World, running_world
from tests.kpi_example import NOW, build_example


@pytest.fixture
async def kpi_world(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> AsyncIterator[World]:
    async with running_world(sandbox, database_url, tmp_path, clock=MovableClock(NOW)) as world:
        await build_example(world.services.db)
        yield world


def photo_of(world: World, message: dict[str, Any]) -> Image.Image:
    largest = max(message["photo"], key=lambda size: size["width"] * size["height"])
    data = world.sandbox.file_bytes(largest["file_id"])
    assert 5_000 < len(data) < 1_000_000
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_stats_in_the_commune_group(kpi_world: World, monkeypatch: Any) -> None:
    world = kpi_world
    threads: list[bool] = []

    def spy(*args: Any) -> bytes:  # the chart is drawn off the event loop's thread
        threads.append(threading.current_thread() is threading.main_thread())
        return render_chart(*args)

    monkeypatch.setattr(handlers.kpi, "render_chart", spy)
    group = world.demo.commune_group.id
    [reply] = await world.exchange(world.demo.officer, "/stats 2026-11", chat_id=group)
    assert threads == [False]
    assert reply["caption"].splitlines() == [
        "📊 Xã Phúc Khánh – tin báo nhận 01/11–30/11/2026",
        "Tin đã nhận: 8",
        "Đã tiếp nhận: 6 (75%), đúng hạn 4 (50%)",
        "Đã xử lý xong: 4 (50%), đúng hạn 3 (37,5%)",
        "Chưa xử lý xong: 4 · quá hạn: 2",
        "Thời gian tiếp nhận: trung vị 5 giờ, 90% trong vòng 1 ngày 8 giờ",
        "Theo loại: Ma túy 2, Trộm cắp tài sản 2, Gây rối trật tự công cộng 1, "
        "Lừa đảo, lừa đảo qua mạng 1, Cờ bạc 1",
        "❌ Chưa đạt chỉ tiêu: 1 tin chưa tiếp nhận đã quá hạn, 1 tin quá hạn giải quyết.",
        "Hiện tại (mọi kỳ): 5 tin chưa xử lý xong, 3 tin quá hạn (/overdue).",
    ]
    image = photo_of(world, reply)
    assert (image.format, image.size) == ("PNG", (1280, 960))

    # no argument: the last 7 days by the bot's clock (25/11 to 01/12)
    [week] = await world.exchange(world.demo.officer, "/stats", chat_id=group)
    assert week["caption"].startswith("📊 Xã Phúc Khánh – tin báo nhận 25/11–01/12/2026\n"
                                      "Tin đã nhận: 2\n")


async def test_stats_in_the_province_group(kpi_world: World) -> None:
    world = kpi_world
    group = world.demo.province_group.id
    chart, table = await world.exchange(
        world.demo.province_officer, "/stats 2026-11", chat_id=group, replies=2)
    assert chart["caption"].startswith(
        "📊 Tỉnh Lào Cai – tin báo nhận 01/11–30/11/2026\nTin đã nhận: 9\n")
    assert "Thời gian tiếp nhận: trung vị 2 giờ, 90% trong vòng 1 ngày 5 giờ" in chart["caption"]
    assert "Theo loại" not in chart["caption"]
    assert photo_of(world, chart).size == (1280, 960)
    assert table["text"].splitlines() == [
        "Các xã, phường (2), kém nhất trước: nhận · tiếp nhận · xử lý xong · quá hạn · đúng hạn",
        "❌ Xã Phúc Khánh: 8 · 6 · 4 · 2 · 50%",
        "✅ Xã Khao Mang: 1 · 1 · 1 · 0 · 100%",
    ]


async def test_overdue_in_commune_and_province_groups(kpi_world: World) -> None:
    world = kpi_world
    [commune] = await world.exchange(
        world.demo.officer, "/overdue", chat_id=world.demo.commune_group.id)
    assert commune["text"].splitlines() == [
        "⚠️ Tin báo quá hạn (3):",
        "• /tip_KPI0_AAAA · Vi phạm giao thông · Bình Lê Thị · chưa giải quyết xong, "
        "trễ 22 ngày",
        "• /tip_KPI6_AAAA · Cờ bạc · An Nguyễn Văn · chưa giải quyết xong, trễ 2 ngày 17 giờ",
        "• /tip_KPI7_AAAA · Ma túy · chưa có người phụ trách · chưa tiếp nhận, trễ 11 giờ",
    ]
    links = [commune["text"][e["offset"]:e["offset"] + e["length"]]
             for e in commune["entities"] if e["type"] == "bot_command"]
    assert links == ["/tip_KPI0_AAAA", "/tip_KPI6_AAAA", "/tip_KPI7_AAAA"]  # one tap each
    [province] = await world.exchange(
        world.demo.province_officer, "/overdue", chat_id=world.demo.province_group.id)
    assert "• /tip_KPI7_AAAA · Xã Phúc Khánh · Ma túy · " in province["text"]

    # an hour after the tip of 30/11 18:00 missed its 24 hours, it is listed too
    clock = world.runtime.clock
    assert isinstance(clock, MovableClock)
    clock.advance(hours=10)
    [later] = await world.exchange(
        world.demo.officer, "/overdue", chat_id=world.demo.commune_group.id)
    assert later["text"].startswith("⚠️ Tin báo quá hạn (4):")
    assert "• /tip_KPI8_AAAA · Gây rối trật tự công cộng · chưa có người phụ trách · " \
           "chưa tiếp nhận, trễ 1 giờ" in later["text"]


async def test_nothing_overdue_bad_arguments_and_unlinked_groups(kpi_world: World) -> None:
    world = kpi_world
    officer, admin = world.demo.officer, world.demo.admin
    group = world.demo.commune_group.id
    for bad in ("/stats 2026-13", "/stats yesterday", "/stats 2027-01", "/stats week month"):
        [usage] = await world.exchange(officer, bad, chat_id=group)
        assert usage["text"] == ("Cách dùng: /stats (7 ngày qua), /stats tháng (tháng này) "
                                 "hoặc /stats 2026-11 (cả một tháng).")
    [month] = await world.exchange(officer, "/stats tháng", chat_id=group)
    assert month["caption"].startswith("📊 Xã Phúc Khánh – tin báo nhận 01/12/2026\n")

    other = world.sandbox.create_group("Nhóm chưa liên kết", members=[admin.id, officer.id],
                                       chat_id=-5000009999)
    for command in ("/stats", "/overdue"):
        [reply] = await world.exchange(officer, command, chat_id=other.id)
        assert reply["text"].startswith("Nhóm này chưa được gắn.")

    quiet = world.sandbox.create_group("Công an xã Khao Mang", members=[admin.id],
                                       chat_id=-5000004465)
    await world.services.linking.link(chat_id=quiet.id, scope="commune", code=4465,
                                      linked_by=admin.id)
    [none] = await world.exchange(admin, "/overdue", chat_id=quiet.id)
    assert none["text"] == "Không có tin báo quá hạn."
    [stats] = await world.exchange(admin, "/stats 2026-10", chat_id=quiet.id)
    assert "✅ Đạt chỉ tiêu: tiếp nhận 100%, không có tin quá hạn." in stats["caption"]
    assert "Tin đã nhận: 0" in stats["caption"]
