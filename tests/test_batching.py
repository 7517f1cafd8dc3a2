"""Group commit: concurrent callers share one batch, each gets their own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.domain.batching import GroupCommit


async def test_callers_arriving_together_share_a_batch_and_keep_their_answers() -> None:
    seen: list[list[int]] = []

    async def square_or_refuse(items: Sequence[int]) -> list[int | BaseException]:
        seen.append(list(items))
        await asyncio.sleep(0.01)
        return [ValueError(f"odd {n}") if n % 2 else n * n for n in items]

    group: GroupCommit[int, int] = GroupCommit(square_or_refuse)
    results = await asyncio.gather(*(group.run(n) for n in range(10)), return_exceptions=True)
    assert results[0::2] == [0, 4, 16, 36, 64]
    assert [str(r) for r in results[1::2]] == [f"odd {n}" for n in (1, 3, 5, 7, 9)]
    assert seen == [list(range(10))]  # one batch, in arrival order
    # arrivals during a running batch form the next one
    first = asyncio.ensure_future(group.run(2))
    await asyncio.sleep(0.002)
    later = [asyncio.ensure_future(group.run(n)) for n in (4, 6)]
    assert [await first, *[await f for f in later]] == [4, 16, 36]
    assert seen[1:] == [[2], [4, 6]]


async def test_a_failing_batch_fails_its_callers_only_and_the_next_batch_runs() -> None:
    calls = 0

    async def flaky(items: Sequence[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is down")
        return [item.upper() for item in items]

    group: GroupCommit[str, str] = GroupCommit(flaky)
    with pytest.raises(RuntimeError, match="database is down"):
        await group.run("a")
    assert await group.run("b") == "B"


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    done: list[Sequence[str]] = []

    async def slow(items: Sequence[str]) -> list[str | BaseException]:
        await asyncio.sleep(0.05)
        done.append(items)
        return list(items)

    group: GroupCommit[str, str] = GroupCommit(slow)
    impatient = asyncio.ensure_future(group.run("x"))
    patient = asyncio.ensure_future(group.run("y"))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == "y"
    assert done == [["x", "y"]]  # the batch went through, "x" included (committed, untold)
