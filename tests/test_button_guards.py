"""Every family of buttons, pressed where it does not belong (by a modified client that
forges callback data): refused with one short sentence, nothing else changes.

Families: resident (``lang:``, ``d:``, ``m:``) and police (``t:``); places: the resident's own
private chat, a tip card in a linked police group, a bot message in an unlinked group, and
another resident's private prompt."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlmodel import select

from bot.context import TELEGRAM
from bot.domain.intake import Step
from storage.models import Resident
from tests.conftest import World
from tests.test_intake_bot import buttons, write_tip
from tests.test_triage_bot import current, delivered_tip, events_of, status_of

REFUSALS = {"Nút này không còn hiệu lực.", "This button is no longer valid."}
RESIDENT_DATA = ["lang:en", "d:x", "d:ok", "d:done", "d:k:drugs", "d:u:1", "d:cc", "m:new",
                 "m:look", "m:sub", "m:lang"]


def all_messages(world: World) -> dict[int, int]:
    chats = [world.demo.commune_group.id, world.demo.province_group.id, world.demo.ops_group.id,
             *(r.id for r in world.demo.residents)]
    return {chat: len(world.sandbox.transcript(chat)) for chat in chats}


async def press_forged(
    world: World, presser_id: int, message: dict[str, Any], data: str
) -> dict[str, Any]:
    presser = world.sandbox.user(presser_id)
    before_messages = all_messages(world)
    before_view = copy.deepcopy(current(world, message))
    answer = await world.press(presser, message, data, check=False)
    await world.sandbox.wait_idle()
    assert answer.get("show_alert") is True and answer.get("text") in REFUSALS, (data, answer)
    assert all_messages(world) == before_messages, f"{data}: a message was sent"
    after = current(world, message)
    assert (after["text"], after.get("reply_markup")) == (
        before_view["text"], before_view.get("reply_markup")), f"{data}: the message changed"
    return answer


async def resident_state(world: World, resident_id: int) -> tuple[Any, ...]:
    pseudonym = world.services.pseudonyms.resident(TELEGRAM, resident_id)
    view = await world.services.intake.current(pseudonym)
    async with world.services.db.session() as session:
        row = (await session.exec(select(Resident).where(Resident.pseudonym == pseudonym))).first()
    return (
        view and (view.step, view.category, view.urgent, view.description),
        row and (row.language, row.subscribed),
    )


async def test_resident_and_police_buttons_on_a_police_card_are_refused_and_audited(
    world: World,
) -> None:
    tip, card = await delivered_tip(world)
    officer = world.demo.officer
    resident = world.demo.residents[1]
    before_events = await events_of(world, tip)
    before_officer = await resident_state(world, officer.id)
    for data in RESIDENT_DATA:
        await press_forged(world, officer.id, card, data)
        await press_forged(world, resident.id, card, data)
    # a police button the card does not carry (done straight from "new")
    await press_forged(world, officer.id, card, f"t:{tip.id}:done:solved")
    assert await status_of(world, tip) == "new"
    assert await resident_state(world, officer.id) == before_officer
    added = (await events_of(world, tip))[len(before_events):]
    # audited once per person and tip a minute: two pressers, two events, however many presses
    assert added == ["refused", "refused"]
    # the card still works for the officer
    answer = await world.press(officer, card, f"t:{tip.id}:ack")
    assert "Xong" in answer["text"]


async def test_buttons_in_an_unlinked_group_are_refused(world: World) -> None:
    officer = world.demo.officer
    group = world.sandbox.create_group("Nhóm chưa liên kết", members=[officer.id],
                                       chat_id=-5000004000)
    await world.sandbox.send_text(officer.id, "/help", chat_id=group.id)
    [help_reply] = await world.sandbox.wait_for_bot_messages(group.id, 1)
    tip, _card = await delivered_tip(world)
    for data in [*RESIDENT_DATA, f"t:{tip.id}:ack"]:
        await press_forged(world, officer.id, help_reply, data)
    assert await status_of(world, tip) == "new"


async def test_police_buttons_in_a_private_chat_are_refused(world: World) -> None:
    resident = world.demo.residents[0]
    tip, _card = await delivered_tip(world, resident)
    prompt = await write_tip(world, resident)
    for data in [f"t:{tip.id}:ack", f"t:{tip.id}:invalid", f"t:{tip.id}:xc:2998"]:
        await press_forged(world, resident.id, prompt, data)
    assert await status_of(world, tip) == "new"


async def test_another_residents_prompt_cannot_be_pressed(world: World) -> None:
    owner, other = world.demo.residents
    prompt = await write_tip(world, owner)
    assert buttons(prompt) == ["d:done", "d:x"]
    before = await resident_state(world, owner.id), await resident_state(world, other.id)
    for data in ["d:done", "d:x", "lang:en", "m:new"]:
        await press_forged(world, other.id, prompt, data)
    assert (await resident_state(world, owner.id), await resident_state(world, other.id)) == before
    view = await world.services.intake.current(
        world.services.pseudonyms.resident(TELEGRAM, owner.id))
    assert view is not None and view.step == Step.ATTACHMENTS


@pytest.mark.parametrize("data", ["d:done", "lang:en", "m:new", "d:k:drugs"])
async def test_own_prompt_with_data_it_does_not_carry_is_refused(world: World, data: str) -> None:
    resident = world.demo.residents[0]
    prompt = await write_tip(world, resident)
    carried = buttons(prompt)
    if data in carried:  # the real button works (positive control)
        return
    await press_forged(world, resident.id, prompt, data)


async def test_resident_buttons_still_work_where_they_belong(world: World) -> None:
    resident = world.demo.residents[0]
    [picker] = await world.exchange(resident, "/language")
    await world.press(resident, picker, "lang:en")
    await world.sandbox.wait_idle()
    assert current(world, picker)["text"] == "Language set to English."
    [menu] = await world.exchange(resident, "/start")
    before = len(world.sandbox.bot_messages(resident.id))
    await world.press(resident, menu, "m:look")
    await world.sandbox.wait_for_bot_messages(resident.id, before + 1)


async def test_no_resident_keyboard_ever_reaches_a_group(world: World) -> None:
    """After the whole matrix above (a card, forged presses), scan every group message."""
    _tip, card = await delivered_tip(world)
    for data in RESIDENT_DATA:
        await press_forged(world, world.demo.officer.id, card, data)
    for group in (world.demo.commune_group, world.demo.province_group, world.demo.ops_group):
        for message in world.sandbox.transcript(group.id):
            for data in buttons(message):
                assert data is None or data.startswith("t:"), (group.title, data)
