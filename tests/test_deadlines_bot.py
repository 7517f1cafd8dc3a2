"""Settlement deadlines end to end, on SQLite and PostgreSQL: the card's "complex case"
button and /complex, /extend accepted and each refusal (changing nothing), a transfer that
keeps the clock (card and database), and the acknowledgement windows from the settings and
categories.json. Time is moved with the bot's clock, never slept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

import bot.domain.categories
from bot.domain.cards import format_time
from bot.domain.deadlines import ICT, DeadlineRefusal, add_months
from bot.domain.triage import Officer
from bot.sandbox import BotApiSandbox
from storage.models import Tip, TipEvent
from tests.conftest import MovableClock, World, running_world
from tests.test_intake_bot import buttons, send_tip, tip_by_code, wait_card
from tests.test_triage_bot import (
    OFFICER_NAME,
    _prompt_recorded,
    _reply_in_group,
    card_shows,
    current,
    delivered_tip,
    other_commune_group,
    outsider_group_member,
    resident_got,
    until,
)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def world(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path, clock: MovableClock
) -> AsyncIterator[World]:
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as started:
        yield started


def when(moment: Any) -> str:
    return format_time(moment, ICT)


async def say(world: World, text: str, person: Any = None, group: int | None = None) -> str:
    """A command in the commune group (by the demo officer); the bot's one reply."""
    [reply] = await world.exchange(person or world.demo.officer, text,
                                   chat_id=group or world.demo.commune_group.id)
    return str(reply["text"])


async def deadline_events(world: World, tip: Tip) -> list[TipEvent]:
    async with world.services.db.session() as session:
        return list((await session.exec(
            select(TipEvent).where(TipEvent.tip_id == tip.id,
                                   col(TipEvent.event).in_(["complex", "extend"]))
            .order_by(col(TipEvent.id))
        )).all())


async def taken_up(world: World, text: str = "Có người bán ma túy ở chợ.") -> tuple[
        Tip, dict[str, Any]]:
    """A tip delivered and taken up (a different ``text`` each: the same one is merged)."""
    tip, card = await delivered_tip(world, text=text)
    await world.press(world.demo.officer, card, f"t:{tip.id}:ack")
    await card_shows(world, card, "Đã tiếp nhận")
    # the resident's notice first: it must not be taken for the answer to their next message
    await resident_got(world, world.demo.residents[0], f"Tin báo {tip.code} của bạn đã được")
    return tip, current(world, card)


# --- complex case ------------------------------------------------------------------------------


