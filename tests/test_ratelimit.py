"""Platform limits by design: with Telegram's limits on (sandbox defaults) and the bot's
default pacing, a burst to one person or one group is paced, not refused with 429."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Bot
from telegram.ext import ExtBot

from bot.ratelimit import TiplineRateLimiter
from bot.sandbox import BotApiSandbox


async def test_a_burst_to_one_private_chat_is_paced_not_refused() -> None:
    strict = BotApiSandbox()  # default limits: 5 messages per 5 s per private chat
    await strict.start()
    try:
        person = strict.create_user("Lan")
        await strict.send_text(person.id, "/start")
        bot = ExtBot(strict.token, base_url=strict.base_url, base_file_url=strict.base_file_url,
                     rate_limiter=TiplineRateLimiter(max_retries=0))
        async with bot:
            started = time.monotonic()
            await asyncio.gather(*(bot.send_message(person.id, f"#{i}") for i in range(7)))
            elapsed = time.monotonic() - started
        assert sorted(m["text"] for m in strict.bot_messages(person.id)) == [
            f"#{i}" for i in range(7)
        ]
        assert not [c for c in strict.method_calls("sendMessage") if not c["ok"]]
        assert elapsed >= 5.0  # 4 at once, the other 3 when the 5-second window frees up
    finally:
        await strict.stop()


async def test_without_pacing_the_sandbox_answers_429() -> None:
    strict = BotApiSandbox()
    await strict.start()
    try:
        person = strict.create_user("Minh")
        await strict.send_text(person.id, "/start")
        async with Bot(strict.token, base_url=strict.base_url) as bot:
            results = await asyncio.gather(
                *(bot.send_message(person.id, f"#{i}") for i in range(7)), return_exceptions=True
            )
        assert any(type(r).__name__ == "RetryAfter" for r in results)
    finally:
        await strict.stop()


async def test_idle_private_windows_are_forgotten_past_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broadcast writes once to each of 100,000 chats: the limiter keeps the windows of
    chats written to lately, not one per chat ever written to."""
    import bot.ratelimit as ratelimit

    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CHATS", 10)
    limiter = TiplineRateLimiter(private_burst=4, private_window_seconds=0.05)
    for chat_id in range(1, 10):
        await limiter._private_pacer(chat_id).acquire()
    busy = limiter._private_pacer(100)
    await busy.acquire()
    await asyncio.sleep(0.06)  # the first nine are idle now; 100 too
    await limiter._private_pacer(200).acquire()  # the 11th: the idle ones are dropped
    assert set(limiter._private_pacers) == {200}
