"""Police triage end to end: the card's buttons and text at each step, who may press what,
concurrent presses, forged and stale buttons, the two-way relay, notes and the audit trail."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import col, select

from bot.domain.status import Action
from bot.domain.triage import Officer
from bot.sandbox import SandboxUser
from bot.sandbox_mode import SANDBOX_BOT_USERNAME
from storage.models import Tip, TipEvent, TipReporter
from tests.conftest import World
from tests.test_intake_bot import buttons, confirm, send_tip, tip_by_code, wait_card, write_tip

PHOTOS = Path(__file__).parent / "fixtures" / "photos"
OFFICER_NAME = "Bình Lê Thị"  # the demo officer's Telegram full name


# --- helpers -------------------------------------------------------------------------------


async def delivered_tip(
    world: World, resident: SandboxUser | None = None, **kwargs: Any
) -> tuple[Tip, dict[str, Any]]:
    group = world.demo.commune_group.id
    before = len(world.sandbox.bot_messages(group))
    code = await send_tip(world, resident or world.demo.residents[0], **kwargs)
    card = (await wait_card(world, group, before + 1))[before]
    assert code in card["text"]
    tip = await tip_by_code(world, code)
    # the card row is recorded right after Telegram accepted the card
    await until(lambda: world.services.triage.active_card(tip.id or 0, group, card["message_id"]))
    return tip, card


def current(world: World, message: dict[str, Any]) -> dict[str, Any]:
    chat = message["chat"]["id"]
    wanted = message["message_id"]
    return next(m for m in world.sandbox.transcript(chat) if m["message_id"] == wanted)


async def until(condition: Any, timeout: float = 6.0) -> None:
    for _ in range(int(timeout / 0.02)):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def card_shows(world: World, card: dict[str, Any], text: str) -> None:
    await until(lambda: text in current(world, card)["text"])


async def resident_got(world: World, resident: SandboxUser, start: str, count: int = 1) -> str:
    await until(lambda: any(m["text"].startswith(start)
                            for m in world.sandbox.bot_messages(resident.id)))
    return next(m["text"] for m in world.sandbox.bot_messages(resident.id)
                if m["text"].startswith(start))


async def events_of(world: World, tip: Tip) -> list[str]:
    async with world.services.db.session() as session:
        rows = (await session.exec(
            select(TipEvent).where(TipEvent.tip_id == tip.id).order_by(col(TipEvent.id))
        )).all()
    return [r.event for r in rows]


async def status_of(world: World, tip: Tip) -> str:
    async with world.services.db.session() as session:
        row = await session.get(Tip, tip.id)
    assert row is not None
    return row.status


def outsider_group_member(world: World) -> SandboxUser:
    """An officer of another commune (member of that commune's linked group only)."""
    return world.sandbox.create_user("Khoa", last_name="Đỗ Văn", user_id=7100000099)


async def other_commune_group(world: World, officer: SandboxUser) -> int:
    group = world.sandbox.create_group("Công an xã khác", members=[officer.id],
                                       chat_id=-5000003000)
    other = next(c for c in world.services.directory.communes_of(15) if c.code != 2998)
    await world.services.linking.link(chat_id=group.id, scope="commune", code=other.code,
                                      linked_by=world.demo.admin.id)
    return group.id


# --- the lifecycle -------------------------------------------------------------------------


async def test_full_lifecycle_with_card_and_tipster_notifications(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, resident = world.demo.officer, world.demo.residents[0]
    assert buttons(card) == [f"t:{tip.id}:ack", f"t:{tip.id}:transfer", f"t:{tip.id}:invalid"]

    answer = await world.press(officer, card, f"t:{tip.id}:ack")
    assert answer["text"] == f"Xong: đã cập nhật tin báo {tip.code}."
    await card_shows(world, card, "📌 Trạng thái: Đã tiếp nhận")
    assert f"👮 Phụ trách: {OFFICER_NAME} (tiếp nhận " in current(world, card)["text"]
    assert "⏳ Hạn giải quyết: " in current(world, card)["text"]
    assert buttons(current(world, card)) == [
        f"t:{tip.id}:verify", f"t:{tip.id}:done", f"t:{tip.id}:ask", f"t:{tip.id}:complex",
        f"t:{tip.id}:transfer", f"t:{tip.id}:invalid",
    ]
    notice = await resident_got(world, resident, f"Tin báo {tip.code} của bạn đã được")
    assert notice == (f"Tin báo {tip.code} của bạn đã được Công an Xã Phúc Khánh tiếp nhận. "
                      "Cảm ơn bạn.")

    await world.press(officer, current(world, card), f"t:{tip.id}:verify")
    await card_shows(world, card, "📌 Trạng thái: Đang xác minh")
    assert buttons(current(world, card)) == [
        f"t:{tip.id}:done", f"t:{tip.id}:ask", f"t:{tip.id}:complex", f"t:{tip.id}:transfer",
        f"t:{tip.id}:invalid",
    ]

    await world.press(officer, current(world, card), f"t:{tip.id}:done")
    await until(lambda: f"t:{tip.id}:done:agency" in buttons(current(world, card)))
    assert buttons(current(world, card)) == [
        f"t:{tip.id}:done:agency", f"t:{tip.id}:done:admin", f"t:{tip.id}:done:unfounded",
        f"t:{tip.id}:done:duplicate", f"t:{tip.id}:back",
    ]
    await world.press(officer, current(world, card), f"t:{tip.id}:done:agency")
    await card_shows(world, card, "📌 Trạng thái: Đã xử lý xong – Chuyển cơ quan điều tra")
    await until(lambda: buttons(current(world, card)) == [])
    assert "🏁 Đóng lúc: " in current(world, card)["text"]
    notice = await resident_got(world, resident, f"Tin báo {tip.code} của bạn đã được xử lý")
    assert "đã chuyển cơ quan điều tra có thẩm quyền giải quyết" in notice

    await until(lambda: _events_include(world, tip, "reporter_notified", 2))
    assert [e for e in await events_of(world, tip) if e != "reporter_notified"] == [
        "received", "delivered", "ack", "verify", "done",
    ]
    async with world.services.db.session() as session:
        reporter = await session.get(TipReporter, tip.id)
        final = await session.get(Tip, tip.id)
    assert reporter is not None and reporter.purge_after is not None  # retention starts
    assert final is not None and (final.status, final.outcome, final.owner_id) == (
        "processed", "agency", officer.id
    )
    [status] = await world.exchange(resident, f"/status {tip.code}")
    assert "đã xử lý xong" in status["text"]
    _new_card, history = await world.exchange(
        officer, f"/tip {tip.code}", chat_id=world.demo.commune_group.id, replies=2)
    assert f"Xử lý xong – {OFFICER_NAME} (Chuyển cơ quan điều tra)" in history["text"]
    assert "agency" not in history["text"]  # no English word in the Vietnamese history


async def test_an_english_tipster_is_notified_in_english(world: World) -> None:
    resident = world.demo.residents[1]
    tip, card = await delivered_tip(world, resident)
    await world.press(world.demo.officer, card, f"t:{tip.id}:ack")
    notice = await resident_got(world, resident, f"Your tip {tip.code}")
    assert notice == f"Your tip {tip.code} was taken up by Xã Phúc Khánh police. Thank you."


async def test_spam_path(world: World) -> None:
    tip, card = await delivered_tip(world)
    admin = world.demo.admin
    await world.press(admin, card, f"t:{tip.id}:invalid")
    await until(lambda: f"t:{tip.id}:invalid:spam" in buttons(current(world, card)))
    await world.press(admin, current(world, card), f"t:{tip.id}:back")
    await until(lambda: buttons(current(world, card))[0] == f"t:{tip.id}:ack")
    await world.press(admin, current(world, card), f"t:{tip.id}:invalid")
    await until(lambda: f"t:{tip.id}:invalid:spam" in buttons(current(world, card)))
    await world.press(admin, current(world, card), f"t:{tip.id}:invalid:spam")
    await card_shows(world, card, "📌 Trạng thái: Không hợp lệ – Tin rác, quấy rối")
    resident = world.demo.residents[0]
    await resident_got(world, resident, f"Tin báo {tip.code} của bạn đã được xem xét")


async def test_transfer_up_to_the_province(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, province_officer = world.demo.officer, world.demo.province_officer
    await world.press(officer, card, f"t:{tip.id}:ack")
    await card_shows(world, card, "Đã tiếp nhận")
    await world.press(officer, current(world, card), f"t:{tip.id}:transfer")
    await until(lambda: f"t:{tip.id}:transfer:province" in buttons(current(world, card)))
    await world.press(officer, current(world, card), f"t:{tip.id}:transfer:province")
    [new_card] = await wait_card(world, world.demo.province_group.id)
    await until(lambda: world.services.triage.active_card(  # recorded after Telegram took it
        tip.id or 0, world.demo.province_group.id, new_card["message_id"]))
    assert tip.code in new_card["text"] and "Mới – chờ tiếp nhận" in new_card["text"]
    assert buttons(new_card)[0] == f"t:{tip.id}:ack"
    await card_shows(world, card, "đã được chuyển đến nhóm cấp tỉnh")
    assert buttons(current(world, card)) == []
    answer = await world.press(officer, card, f"t:{tip.id}:ack", check=False)  # replayed
    assert answer["text"] == "Nút này không còn hiệu lực."  # the card carries no button now
    await world.press(province_officer, new_card, f"t:{tip.id}:ack")
    await card_shows(world, new_card, "Phụ trách: Cường Trần Quốc")
    refreshed = await tip_by_code(world, tip.code)
    assert refreshed.created_at == tip.created_at and refreshed.ack_due_at == tip.ack_due_at
    assert refreshed.transfers == 1


async def test_transfer_to_another_commune_by_search(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer = world.demo.officer
    other_officer = outsider_group_member(world)
    other_group = await other_commune_group(world, other_officer)
    target = (await world.services.linking.where(chat_id=other_group))
    assert target is not None and target.commune is not None
    group = world.demo.commune_group.id
    await world.press(officer, card, f"t:{tip.id}:transfer")
    await until(lambda: f"t:{tip.id}:transfer:pick" in buttons(current(world, card)))
    before = len(world.sandbox.bot_messages(group))
    await world.press(officer, current(world, card), f"t:{tip.id}:transfer:pick")
    [prompt] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    await _prompt_recorded(world, group, prompt)
    assert prompt["text"].startswith(f"{OFFICER_NAME}, hãy trả lời tin nhắn này bằng tên xã")
    choices = await _reply_in_group(world, officer, group, prompt,
                                    f"{target.commune.name} Lào Cai")
    assert f"t:{tip.id}:xc:{target.commune.code}" in buttons(choices)
    await world.press(officer, choices, f"t:{tip.id}:xc:{target.commune.code}")
    [new_card] = await wait_card(world, other_group)
    assert tip.code in new_card["text"] and target.commune.name in new_card["text"]
    await until(lambda: world.services.triage.active_card(  # recorded after Telegram took it
        tip.id or 0, other_group, new_card["message_id"]))
    await card_shows(world, card, f"đã được chuyển đến {target.commune.name}")
    moved = await tip_by_code(world, tip.code)
    assert (moved.commune_code, moved.status) == (target.commune.code, "new")
    # the original commune's officers no longer act on it; the new commune's do
    answer = await world.press(officer, new_card, f"t:{tip.id}:ack", check=False)
    assert answer["text"].startswith("Xin lỗi, chỉ cán bộ")
    await world.press(other_officer, new_card, f"t:{tip.id}:ack")
    await card_shows(world, new_card, "Phụ trách: Khoa Đỗ Văn")


# --- who may do what -----------------------------------------------------------------------


ACTIONS = {
    # action data suffix: (state to put the tip in first, expected status after)
    "ack": ([], "acknowledged"),
    "verify": ([Action.ACK], "verifying"),
    "done:agency": ([Action.ACK], "processed"),
    "invalid:spam": ([], "invalid"),
    "transfer:province": ([], "new"),
    "ask": ([Action.ACK], None),
    "complex": ([Action.ACK], None),
}


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_authorization_matrix(world: World, action: str) -> None:
    tip, card = await delivered_tip(world)
    assert tip.id is not None
    setup, expected = ACTIONS[action]
    for step in setup:
        await world.services.triage.act(tip.id, step, Officer(1, "Cán bộ thử"))
    world.services.outbox.wake()
    data = f"t:{tip.id}:{action}"
    if ":" in action:  # a choice: the card shows it after its menu button was pressed
        await until(lambda: f"t:{tip.id}:{action.split(':')[0]}" in buttons(current(world, card)))
        await world.press(world.demo.officer, current(world, card),
                          f"t:{tip.id}:{action.split(':')[0]}")
    # Telegram only takes presses of buttons the message carries (forged ones: see below)
    await until(lambda: data in buttons(current(world, card)))
    card = current(world, card)
    status_before = await status_of(world, tip)
    leaver = world.sandbox.create_user("Lâm", user_id=7100000077)
    world.sandbox.add_member(world.demo.commune_group.id, leaver.id)
    world.sandbox.remove_member(world.demo.commune_group.id, leaver.id)
    other_officer = outsider_group_member(world)
    await other_commune_group(world, other_officer)
    refused = [world.demo.residents[0], other_officer, leaver]
    for person in refused:
        answer = await world.press(person, card, data)
        assert answer == {"text": "Xin lỗi, chỉ cán bộ công an xã hoặc tỉnh phụ trách mới được "
                                  "xử lý tin báo này.", "show_alert": True}, person.first_name
        assert await status_of(world, tip) == status_before
    assert (await events_of(world, tip)).count("refused") == len(refused)
    async with world.services.db.session() as session:
        refusals = (await session.exec(select(TipEvent).where(
            TipEvent.tip_id == tip.id, TipEvent.event == "refused"))).all()
    assert all(r.actor_id is None and r.actor_name is None for r in refusals)  # no identity

    allowed = {"ack": world.demo.province_officer, "verify": world.demo.admin}.get(
        action, world.demo.officer)
    answer = await world.press(allowed, card, data)
    assert answer.get("show_alert") is not True, answer
    if expected is not None:
        await until(lambda: _status_is(world, tip, expected))


async def test_two_officers_acknowledge_at_the_same_moment(world: World) -> None:
    tip, card = await delivered_tip(world)
    first, second = world.demo.officer, world.demo.admin
    answers = await asyncio.gather(
        world.press(first, card, f"t:{tip.id}:ack"), world.press(second, card, f"t:{tip.id}:ack")
    )
    winners = [a for a in answers if a["text"].startswith("Xong")]
    losers = [a for a in answers if not a["text"].startswith("Xong")]
    assert len(winners) == 1 and len(losers) == 1
    async with world.services.db.session() as session:
        row = await session.get(Tip, tip.id)
    assert row is not None and row.owner_name in (OFFICER_NAME, "An Nguyễn Văn")
    assert losers[0] == {
        "text": f"Tin báo đã ở trạng thái đã tiếp nhận – {row.owner_name} đang phụ trách.",
        "show_alert": True,
    }
    assert (await events_of(world, tip)).count("ack") == 1


async def test_forged_and_stale_buttons_change_nothing(world: World) -> None:
    tip, card = await delivered_tip(world)
    other_tip, _other_card = await delivered_tip(world, text="Một tin khác")
    officer = world.demo.officer
    # data the card does not carry: refused before any lookup, audited on the card's tip
    forged = ["t:999999:ack", f"t:{tip.id}:explode", f"t:{tip.id}:done:bogus",
              f"t:{other_tip.id}:ack", "t:abc:ack"]
    for data in forged:
        answer = await world.press(officer, card, data, check=False)
        assert answer == {"text": "Nút này không còn hiệu lực.", "show_alert": True}, data
    for data in ["zzz", "x" * 64]:  # no family at all: answered, not audited
        answer = await world.press(officer, card, data, check=False)
        assert answer == {"text": "Nút này không còn hiệu lực.", "show_alert": True}, data
    assert await status_of(world, tip) == "new" and await status_of(world, other_tip) == "new"
    # one officer pressing five forged buttons: one event (a history cannot be flooded)
    assert await events_of(world, tip) == ["received", "delivered", "refused"]
    assert await events_of(world, other_tip) == ["received", "delivered"]


# --- two-way relay, notes, history ---------------------------------------------------------


async def test_question_and_answers_relay_both_ways_without_identity(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, resident = world.demo.officer, world.demo.residents[0]
    group = world.demo.commune_group.id
    await world.press(officer, card, f"t:{tip.id}:ack")
    await card_shows(world, card, "Đã tiếp nhận")
    before = len(world.sandbox.bot_messages(group))
    await world.press(officer, current(world, card), f"t:{tip.id}:ask")
    [prompt] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    await _prompt_recorded(world, group, prompt)
    assert prompt["text"] == (f"{OFFICER_NAME}, hãy trả lời tin nhắn này bằng câu hỏi gửi người "
                              f"báo tin của tin báo {tip.code}.")
    confirmation = await _reply_in_group(world, officer, group, prompt, "Xe máy màu gì?")
    assert confirmation["text"] == f"✅ Đã gửi câu hỏi cho người báo tin của tin báo {tip.code}."
    question_text = await resident_got(world, resident, "❓ Công an Xã Phúc Khánh hỏi thêm")
    assert "Xe máy màu gì?" in question_text
    question = next(m for m in world.sandbox.bot_messages(resident.id)
                    if m["text"].startswith("❓"))
    # the question's message id is recorded right after Telegram accepted it
    await until(lambda: _events_include(world, tip, "reporter_notified", 2))

    before = len(world.sandbox.bot_messages(group))
    await world.sandbox.send_text(resident.id, "Màu đỏ, biển 24B1",
                                  reply_to_message_id=question["message_id"])
    [relayed] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    assert relayed["text"] == (f"💬 Người báo tin #{tip.id} trả lời (tin báo {tip.code}):\n"
                               "Màu đỏ, biển 24B1")
    assert relayed["reply_to_message"]["message_id"] == card["message_id"]

    before = len(world.sandbox.bot_messages(group))
    await world.sandbox.send_document(
        resident.id, (PHOTOS / "DSCN0010.jpg").read_bytes(), file_name="xe.jpg",
        mime_type="image/jpeg", reply_to_message_id=question["message_id"],
    )
    messages = await world.sandbox.wait_for_bot_messages(group, before + 2)
    photo = next(m for m in messages[before:] if m.get("photo"))
    data = world.sandbox.file_bytes(photo["photo"][-1]["file_id"])
    assert b"Exif" not in data and b"NIKON" not in data and b"GPS" not in data
    assert not Image.open(io.BytesIO(data)).getexif()

    [ack] = await world.exchange(resident, f"/answer {tip.code} Thêm: có 2 người")
    assert ack["text"] == "Đã chuyển câu trả lời của bạn cho công an. Cảm ơn bạn."
    [refused] = await world.exchange(world.demo.residents[1], f"/answer {tip.code} giả mạo")
    assert refused["text"] == "No tip has this code. Please check it and try again."

    await asyncio.sleep(0.5)
    _assert_no_identity_in_groups(world)
    history = await events_of(world, tip)
    assert history.count("question") == 1 and history.count("answer") == 3


async def test_plain_reply_to_a_card_is_an_internal_note(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, resident = world.demo.officer, world.demo.residents[0]
    group = world.demo.commune_group.id
    resident_before = len(world.sandbox.bot_messages(resident.id))
    saved = await _reply_in_group(world, officer, group, card, "Đã cử tổ tuần tra kiểm tra")
    assert saved["text"] == "📝 Đã lưu ghi chú nội bộ (không gửi cho người báo tin)."
    await asyncio.sleep(0.3)
    assert len(world.sandbox.bot_messages(resident.id)) == resident_before  # nothing relayed
    replies = await world.exchange(officer, f"/tip {tip.code}", chat_id=group, replies=2)
    new_card, history = replies
    assert tip.code in new_card["text"] and buttons(new_card)[0] == f"t:{tip.id}:ack"
    assert "Ghi chú nội bộ – Bình Lê Thị: Đã cử tổ tuần tra kiểm tra" in history["text"]
    assert f"Nhận tin báo – Người báo tin #{tip.id}" in history["text"]
    await world.press(officer, new_card, f"t:{tip.id}:ack")  # the re-posted card is live
    await card_shows(world, card, "Đã tiếp nhận")  # and every live card is refreshed


async def test_tip_command_does_not_leak_other_areas(world: World) -> None:
    tip, _card = await delivered_tip(world)
    outsider = outsider_group_member(world)
    other_group = await other_commune_group(world, outsider)
    [reply] = await world.exchange(outsider, f"/tip {tip.code}", chat_id=other_group)
    assert reply["text"] == "Không có tin báo với mã này trong địa bàn của nhóm."


async def test_the_one_tap_tip_link_of_digests_shows_the_card_in_its_area_only(
    world: World,
) -> None:
    """Digests and /overdue list each tip as ``/tip_XXXX_YYYY``, which the client shows as a
    link: tapping it (in a group it may come with the bot's name) works as ``/tip XXXX-YYYY``;
    one addressed to another bot is not answered; another commune's group learns nothing."""
    tip, _card = await delivered_tip(world)
    officer, group = world.demo.officer, world.demo.commune_group.id
    link = "/tip_" + tip.code.replace("-", "_")
    card, history = await world.exchange(officer, link, chat_id=group, replies=2)
    assert card["text"].startswith(f"📥 Tin báo {tip.code}")
    assert buttons(card)[0] == f"t:{tip.id}:ack"
    assert f"Nhận tin báo – Người báo tin #{tip.id}" in history["text"]
    card_again, _history = await world.exchange(
        officer, f"{link}@{SANDBOX_BOT_USERNAME}", chat_id=group, replies=2)
    assert card_again["text"] == card["text"]

    before = len(world.sandbox.bot_messages(group))
    await world.sandbox.send_text(officer.id, f"{link}@SomeOtherBot", chat_id=group)
    await world.sandbox.wait_idle(timeout=5, settle=0.3)
    assert len(world.sandbox.bot_messages(group)) == before

    outsider = outsider_group_member(world)
    other_group = await other_commune_group(world, outsider)
    [reply] = await world.exchange(outsider, link, chat_id=other_group)
    assert reply["text"] == "Không có tin báo với mã này trong địa bàn của nhóm."


async def test_tip_command_sends_the_pictures_and_location_its_card_announces(
    world: World,
) -> None:
    """/tip re-posts a card saying "1 ảnh (gửi kèm bên dưới)": the picture (with the
    resident's caption) and the location come below it, as replies to the new card."""
    resident, officer = world.demo.residents[0], world.demo.officer
    group = world.demo.commune_group.id
    await write_tip(world, resident)
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_photo(resident.id, (PHOTOS / "jolla.jpg").read_bytes(),
                                   caption="Biển số xe")
    await world.sandbox.wait_for_bot_messages(resident.id, before + 1)
    before = len(world.sandbox.bot_messages(resident.id))
    await world.sandbox.send_location(resident.id, 22.0512, 104.1507)
    await world.sandbox.wait_for_bot_messages(resident.id, before + 1)
    cards_before = len(world.sandbox.bot_messages(group))
    latest = next(m for m in reversed(world.sandbox.bot_messages(resident.id))
                  if "d:done" in buttons(m))  # only the newest prompt keeps its buttons
    code = await confirm(world, resident, latest)
    delivered = (await wait_card(world, group, cards_before + 3))[cards_before:]
    assert "1 ảnh (gửi kèm bên dưới)" in delivered[0]["text"]
    await world.sandbox.wait_idle()

    new_card, picture, location, history = await world.exchange(
        officer, f"/tip {code}", chat_id=group, replies=4)
    assert code in new_card["text"] and "1 ảnh (gửi kèm bên dưới)" in new_card["text"]
    assert picture["photo"] and picture["caption"] == f"Ảnh 1/1 – tin báo {code}\n“Biển số xe”"
    assert picture["reply_to_message"]["message_id"] == new_card["message_id"]
    assert world.sandbox.file_bytes(picture["photo"][-1]["file_id"]) == \
        world.sandbox.file_bytes(delivered[1]["photo"][-1]["file_id"])  # the same picture
    assert location["location"]["latitude"] == pytest.approx(22.0512, abs=1e-4)
    assert location["reply_to_message"]["message_id"] == new_card["message_id"]
    assert history["text"].startswith("🗂 Lịch sử tin báo")


async def test_unreachable_tipster_is_reported_to_the_officer(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, resident = world.demo.officer, world.demo.residents[0]
    world.sandbox.block_bot(resident.id)
    group = world.demo.commune_group.id
    before = len(world.sandbox.bot_messages(group))
    await world.press(officer, card, f"t:{tip.id}:ack")
    messages = await world.sandbox.wait_for_bot_messages(group, before + 1)
    warning = messages[before]
    assert warning["text"].startswith(f"⚠️ Không thể liên lạc với Người báo tin #{tip.id}")
    assert warning["reply_to_message"]["message_id"] == card["message_id"]
    await until(lambda: _events_include(world, tip, "reporter_unreachable", 1))
    await asyncio.sleep(0.5)
    assert (await events_of(world, tip)).count("reporter_unreachable") == 1
    warnings = [m for m in world.sandbox.bot_messages(group) if m["text"].startswith("⚠️")]
    assert len(warnings) == 1


async def test_queue_lists_open_tips_urgent_first(world: World) -> None:
    first, _ = await delivered_tip(world, text="Tin thường")
    urgent, _ = await delivered_tip(world, text="Tin khẩn", urgent=True)
    [reply] = await world.exchange(world.demo.officer, "/queue",
                                   chat_id=world.demo.commune_group.id)
    lines = reply["text"].splitlines()
    assert lines[0] == "Tin báo đang mở (2):"
    assert lines[1].startswith(f"🔴 {urgent.code} · Mới – chờ tiếp nhận · hạn ")
    assert lines[2].startswith(f"{first.code} · Mới – chờ tiếp nhận · hạn ")


async def test_group_help_for_officers(world: World) -> None:
    [reply] = await world.exchange(world.demo.officer, "/help",
                                   chat_id=world.demo.commune_group.id)
    assert reply["text"].startswith("Lệnh dành cho cán bộ:")


# --- helpers -------------------------------------------------------------------------------


async def _reply_in_group(
    world: World, user: SandboxUser, group: int, to: dict[str, Any], text: str
) -> dict[str, Any]:
    before = len(world.sandbox.bot_messages(group))
    await world.sandbox.send_text(user.id, text, chat_id=group,
                                  reply_to_message_id=to["message_id"])
    return (await world.sandbox.wait_for_bot_messages(group, before + 1))[before]


async def _prompt_recorded(world: World, group: int, prompt: dict[str, Any]) -> None:
    """The prompt is remembered right after Telegram accepted it; people reply later."""
    await until(lambda: world.services.triage.prompt(group, prompt["message_id"]))


async def _status_is(world: World, tip: Tip, expected: str) -> bool:
    return await status_of(world, tip) == expected


async def _events_include(world: World, tip: Tip, event: str, count: int) -> bool:
    return (await events_of(world, tip)).count(event) >= count


def _assert_no_identity_in_groups(world: World) -> None:
    needles: set[str] = set()
    for person in world.demo.residents:
        needles |= {str(person.id), person.first_name, person.last_name or ""}
        needles |= {person.username or "", person.phone_number or ""}
    needles.discard("")
    dump = json.dumps([world.sandbox.transcript(c.id) for c in
                       (world.demo.commune_group, world.demo.province_group,
                        world.demo.ops_group)], ensure_ascii=False)
    for needle in needles:
        assert needle not in dump, needle
    assert "forward_origin" not in dump and "external_reply" not in dump


# --- delivery edge cases found in review ---------------------------------------------------


async def _outbox_settled(world: World) -> bool:
    from storage.models import OutboxMessage

    async with world.services.db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return all(r.status != "pending" for r in rows)


async def test_card_edits_follow_a_group_that_became_a_supergroup(world: World) -> None:
    from storage.models import TipCard

    tip, _card = await delivered_tip(world)
    assert tip.id is not None
    new_id = await world.sandbox.migrate_to_supergroup(world.demo.commune_group.id)
    await world.services.triage.act(tip.id, Action.ACK, Officer(world.demo.officer.id, "Bình"))
    world.services.outbox.wake()
    await until(lambda: _outbox_settled(world), timeout=10)
    async with world.services.db.session() as session:
        cards = (await session.exec(select(TipCard).where(TipCard.tip_id == tip.id))).all()
        moved = await session.get(Tip, tip.id)
    assert [c.chat_id for c in cards] == [new_id]
    assert moved is not None and moved.queue_chat_id == new_id
    assert (await world.services.linking.where(chat_id=new_id)) is not None


async def test_a_tips_messages_keep_their_order_when_one_must_wait(world: World) -> None:
    tip, _card = await delivered_tip(world)
    resident = world.demo.residents[0]
    assert tip.id is not None
    busy = "Too Many Requests: retry after 1"
    world.sandbox.inject_errors("sendMessage", [(429, busy, 1), (429, busy, 1)])
    officer = Officer(world.demo.officer.id, "Bình")
    await world.services.triage.act(tip.id, Action.ACK, officer)
    world.services.outbox.wake()
    await asyncio.sleep(0.3)  # the "taken up" notice is now waiting for its retry
    await world.services.triage.act(tip.id, Action.DONE, officer, choice="admin")
    world.services.outbox.wake()
    await until(lambda: _outbox_settled(world), timeout=15)
    notices = [m["text"] for m in world.sandbox.bot_messages(resident.id)
               if m["text"].startswith(f"Tin báo {tip.code} của bạn")]
    assert len(notices) == 2
    assert "tiếp nhận" in notices[0] and "xử lý xong" in notices[1]


async def test_a_prompt_is_answered_once_and_only_by_its_officer(world: World) -> None:
    tip, card = await delivered_tip(world)
    officer, admin, resident = world.demo.officer, world.demo.admin, world.demo.residents[0]
    group = world.demo.commune_group.id
    await world.press(officer, card, f"t:{tip.id}:ack")
    await card_shows(world, card, "Đã tiếp nhận")
    before = len(world.sandbox.bot_messages(group))
    await world.press(officer, current(world, card), f"t:{tip.id}:ask")
    [prompt] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    await _prompt_recorded(world, group, prompt)
    assert any(e["type"] == "text_mention" and e["user"]["id"] == officer.id
               for e in prompt.get("entities", []))
    other = await _reply_in_group(world, admin, group, prompt, "Câu hỏi của người khác")
    assert other["text"] == "Chỉ cán bộ đã bấm nút mới trả lời được yêu cầu này."
    first = await _reply_in_group(world, officer, group, prompt, "Câu hỏi thứ nhất")
    assert first["text"].startswith("✅ Đã gửi câu hỏi")
    await world.sandbox.send_text(officer.id, "Câu hỏi lặp lại", chat_id=group,
                                  reply_to_message_id=prompt["message_id"])
    await asyncio.sleep(0.5)
    questions = [m for m in world.sandbox.bot_messages(resident.id) if m["text"].startswith("❓")]
    assert len(questions) == 1 and "Câu hỏi thứ nhất" in questions[0]["text"]
