"""When a handler fails, the admins' ops chat is alerted in Vietnamese (through the
catalogue), with ids only, and the person who wrote gets one polite sentence."""

from __future__ import annotations

import re

import pytest

from bot.domain.triage import TriageService
from tests.conftest import World


async def test_a_failing_handler_alerts_the_ops_chat_in_vietnamese(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: TriageService, chat_id: int) -> list[object]:
        raise RuntimeError("queue unavailable")

    monkeypatch.setattr(TriageService, "queue", broken)
    ops = world.demo.ops_group.id
    before = len(world.sandbox.bot_messages(ops))
    [apology] = await world.exchange(world.demo.officer, "/queue",
                                     chat_id=world.demo.commune_group.id)
    assert "113" in apology["text"]
    [alert] = (await world.sandbox.wait_for_bot_messages(ops, before + 1))[before:]
    assert re.fullmatch(r"⚠️ Lỗi xử lý cập nhật \d+: RuntimeError", alert["text"])
