"""Every command with a message of 4,096 characters (Telegram's maximum): a short, polite
answer, never "Message is too long" and the generic apology."""

from __future__ import annotations

import pytest

from handlers import GROUP_COMMANDS, RESIDENT_COMMANDS
from tests.conftest import World

MAX_MESSAGE = 4096
APOLOGY = "Xin lỗi, đã có lỗi"
FILLERS = {
    "words": "phuc khanh lao cai ",  # matches communes: search must still answer briefly
    "one-word": "x",
    "lines": "7K3Q-9MXD\n",
}
EXTRA_PRIVATE = ["unsubscribe"]
EXTRA_GROUP = ["link", "unlink", "ban", "find", "where"]


def long_command(command: str, filler: str) -> str:
    head = f"/{command} "
    body = (filler * (MAX_MESSAGE // len(filler) + 1))[: MAX_MESSAGE - len(head)].strip()
    return head + body


@pytest.mark.parametrize("filler", list(FILLERS.values()), ids=list(FILLERS))
async def test_every_command_with_a_4096_character_message(world: World, filler: str) -> None:
    resident = world.demo.residents[0]
    private = [name for name, _text in RESIDENT_COMMANDS] + EXTRA_PRIVATE
    group_commands = sorted({name for name, _text in GROUP_COMMANDS} | set(EXTRA_GROUP))
    # the officer's in the commune group, the admin's in the province group: one group gets
    # at most 20 messages a minute from a bot
    places = [(resident, None, name) for name in private] + [
        (person, group, name)
        for person, group in ((world.demo.officer, world.demo.commune_group.id),
                              (world.demo.admin, world.demo.province_group.id))
        for name in group_commands
    ]
    ops = world.demo.ops_group.id
    ops_before = len(world.sandbox.bot_messages(ops))
    for person, chat_id, name in places:
        text = long_command(name, filler)
        assert len(text) <= MAX_MESSAGE
        chat = person.id if chat_id is None else chat_id
        before = len(world.sandbox.bot_messages(chat))
        await world.sandbox.send_text(person.id, text, chat_id=chat_id)
        await world.sandbox.wait_for_bot_messages(chat, before + 1)
        await world.sandbox.wait_idle()
        replies = world.sandbox.bot_messages(chat)[before:]
        for reply in replies:
            shown = reply.get("text") or ""
            assert not shown.startswith(APOLOGY), f"/{name}: {shown[:80]}"
            assert len(shown) <= 1500, f"/{name} echoed the input back ({len(shown)} chars)"
        if name in ("new", "start"):  # both may open a draft: leave it for the next command
            await world.sandbox.send_text(person.id, "/cancel", chat_id=chat_id)
            await world.sandbox.wait_idle()
    assert world.sandbox.bot_messages(ops)[ops_before:] == []  # no error alert
    failed = [c for c in world.sandbox.method_calls() if not c["ok"]]
    assert failed == [], failed[:3]