async def test_complex_case_from_the_card_button(world: World) -> None:
    tip, card = await delivered_tip(world)
    assert f"t:{tip.id}:complex" not in buttons(card)  # a new tip: take it up first
    assert f"⏳ Hạn giải quyết: {when(tip.settle_due_at)}" in card["text"]
    officer, group = world.demo.officer, world.demo.commune_group.id
    await world.press(officer, card, f"t:{tip.id}:ack")
    await until(lambda: f"t:{tip.id}:complex" in buttons(current(world, card)))

    before = len(world.sandbox.bot_messages(group))
    answer = await world.press(officer, current(world, card), f"t:{tip.id}:complex")
    assert answer.get("show_alert") is not True
    [prompt] = (await world.sandbox.wait_for_bot_messages(group, before + 1))[before:]
    await _prompt_recorded(world, group, prompt)
    assert prompt["text"] == (
        f"{OFFICER_NAME}, hãy trả lời tin nhắn này bằng lý do tin báo {tip.code} là vụ việc "
        "phức tạp (thời hạn giải quyết sẽ là 2 tháng kể từ khi nhận tin báo).")
    reply = await _reply_in_group(world, officer, group, prompt,
                                  "Phải xác minh ở nhiều địa điểm")
    due = add_months(tip.created_at, 2)
    assert reply["text"] == (f"⚖️ Đã ghi nhận tin báo {tip.code} là vụ việc phức tạp. Hạn giải "
                             f"quyết: {when(tip.settle_due_at)} → {when(due)}.")
    await card_shows(world, card, f"⏳ Hạn giải quyết: {when(due)} (vụ việc phức tạp: 2 tháng)")
    await until(lambda: f"t:{tip.id}:complex" not in buttons(current(world, card)))

    row = await tip_by_code(world, tip.code)
    assert row.settle_due_at == due and row.complex_at is not None
    assert row.complex_reason == "Phải xác minh ở nhiều địa điểm"
    [event] = await deadline_events(world, tip)
    assert (event.event, event.actor_kind, event.actor_id, event.actor_name) == (
        "complex", "officer", officer.id, OFFICER_NAME)
    assert json.loads(event.details or "") == {
        "reason": "Phải xác minh ở nhiều địa điểm", "old_due": tip.settle_due_at.isoformat(),
        "new_due": due.isoformat()}
    # once only, whichever way it is asked
    text = await say(world, f"/complex {tip.code} lần nữa")
    assert text.startswith(f"Tin báo {tip.code} đã được ghi nhận là vụ việc phức tạp lúc ")
    assert text.endswith("; việc này chỉ ghi nhận một lần.")
    _card, history = await world.exchange(officer, f"/tip {tip.code}", chat_id=group, replies=2)
    assert (f"Vụ việc phức tạp – {OFFICER_NAME}: Phải xác minh ở nhiều địa điểm (hạn giải "
            f"quyết {when(due)})") in history["text"]


async def test_complex_case_by_command_and_its_refusals(
    world: World, clock: MovableClock
) -> None:
    tip, card = await taken_up(world)
    assert await say(world, f"/complex {tip.code}") == (
        "Cách dùng: /complex <mã> <lý do>, ví dụ: /complex 7K3Q-9MXD cần xác minh ở nhiều "
        "địa điểm")
    outsider = outsider_group_member(world)
    other_group = await other_commune_group(world, outsider)
    assert await say(world, f"/complex {tip.code} không phải của xã này", outsider,
                     other_group) == "Không có tin báo với mã này trong địa bàn của nhóm."

    late, _late_card = await taken_up(world, "Có người đánh bạc ở quán nước.")
    clock.advance(days=20, minutes=1)
    assert await say(world, f"/complex {late.code} quá muộn") == (
        f"Xin lỗi, không thể ghi nhận tin báo {late.code} là vụ việc phức tạp nữa: thời hạn "
        f"giải quyết ({when(late.settle_due_at)}) đã qua.")
    clock.advance(days=-20, minutes=-1)

    closed, closed_card = await taken_up(world, "Có người trộm gà tối qua.")
    await world.press(world.demo.officer, closed_card, f"t:{closed.id}:done")
    await until(lambda: f"t:{closed.id}:done:admin" in buttons(current(world, closed_card)))
    await world.press(world.demo.officer, current(world, closed_card),
                      f"t:{closed.id}:done:admin")
    await card_shows(world, closed_card, "Đóng lúc")
    assert await say(world, f"/complex {closed.code} đã xong") == (
        f"Tin báo {closed.code} đã đóng nên thời hạn giải quyết không thay đổi nữa.")
    for unchanged in (tip, late, closed):
        row = await tip_by_code(world, unchanged.code)
        assert (row.complex_at, row.settle_due_at) == (None, unchanged.settle_due_at)
        assert await deadline_events(world, unchanged) == []

    due = add_months(tip.created_at, 2)
    assert await say(world, f"/complex {tip.code.lower().replace('-', '')} nhiều đối tượng") \
        == (f"⚖️ Đã ghi nhận tin báo {tip.code} là vụ việc phức tạp. Hạn giải quyết: "
            f"{when(tip.settle_due_at)} → {when(due)}.")
    await card_shows(world, card, f"⏳ Hạn giải quyết: {when(due)} (vụ việc phức tạp: 2 tháng)")


