"""The bot's one send budget (bot/domain/sendbudget.py): at most ``limit`` sends live in any
window, the bot's own sends ahead of bulk ones, bulk ones within their cap."""

from __future__ import annotations

import asyncio
import time

from bot.domain.sendbudget import SendBudget, Slot


async def test_a_slot_frees_a_window_after_its_answer_not_after_it_was_taken() -> None:
    budget = SendBudget(2, window=0.2)
    started = time.monotonic()
    first, second = await budget.acquire(), await budget.acquire()
    await asyncio.sleep(0.1)
    first.release()  # answered 0.1 s after it was taken: free again at 0.3 s
    third = await budget.acquire()
    assert 0.28 <= time.monotonic() - started < 0.4
    second.release()
    third.release()


async def test_the_others_go_ahead_of_bulk_waiters() -> None:
    """The window is full of a broadcast's slots; a broadcast sender and then a reply wait:
    the reply takes the first slot that frees up, the broadcast the next one."""
    budget = SendBudget(3, window=0.15)
    for _ in range(3):
        (await budget.acquire(bulk=True)).release()
    order: list[str] = []

    async def take(name: str, *, bulk: bool) -> Slot:
        slot = await budget.acquire(bulk=bulk)
        order.append(name)
        return slot

    bulk = asyncio.create_task(take("broadcast", bulk=True))
    await asyncio.sleep(0.01)  # the broadcast was waiting first
    other = asyncio.create_task(take("reply", bulk=False))
    slots = await asyncio.gather(bulk, other)
    assert order == ["reply", "broadcast"]
    for slot in slots:
        slot.release()


async def test_bulk_slots_stay_within_their_cap_the_rest_is_for_the_others() -> None:
    budget = SendBudget(30, window=0.2)
    held = [await budget.acquire(bulk=True, cap=20) for _ in range(20)]
    waiting = asyncio.create_task(budget.acquire(bulk=True, cap=20))
    others = [await budget.acquire() for _ in range(10)]  # the 10 the cap leaves
    await asyncio.sleep(0.05)
    assert not waiting.done() and budget.live() == (30, 20)
    for slot in held + others:
        slot.release()
    late = await waiting  # a window after the answers
    assert budget.live() == (1, 1)
    late.release()


async def test_a_held_slot_serves_one_request_in_its_own_task() -> None:
    budget, other = SendBudget(5), SendBudget(5)
    slot = await budget.acquire(bulk=True)
    assert budget.take_held() is None  # nothing held outside ``holding``
    with budget.holding(slot):
        assert other.take_held() is None  # held for its own budget only
        assert await asyncio.create_task(_take_held(budget)) is slot  # tasks copy it
        assert budget.take_held() is None  # used once: a retry takes a slot of its own
    assert budget.take_held() is None
    slot.release()


async def _take_held(budget: SendBudget) -> Slot | None:
    return budget.take_held()
