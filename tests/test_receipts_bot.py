"""The receipt end to end: once a tip is committed the resident gets its code, even when
Telegram refuses the receipt the first time, and is never told to try again."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import col, select

from bot.sandbox import SandboxUser
from storage.models import OutboxMessage, Tip
from tests.conftest import World
from tests.test_intake_bot import buttons, press_and_wait, wait_card, write_tip

APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố"  # handlers/errors.py, in Vietnamese
RECEIVED = "✅ Đã nhận tin báo của bạn. Mã tra cứu: "
MERGED = "Bạn vừa gửi một tin báo giống hệt"


async def review(world: World, user: SandboxUser) -> dict[str, Any]:
    prompt = await write_tip(world, user)
    [screen] = await press_and_wait(world, user, prompt, "d:done")
    assert buttons(screen) == ["d:ok", "d:x"]
    return screen


def codes_in(message: dict[str, Any]) -> list[str]:
    return [message["text"][e["offset"]:e["offset"] + e["length"]]
            for e in message.get("entities", []) if e["type"] == "code"]


async def outbox_rows(world: World) -> list[OutboxMessage]:
    async with world.services.db.session() as session:
        return list((await session.exec(
            select(OutboxMessage).order_by(col(OutboxMessage.id))
        )).all())


async def until(condition: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def settled(world: World) -> bool:
    return all(row.status != "pending" for row in await outbox_rows(world))


async def test_a_502_on_the_receipt_still_brings_the_code_and_no_apology(world: World) -> None:
    resident = world.demo.residents[0]
    group = world.demo.commune_group.id
    screen = await review(world, resident)
    world.sandbox.inject_errors("sendMessage", [(502, "Bad Gateway")], chat_id=resident.id)
    before = len(world.sandbox.bot_messages(resident.id))
    await world.press(resident, screen, "d:ok")
    # the committed tip's receipt comes through the outbox instead
    messages = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1, 10))[before:]
    await until(lambda: settled(world))
    await asyncio.sleep(0.3)  # anything else the handler or the outbox might still send
    messages = world.sandbox.bot_messages(resident.id)[before:]
    async with world.services.db.session() as session:
        tip = (await session.exec(select(Tip))).one()
    assert [m["text"].split(tip.code)[0] for m in messages] == [RECEIVED]
    assert codes_in(messages[0])[0] == tip.code
    assert not any(APOLOGY in m["text"] for m in world.sandbox.bot_messages(resident.id))
    refused = [c for c in world.sandbox.method_calls("sendMessage")
               if not c["ok"] and str(c["params"].get("chat_id")) == str(resident.id)]
    assert [c["error_code"] for c in refused] == [502]
    [card] = await wait_card(world, group)
    assert tip.code in card["text"] and "Gửi lại" not in card["text"]
    await asyncio.sleep(0.3)
    assert len(world.sandbox.bot_messages(group)) == 1
    rows = {row.kind: row for row in await outbox_rows(world)}
    assert (rows["receipt"].status, rows["receipt"].attempts) == ("sent", 1)  # by the outbox


async def test_a_receipt_given_at_once_closes_its_safety_net(world: World) -> None:
    resident = world.demo.residents[0]
    screen = await review(world, resident)
    [receipt] = await press_and_wait(world, resident, screen, "d:ok")
    assert receipt["text"].startswith(RECEIVED)
    await until(lambda: settled(world))
    rows = {row.kind: row for row in await outbox_rows(world)}
    # marked sent by the confirm handler: the outbox never took it (no second receipt later)
    assert (rows["receipt"].status, rows["receipt"].attempts) == ("sent", 0)
    assert rows["tip_card"].status == "sent"


async def test_a_merged_duplicate_keeps_one_tip_one_card_and_gets_its_answer(
    world: World,
) -> None:
    resident = world.demo.residents[0]
    group = world.demo.commune_group.id
    [receipt] = await press_and_wait(world, resident, await review(world, resident), "d:ok")
    code = codes_in(receipt)[0]
    await wait_card(world, group)
    await until(lambda: settled(world))

    # the same tip again, and this time Telegram fails the answer once
    screen = await review(world, resident)
    world.sandbox.inject_errors("sendMessage", [(502, "Bad Gateway")], chat_id=resident.id)
    before = len(world.sandbox.bot_messages(resident.id))
    await world.press(resident, screen, "d:ok")
    [merged] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1, 10))[before:]
    assert merged["text"].startswith(MERGED) and codes_in(merged) == [code]
    await until(lambda: settled(world))
    await asyncio.sleep(0.3)
    assert len(world.sandbox.bot_messages(resident.id)) == before + 1
    assert not any(APOLOGY in m["text"] for m in world.sandbox.bot_messages(resident.id))
    assert len(world.sandbox.bot_messages(group)) == 1
    async with world.services.db.session() as session:
        assert len((await session.exec(select(Tip))).all()) == 1
    rows = [(row.kind, row.status, row.attempts) for row in await outbox_rows(world)]
    assert rows == [
        ("tip_card", "sent", 1),
        ("receipt", "sent", 0),  # the first confirm's receipt, given at once
        ("receipt", "sent", 1),  # the merged answer, sent by the outbox after the 502
    ]
