"""Platform limits by design: with Telegram's limits on (sandbox defaults) and the bot's
default pacing, a burst to one person or one group is paced, not refused with 429."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
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
        (await limiter._private_pacer(chat_id).acquire()).release()  # sent and answered
    busy = limiter._private_pacer(100)
    (await busy.acquire()).release()
    await asyncio.sleep(0.06)  # the first nine are idle now; 100 too
    await limiter._private_pacer(200).acquire()  # the 11th: the idle ones are dropped
    assert set(limiter._private_pacers) == {200}


async def test_steady_30_a_second_then_a_burst_stays_within_30_in_any_second() -> None:
    """A leaky bucket lets a burst of 30 through on top of a steady 30/s (Telegram: 429);
    the send budget counts any 1 s as the server does: nothing refused, never more than
    30 within a second (an edit among the burst waits its turn too)."""
    strict = BotApiSandbox()  # default limits: 30/s overall
    await strict.start()
    try:
        people = [strict.create_user(f"P{i}") for i in range(61)]
        for person in people:
            await strict.send_text(person.id, "/start")
        limiter = TiplineRateLimiter(max_retries=0)
        bot = ExtBot(strict.token, base_url=strict.base_url, base_file_url=strict.base_file_url,
                     rate_limiter=limiter)
        async with bot:
            first = await bot.send_message(people[60].id, "0")
            for person in people[:30]:  # the steady 30/s
                await bot.send_message(person.id, "1")
                await asyncio.sleep(1 / 30)
            started = time.monotonic()
            await asyncio.gather(*(bot.send_message(p.id, "2") for p in people[30:60]),
                                 bot.edit_message_text("0 (sửa)", people[60].id,
                                                       first.message_id))
            elapsed = time.monotonic() - started
        flood = strict.flood_counts()
        assert (flood.sent, flood.refused) == (61, 0)
        assert flood.busiest_second <= 30
        assert not [c for c in strict.method_calls() if not c["ok"]]
        assert elapsed >= 0.5  # the burst waited for the window to free up
    finally:
        await strict.stop()


async def test_a_send_holding_a_bulk_slot_is_counted_on_it_once() -> None:
    """The broadcast engine takes its slot first and sends through the same limiter: the
    request goes out on that slot (not a second one). Other messages and edits take a slot
    each; a call that is not a message does not."""
    box = BotApiSandbox()
    await box.start()
    try:
        people = [box.create_user(f"Q{i}") for i in range(2)]
        for person in people:
            await box.send_text(person.id, "/start")
        limiter = TiplineRateLimiter(max_retries=0)
        budget = limiter.budget
        assert budget is not None
        bot = ExtBot(box.token, base_url=box.base_url, base_file_url=box.base_file_url,
                     rate_limiter=limiter)
        async with bot:
            slot = await budget.acquire(bulk=True)
            with budget.holding(slot):
                await bot.send_message(people[0].id, "thông báo")
            assert slot.answered_at is not None  # released once answered
            assert budget.live() == (1, 1)
            reply = await bot.send_message(people[1].id, "trả lời")
            assert budget.live() == (2, 1)
            await bot.edit_message_text("trả lời (sửa)", people[1].id, reply.message_id)
            assert budget.live() == (3, 1)
            await bot.get_chat(people[1].id)  # not a message: not counted
            assert budget.live() == (3, 1)
    finally:
        await box.stop()


async def test_answers_to_button_presses_do_not_wait_for_the_budget() -> None:
    """A burst of cards may fill the second's 30 sends; the answer to a resident's button
    press still goes at once (it posts nothing, and a late one leaves the button spinning),
    while a message waits for a free slot."""
    box = BotApiSandbox()
    await box.start()
    try:
        person = box.create_user("R")
        await box.send_text(person.id, "/start")
        limiter = TiplineRateLimiter(max_retries=0)
        budget = limiter.budget
        assert budget is not None
        bot = ExtBot(box.token, base_url=box.base_url, base_file_url=box.base_file_url,
                     rate_limiter=limiter)
        async with bot:
            await bot.get_updates()
            question = await bot.send_message(person.id, "chọn", reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("A", callback_data="a")]]))
            await box.press_button(person.id, person.id, question.message_id, "a")
            [*_, pressed] = await bot.get_updates()
            assert pressed.callback_query is not None
            await asyncio.sleep(budget.window + 0.05)  # the question's slot has freed
            held = [await budget.acquire() for _ in range(budget.limit)]  # all 30, kept
            assert await asyncio.wait_for(
                bot.answer_callback_query(pressed.callback_query.id), timeout=0.5)
            message = asyncio.create_task(bot.send_message(person.id, "trả lời"))
            await asyncio.sleep(0.3)
            assert not message.done()  # the second's 30 are taken
            for slot in held:
                slot.release()
            await asyncio.wait_for(message, timeout=3)
    finally:
        await box.stop()


async def test_a_private_chats_window_counts_each_send_until_after_its_answer() -> None:
    """Telegram counts a send when it arrives, which is after the bot lets it go: a window
    counted from the bot's side only (a slow network, a loaded machine bunching requests)
    could put more than the limit into one window of the server's. Each send is counted
    until a window's length after its answer: 2 per 0.5 s, answers taking 0.3 s, so the
    third send starts only at 0.8 s (not 0.5 s)."""
    limiter = TiplineRateLimiter(private_burst=2, private_window_seconds=0.5, max_retries=0)
    started: list[float] = []

    async def slow_send(*_args: object, **_kwargs: object) -> dict[str, int]:
        started.append(time.monotonic())
        await asyncio.sleep(0.3)
        return {"message_id": len(started)}

    t0 = time.monotonic()
    await asyncio.gather(*(
        limiter.process_request(slow_send, (), {}, "sendMessage", {"chat_id": 5}, None)
        for _ in range(3)))
    offsets = [round(t - t0, 2) for t in started]
    assert offsets[0] < 0.1 and offsets[1] < 0.1
    assert offsets[2] >= 0.79, offsets
