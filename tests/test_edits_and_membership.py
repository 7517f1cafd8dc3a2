"""Edited messages are never handled twice (polling and webhook ask for the same update
types), and a removed officer loses the right to act at once, not when a cache expires."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlmodel import col, select

import handlers
from bot.sandbox import BotApiSandbox
from storage.models import TipEvent
from tests.conftest import World, running_world
from tests.test_intake_bot import confirm, wait_card, write_tip
from tests.test_triage_bot import current, delivered_tip, events_of, status_of, until

EDIT_HINT = ("Tin nhắn đã sửa không được chuyển đi: công an thấy tin nhắn như khi bạn gửi lần "
             "đầu. Nếu cần đính chính, vui lòng gửi nội dung đính chính thành tin nhắn mới.")
GROUP_EDIT_HINT = ("Tin nhắn đã sửa không được ghi nhận: ghi chú hoặc câu trả lời được giữ như "
                   "khi gửi lần đầu. Vui lòng trả lời lại với nội dung đính chính.")


async def test_polling_asks_for_the_same_update_types_as_the_webhook(world: World) -> None:
    await world.exchange(world.demo.residents[0], "/help")  # empty polls are not recorded
    polls = world.sandbox.method_calls("getUpdates")
    assert polls, "the bot never polled"
    asked = [json.loads(call["params"]["allowed_updates"]) for call in polls]
    assert all(kinds == handlers.ALLOWED_UPDATES for kinds in asked)
    assert {"edited_message", "chat_member"} <= set(handlers.ALLOWED_UPDATES)


async def test_an_edited_description_is_not_added_again(world: World) -> None:
    resident = world.demo.residents[0]
    prompt = await write_tip(world, resident, text="Xe biển số 24C-123 chạy vào chợ.")
    description = next(m for m in reversed(world.sandbox.transcript(resident.id))
                       if m.get("text") == "Xe biển số 24C-123 chạy vào chợ.")
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.edit_text(resident.id, description["message_id"],
                                  "Xe biển số 24C-128 chạy vào chợ.")
    [hint] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert hint["text"] == EDIT_HINT
    group = world.demo.commune_group.id
    cards_before = len(world.sandbox.bot_messages(group))
    await confirm(world, resident, current(world, prompt))
    [card] = (await wait_card(world, group, cards_before + 1))[cards_before:]
    assert "24C-123" in card["text"] and "24C-128" not in card["text"]


async def test_an_edited_note_is_saved_once_and_the_officer_told(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, group = world.demo.officer, world.demo.commune_group.id
    before = len(world.sandbox.bot_messages(group))
    note = await world.sandbox.send_text(officer.id, "Đã gọi cho trưởng thôn", chat_id=group,
                                         reply_to_message_id=card["message_id"])
    await world.sandbox.wait_for_bot_messages(group, before + 1)
    await world.sandbox.edit_text(officer.id, note["message_id"], "Đã gọi cho trưởng thôn 2 lần",
                                  chat_id=group)
    [hint] = (await world.sandbox.wait_for_bot_messages(group, before + 2))[before + 1:]
    assert hint["text"] == GROUP_EDIT_HINT
    await world.sandbox.wait_idle()
    async with world.services.db.session() as session:
        notes = (await session.exec(select(TipEvent).where(
            TipEvent.tip_id == tip.id, TipEvent.event == "note").order_by(col(TipEvent.id)))).all()
    assert [json.loads(n.details or "{}").get("text") for n in notes] == ["Đã gọi cho trưởng thôn"]


async def test_edited_plain_group_chatter_is_ignored(world: World) -> None:
    officer, group = world.demo.officer, world.demo.commune_group.id
    world.sandbox.privacy_mode = False  # the bot sees every group message
    chatter = await world.sandbox.send_text(officer.id, "Chào cả nhóm", chat_id=group)
    await world.sandbox.edit_text(officer.id, chatter["message_id"], "Chào cả đội", chat_id=group)
    await world.sandbox.wait_idle()
    assert world.sandbox.bot_messages(group) == [
        m for m in world.sandbox.bot_messages(group) if "sửa" not in (m.get("text") or "")
    ]


# --- membership: no stale "is a member" ----------------------------------------------------


@pytest.fixture
async def cached_world(
    sandbox: BotApiSandbox, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[World]:
    """The demo world with the production membership cache (60 s)."""
    async with running_world(sandbox, sqlite_url, tmp_path, membership_cache_seconds=60) as w:
        yield w


REFUSED = "Xin lỗi, chỉ cán bộ công an xã hoặc tỉnh phụ trách mới được xử lý tin báo này."


async def _acted(world: World, officer_id: int, card: dict, data: str) -> dict:
    return await world.press(world.sandbox.user(officer_id), current(world, card), data)


@pytest.mark.parametrize("bot_is_admin", [False, True], ids=["left-message", "chat-member"])
async def test_a_removed_officer_cannot_act_even_with_a_cached_answer(
    cached_world: World, bot_is_admin: bool
) -> None:
    world = cached_world
    group = world.demo.commune_group.id
    if bot_is_admin:  # Telegram then also sends chat_member updates
        world.sandbox.add_member(group, world.sandbox.bot_user.id, admin=True)
    first, card1 = await delivered_tip(world)
    second, card2 = await delivered_tip(world, text="Tin thứ hai")
    officer = world.demo.officer
    answer = await _acted(world, officer.id, card1, f"t:{first.id}:ack")
    assert answer["text"].startswith("Xong")  # "is a member" is now cached for 60 s
    world.sandbox.remove_member(group, officer.id, kicked=True)
    await world.sandbox.wait_idle()
    if bot_is_admin:
        assert any("chat_member" in u for u in world.sandbox.updates)
    answer = await _acted(world, officer.id, card2, f"t:{second.id}:ack")
    assert answer == {"text": REFUSED, "show_alert": True}
    assert await status_of(world, second) == "new"
    assert (await events_of(world, second))[-1] == "refused"


async def test_someone_just_added_can_act_at_once(cached_world: World) -> None:
    """A "not a member" answer is not cached."""
    world = cached_world
    group = world.demo.commune_group.id
    tip, card = await delivered_tip(world)
    newcomer = world.sandbox.create_user("Minh", last_name="Phan Văn", user_id=7100000066)
    answer = await _acted(world, newcomer.id, card, f"t:{tip.id}:ack")
    assert answer == {"text": REFUSED, "show_alert": True}
    world.sandbox.add_member(group, newcomer.id)
    answer = await _acted(world, newcomer.id, card, f"t:{tip.id}:ack")
    assert answer["text"].startswith("Xong")
    await until(lambda: status_of(world, tip))
    assert await status_of(world, tip) == "acknowledged"


async def test_a_removal_during_a_membership_check_is_not_overwritten_by_its_answer(
    cached_world: World,
) -> None:
    """getChatMember answered "member" while the officer was being removed: that answer is
    used once, never cached past the removal."""
    world = cached_world
    membership = world.services.membership
    group, officer = world.demo.commune_group.id, world.demo.officer
    started = asyncio.Event()
    original = membership._bot.get_chat_member

    async def slow_answer(chat_id: int, user_id: int) -> object:
        answer = await original(chat_id, user_id)
        started.set()
        await asyncio.sleep(0.2)  # the removal lands while the answer is on its way
        return answer

    membership._bot = SimpleNamespace(get_chat_member=slow_answer)  # type: ignore[assignment]
    check = asyncio.create_task(membership.is_member(group, officer.id))
    await started.wait()
    world.sandbox.remove_member(group, officer.id, kicked=True)
    membership.forget(group, officer.id)
    assert await check is True  # Telegram's answer at the time it was asked
    membership._bot = SimpleNamespace(get_chat_member=original)  # type: ignore[assignment]
    assert await membership.is_member(group, officer.id) is False


async def test_editing_again_gets_no_second_hint_and_other_replies_get_none(world: World) -> None:
    resident = world.demo.residents[0]
    await write_tip(world, resident, text="Xe lạ đỗ trước cổng trường.")
    text = next(m for m in reversed(world.sandbox.transcript(resident.id))
                if m.get("text") == "Xe lạ đỗ trước cổng trường.")
    before = len(world.sandbox.bot_messages(resident.id))
    for version in ("Xe lạ đỗ trước cổng trường 1", "Xe lạ đỗ trước cổng trường 2"):
        await world.sandbox.edit_text(resident.id, text["message_id"], version)
        await world.sandbox.wait_idle()
    assert [m["text"] for m in world.sandbox.bot_messages(resident.id)[before:]] == [EDIT_HINT]
    # in a group: a reply to /queue's answer (not a card, not a prompt) is nobody's business
    officer, group = world.demo.officer, world.demo.commune_group.id
    await world.sandbox.send_text(officer.id, "/queue", chat_id=group)
    [queue] = (await world.sandbox.wait_for_bot_messages(group, 1))[-1:]
    reply = await world.sandbox.send_text(officer.id, "ok", chat_id=group,
                                          reply_to_message_id=queue["message_id"])
    await world.sandbox.wait_idle()
    count = len(world.sandbox.bot_messages(group))
    await world.sandbox.edit_text(officer.id, reply["message_id"], "ok!", chat_id=group)
    await world.sandbox.wait_idle()
    assert len(world.sandbox.bot_messages(group)) == count
