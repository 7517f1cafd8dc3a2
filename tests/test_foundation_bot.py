"""End to end through the sandbox: /start, /help, /language, group onboarding, migration,
command menus and the error path, as residents, officers and admins see them."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import select

from storage.models import GroupLink
from tests.conftest import World


async def test_start_greets_in_vietnamese_by_default(world: World) -> None:
    resident = world.demo.residents[0]
    [reply] = await world.exchange(resident, "/start")
    assert reply["text"].startswith("Xin chào! Đây là Hòm thư an ninh của Công an xã, phường")
    assert "gọi ngay 113" in reply["text"]
    assert "không thấy tên, tài khoản hay số điện thoại" in reply["text"]


async def test_start_greets_in_english_for_english_telegram(world: World) -> None:
    resident = world.demo.residents[1]
    [reply] = await world.exchange(resident, "/start")
    assert reply["text"].startswith("Hello! This is the security mailbox of the commune police")
    assert "call 113 right now" in reply["text"]


@pytest.mark.parametrize(("index", "expected"), [(0, "Bạn có thể:"), (1, "What you can do here:")])
async def test_help_in_both_languages(world: World, index: int, expected: str) -> None:
    [reply] = await world.exchange(world.demo.residents[index], "/help")
    assert reply["text"].startswith(expected)
    assert "/language" in reply["text"]


async def test_language_switch_is_remembered(world: World) -> None:
    resident = world.demo.residents[0]
    [menu] = await world.exchange(resident, "/language")
    assert menu["text"] == "Chọn ngôn ngữ của bạn:"
    buttons = [b["callback_data"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["lang:vi", "lang:en"]
    await world.press(resident, menu, "lang:en")
    await _until(lambda: _text(world, menu) == "Language set to English.")
    [reply] = await world.exchange(resident, "/help")
    assert reply["text"].startswith("What you can do here:")
    await world.press(resident, menu, "lang:vi")  # the picker stays under the confirmation
    await _until(lambda: _text(world, menu) == "Đã chuyển sang tiếng Việt.")
    [reply] = await world.exchange(resident, "/help")
    assert reply["text"].startswith("Bạn có thể:")


async def test_forged_language_button_is_refused_politely(world: World) -> None:
    resident = world.demo.residents[1]
    [menu] = await world.exchange(resident, "/language")
    answer = await world.press(resident, menu, "lang:fr", check=False)
    assert answer["text"] == "This button is no longer valid."
    assert answer["show_alert"] is True
    [reply] = await world.exchange(resident, "/help")
    assert reply["text"].startswith("What you can do here:")


async def test_admin_links_a_group_and_anyone_there_can_ask_where(world: World) -> None:
    sandbox, admin, officer = world.sandbox, world.demo.admin, world.demo.officer
    group = sandbox.create_group("Công an phường mới", members=[admin.id, officer.id])
    [reply] = await world.exchange(admin, "/link 2998", chat_id=group.id)
    assert reply["text"] == (
        "Nhóm này từ nay là nhóm tiếp nhận tin báo của Xã Phúc Khánh, Tỉnh Lào Cai (mã 2998)."
        "\nNhóm này thay thế nhóm đã đảm nhận vai trò đó trước đây."
    )
    links = await _links(world)
    assert links[group.id] == ("commune", 2998, 15)
    assert world.demo.commune_group.id not in links  # the commune has one queue
    [reply] = await world.exchange(officer, "/where", chat_id=group.id)
    assert reply["text"] == (
        "Nhóm này là nhóm tiếp nhận tin báo của Xã Phúc Khánh, Tỉnh Lào Cai (mã 2998)."
    )
    [reply] = await world.exchange(admin, "/unlink", chat_id=group.id)
    assert reply["text"].startswith("Nhóm này không còn là nhóm tiếp nhận tin báo")
    assert group.id not in await _links(world)
    [reply] = await world.exchange(officer, "/where", chat_id=group.id)
    assert reply["text"].startswith("Nhóm này chưa được gắn.")


async def test_admin_links_a_province_group(world: World) -> None:
    admin = world.demo.admin
    group = world.sandbox.create_group("Công an tỉnh", members=[admin.id])
    [reply] = await world.exchange(admin, "/link province 15", chat_id=group.id)
    assert reply["text"].startswith("Nhóm này từ nay là nhóm xử lý cấp tỉnh của Tỉnh Lào Cai")
    assert (await _links(world))[group.id] == ("province", 15, 15)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/link", "Cách dùng: /link <mã xã>"),
        ("/link abc", "Cách dùng: /link <mã xã>"),
        ("/link 99999999", "Không có xã/phường nào mang mã 99999999."),
        ("/link province 99", "Không có tỉnh/thành phố nào mang mã 99."),
    ],
)
async def test_bad_link_requests_change_nothing(world: World, command: str, expected: str) -> None:
    admin = world.demo.admin
    group = world.sandbox.create_group("Nhóm thử", members=[admin.id])
    before = await _links(world)
    [reply] = await world.exchange(admin, command, chat_id=group.id)
    assert reply["text"].startswith(expected)
    assert await _links(world) == before


async def test_non_admins_are_refused_and_nothing_changes(world: World) -> None:
    officer, resident = world.demo.officer, world.demo.residents[0]
    group = world.demo.commune_group
    before = await _links(world)
    for command in ("/link 3000", "/unlink", "/link province 15"):
        [reply] = await world.exchange(officer, command, chat_id=group.id)
        assert reply["text"] == "Xin lỗi, chỉ quản trị viên hòm thư mới được gắn hoặc gỡ gắn nhóm."
    [reply] = await world.exchange(resident, "/link 2998")
    assert reply["text"] == "Vui lòng dùng lệnh này trong nhóm chat của công an."
    assert await _links(world) == before


async def test_find_lists_commune_codes(world: World) -> None:
    [reply] = await world.exchange(world.demo.admin, "/find phuc khanh lao cai",
                                   chat_id=world.demo.commune_group.id)
    assert reply["text"].splitlines()[0] == "2998 Xã Phúc Khánh, Lào Cai"


async def test_group_migrated_to_supergroup_keeps_its_link(world: World) -> None:
    old_id = world.demo.commune_group.id
    await world.services.linking.link(
        chat_id=old_id, scope="commune", code=2998, linked_by=world.demo.admin.id
    )
    new_id = await world.sandbox.migrate_to_supergroup(old_id)
    await _until_async(lambda: _has_link(world, new_id))
    links = await _links(world)
    assert old_id not in links and links[new_id] == ("commune", 2998, 15)
    [reply] = await world.exchange(world.demo.officer, "/where", chat_id=new_id)
    assert "Xã Phúc Khánh" in reply["text"]


async def test_command_menus_are_set_per_language_and_audience(world: World) -> None:
    vi = world.sandbox.commands(scope_type="all_private_chats")
    en = world.sandbox.commands(scope_type="all_private_chats", language_code="en")
    groups = world.sandbox.commands(scope_type="all_group_chats")
    assert [c["command"] for c in vi] == [
        "new", "status", "mytips", "cancel", "start", "help", "language", "subscribe", "answer"
    ]
    assert [c["command"] for c in en] == [c["command"] for c in vi]
    assert vi[5]["description"] == "Những việc bạn có thể làm"
    assert en[5]["description"] == "What you can do here"
    assert [c["command"] for c in groups] == [
        "queue", "tip", "complex", "extend", "stats", "overdue", "help", "where", "find",
        "link", "unlink", "ban", "campaign"
    ]


async def test_a_failing_handler_gets_a_polite_sentence_and_a_log(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.services.directory, "search", broken)
    resident = world.demo.residents[0]
    with caplog.at_level(logging.ERROR):
        [reply] = await world.exchange(resident, "/find abc")
    assert reply["text"] == (
        "Xin lỗi, hệ thống đang gặp sự cố. Vui lòng thử lại sau ít phút. "
        "Trường hợp khẩn cấp, hãy gọi 113."
    )
    assert "Traceback" not in reply["text"]
    assert any(r.message == "handler failed" and r.exc_info for r in caplog.records)


# --- helpers ---------------------------------------------------------------------------------


def _text(world: World, message: dict) -> str:
    chat = message["chat"]["id"]
    current = {m["message_id"]: m for m in world.sandbox.transcript(chat)}
    return str(current[message["message_id"]].get("text"))


async def _links(world: World) -> dict[int, tuple[str, int, int]]:
    async with world.services.db.session() as session:
        rows = (await session.exec(select(GroupLink))).all()
    return {r.chat_id: (r.scope, r.code, r.province_code) for r in rows}


async def _has_link(world: World, chat_id: int) -> bool:
    return chat_id in await _links(world)


async def _until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def _until_async(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")