async def test_the_complex_button_refuses_before_asking_once_the_deadline_passed(
    world: World, clock: MovableClock
) -> None:
    tip, card = await taken_up(world)
    group = world.demo.commune_group.id
    before = len(world.sandbox.bot_messages(group))
    clock.advance(days=21)
    answer = await world.press(world.demo.officer, card, f"t:{tip.id}:complex")
    assert answer == {"show_alert": True, "text": (
        f"Xin lỗi, không thể ghi nhận tin báo {tip.code} là vụ việc phức tạp nữa: thời hạn "
        f"giải quyết ({when(tip.settle_due_at)}) đã qua.")}
    assert len(world.sandbox.bot_messages(group)) == before  # no prompt


# --- the one extension -----------------------------------------------------------------------


async def test_extension_accepted_then_a_second_one_refused(world: World) -> None:
    tip, card = await taken_up(world)
    due = tip.settle_due_at + timedelta(days=30)
    assert await say(world, f"/extend {tip.code} 30 chờ kết quả giám định") == (
        f"📅 Đã gia hạn tin báo {tip.code} thêm 30 ngày. Hạn giải quyết: "
        f"{when(tip.settle_due_at)} → {when(due)}.")
    await card_shows(world, card, f"⏳ Hạn giải quyết: {when(due)} (đã gia hạn 30 ngày)")
    row = await tip_by_code(world, tip.code)
    assert (row.settle_due_at, row.extension_days, row.extension_reason) == (
        due, 30, "chờ kết quả giám định")
    assert row.extended_at is not None
    [event] = await deadline_events(world, tip)
    assert (event.event, event.actor_id) == ("extend", world.demo.officer.id)
    assert json.loads(event.details or "") == {
        "reason": "chờ kết quả giám định", "days": 30,
        "old_due": tip.settle_due_at.isoformat(), "new_due": due.isoformat()}

    text = await say(world, f"/extend {tip.code} 10 thêm lần nữa")
    assert text == (f"Xin lỗi, tin báo {tip.code} đã được gia hạn 30 ngày lúc "
                    f"{when(row.extended_at)}; mỗi tin báo chỉ được gia hạn một lần.")
    # a complex case afterwards keeps the extension: 2 months + 30 days
    both = add_months(tip.created_at, 2) + timedelta(days=30)
    await say(world, f"/complex {tip.code} nhiều địa điểm")
    await card_shows(world, card, f"⏳ Hạn giải quyết: {when(both)} (vụ việc phức tạp: 2 tháng; "
                                  "đã gia hạn 30 ngày)")
    assert len(await deadline_events(world, tip)) == 2


async def test_extension_refusals_change_nothing(world: World, clock: MovableClock) -> None:
    tip, _card = await taken_up(world)
    code = tip.code
    usage = ("Cách dùng: /extend <mã> <số ngày> <lý do>, ví dụ: /extend 7K3Q-9MXD 30 chờ kết "
             "quả giám định")
    assert await say(world, f"/extend {code} 30") == usage  # no reason
    assert await say(world, f"/extend {code} ba mươi ngày") == usage  # days not a number
    bad_days = "Xin lỗi, số ngày gia hạn phải từ 1 đến 60 ngày (tối đa 2 tháng)."
    assert await say(world, f"/extend {code} 61 lâu") == bad_days
    assert await say(world, f"/extend {code} 0 không") == bad_days
    outsider = outsider_group_member(world)
    other_group = await other_commune_group(world, outsider)
    assert await say(world, f"/extend {code} 10 của xã khác", outsider, other_group) == \
        "Không có tin báo với mã này trong địa bàn của nhóm."
    assert await say(world, "/extend 7K3Q-9MXD 10 không có") == \
        "Không có tin báo với mã này trong địa bàn của nhóm."
    # later than 5 days before the deadline
    clock.advance(days=15, minutes=1)
    latest = tip.settle_due_at - timedelta(days=5)
    assert await say(world, f"/extend {code} 10 muộn") == (
        f"Xin lỗi, không thể gia hạn tin báo {code} nữa: đề nghị gia hạn phải gửi chậm nhất 5 "
        f"ngày trước thời hạn giải quyết ({when(tip.settle_due_at)}), tức là trước "
        f"{when(latest)}.")
    clock.advance(days=-15, minutes=-1)
    # a closed tip
    await world.services.triage.act(tip.id or 0, _action("done"), Officer(1, "Cán bộ thử"),
                                    choice="admin")
    assert await say(world, f"/extend {code} 10 đã đóng") == (
        f"Tin báo {code} đã đóng nên thời hạn giải quyết không thay đổi nữa.")
    row = await tip_by_code(world, code)
    assert (row.settle_due_at, row.extended_at, row.extension_days) == (
        tip.settle_due_at, None, None)
    assert await deadline_events(world, tip) == []


def _action(name: str) -> Any:
    from bot.domain.status import Action
    return Action(name)


# --- transfer keeps the clock ------------------------------------------------------------------


async def test_a_transfer_keeps_the_receipt_time_and_deadlines(world: World) -> None:
    tip, _card = await taken_up(world)
    await say(world, f"/complex {tip.code} nhiều địa điểm")
    complex_due = add_months(tip.created_at, 2)
    other_officer = outsider_group_member(world)
    other_group = await other_commune_group(world, other_officer)
    target = await world.services.linking.where(chat_id=other_group)
    assert target is not None and target.commune is not None
    await world.services.triage.transfer(tip.id or 0, Officer(world.demo.officer.id, "Bình"),
                                         to_commune=target.commune.code)
    world.services.outbox.wake()
    [new_card] = await wait_card(world, other_group)
    origin_line = ("↪️ Chuyển từ Xã Phúc Khánh – thời hạn tính từ lúc nhận tin báo ban đầu "
                   f"{when(tip.created_at)}")
    lines = new_card["text"].splitlines()
    assert origin_line in lines
    assert f"🕒 Nhận lúc: {when(tip.created_at)} (giờ Việt Nam)" in lines
    assert f"⏳ Hạn tiếp nhận: {when(tip.ack_due_at)}" in lines
    assert f"⏳ Hạn giải quyết: {when(complex_due)} (vụ việc phức tạp: 2 tháng)" in lines
    moved = await tip_by_code(world, tip.code)
    assert moved.commune_code == target.commune.code and moved.transfers == 1
    assert (moved.created_at, moved.ack_due_at, moved.settle_due_at) == (
        tip.created_at, tip.ack_due_at, complex_due)
    assert moved.complex_at is not None
    # the line stays when the card is refreshed, and on a card posted again with /tip
    await until(lambda: world.services.triage.active_card(  # recorded once Telegram took it
        tip.id or 0, other_group, new_card["message_id"]))
    await world.press(other_officer, new_card, f"t:{tip.id}:ack")
    await card_shows(world, new_card, "Phụ trách: Khoa Đỗ Văn")
    assert origin_line in current(world, new_card)["text"].splitlines()
    reposted, _history = await world.exchange(other_officer, f"/tip {tip.code}",
                                              chat_id=other_group, replies=2)
    assert origin_line in reposted["text"].splitlines()
    # the extension counts from the deadline in force, not from the transfer
    extended = complex_due + timedelta(days=10)
    assert await say(world, f"/extend {tip.code} 10 chờ giám định", other_officer,
                     other_group) == (
        f"📅 Đã gia hạn tin báo {tip.code} thêm 10 ngày. Hạn giải quyết: {when(complex_due)} → "
        f"{when(extended)}.")


# --- acknowledgement windows: settings and categories.json -------------------------------------


async def test_acknowledgement_windows_from_settings_and_categories(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = json.loads(bot.domain.categories.CATEGORIES_FILE.read_text(encoding="utf-8"))
    for row in rows:
        if row["key"] == "drugs":
            row["ack_hours"] = 6
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(bot.domain.categories, "CATEGORIES_FILE", path)
    async with running_world(sandbox, database_url, tmp_path, ack_hours=12,
                             urgent_ack_hours=0.5) as world:
        resident = world.demo.residents[0]
        group = world.demo.commune_group.id
        windows = {}
        for category, urgent, text in [("drugs", False, "Bán ma túy ở chợ."),
                                       ("theft", False, "Mất trộm xe máy."),
                                       ("drugs", True, "Đang giao ma túy ở cổng trường.")]:
            before = len(world.sandbox.bot_messages(group))
            code = await send_tip(world, resident, category=category, urgent=urgent,
                                  text=text)
            card = (await wait_card(world, group, before + 1))[before]
            tip = await tip_by_code(world, code)
            windows[(category, urgent)] = tip.ack_due_at - tip.created_at
            assert f"⏳ Hạn tiếp nhận: {when(tip.ack_due_at)}" in card["text"]
            assert tip.settle_due_at - tip.created_at == timedelta(days=20)
    assert windows == {("drugs", False): timedelta(hours=6),
                       ("theft", False): timedelta(hours=12),
                       ("drugs", True): timedelta(minutes=30)}


async def test_two_officers_recording_at_once_change_the_deadline_once(world: World) -> None:
    tip, _card = await taken_up(world)
    triage = world.services.triage
    results = await asyncio.gather(
        triage.declare_complex(tip.id or 0, Officer(1, "Cán bộ A"), "lý do A"),
        triage.declare_complex(tip.id or 0, Officer(2, "Cán bộ B"), "lý do B"),
        triage.extend(tip.id or 0, Officer(3, "Cán bộ C"), 10, "lý do C"),
        triage.extend(tip.id or 0, Officer(4, "Cán bộ D"), 20, "lý do D"),
        return_exceptions=True,
    )
    # one of each wins; the other of each is refused for the right reason (never "conflict")
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, DeadlineRefusal) for r in refused), results
    assert sorted(r.reason for r in refused if isinstance(r, DeadlineRefusal)) == [
        "complex_already", "extended_already"]
    events = await deadline_events(world, tip)
    assert sorted(e.event for e in events) == ["complex", "extend"]
    row = await tip_by_code(world, tip.code)
    extension = timedelta(days=row.extension_days or 0)
    assert row.settle_due_at == add_months(tip.created_at, 2) + extension
    assert json.loads(events[-1].details or "")["new_due"] == row.settle_due_at.isoformat()


async def test_queue_marks_what_is_overdue_by_the_bots_clock(
    world: World, clock: MovableClock
) -> None:
    """/queue's "QUÁ HẠN" follows the shared definition (``deadlines.overdue``) at the bot's
    time: an urgent tip not taken up within its hour is marked, a normal one is not yet."""
    normal, _card = await delivered_tip(world, text="Tin thường")
    urgent, _card = await delivered_tip(world, text="Tin khẩn", urgent=True)
    lines = (await say(world, "/queue")).splitlines()
    assert not any("QUÁ HẠN" in line for line in lines)
    clock.advance(hours=2)
    lines = (await say(world, "/queue")).splitlines()
    [urgent_line] = [line for line in lines if urgent.code in line]
    [normal_line] = [line for line in lines if normal.code in line]
    assert urgent_line.endswith("⚠️ QUÁ HẠN") and "QUÁ HẠN" not in normal_line


async def test_complex_by_command_waits_for_the_take_up_like_the_button(world: World) -> None:
    tip, _card = await delivered_tip(world, text="Chưa ai nhận")
    reply = await say(world, f"/complex {tip.code} nhiều địa điểm")
    assert reply == (f"Xin lỗi, tin báo {tip.code} chưa được tiếp nhận: hãy bấm “Tiếp nhận” "
                     "trước, rồi mới ghi nhận vụ việc phức tạp.")
    assert await deadline_events(world, tip) == []
