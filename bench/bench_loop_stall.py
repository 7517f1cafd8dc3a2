"""How long SQLite blob writes hold up the event loop: 40 commits of a ~700 KB photo.

Plain script (not a test):

    .venv/bin/python bench/bench_loop_stall.py [--commits 40] [--size 700000] [--runs 5]
                                               [--durable] [--threads]

A fresh SQLite file, migrated; one draft; then ``--commits`` write transactions, one after
the other, each inserting one ``Photo`` row with ``--size`` random (incompressible, like a
JPEG) bytes through ``Database.transaction()`` (``--durable``: ``transaction(durable=True)``,
``synchronous=FULL``). WAL checkpoints happen on their own (SQLite's auto-checkpoint at 1000
pages, i.e. every ~6 commits of this size), in the committing connection, as in the bot.

Meanwhile a ticker task sleeps 1 ms at a time and records how late it wakes up: the
event-loop lag a resident's update would see. Printed per run: worst and median lag, and
the wall time of the 40 commits. ``--threads`` passes ``sqlite_threads=True`` to
``Database`` for code versions that still had the inline SQLite driver (before 2026-12-02).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import migrate
from storage.db import Database
from storage.models import Draft, Photo


async def one_run(commits: int, size: int, durable: bool, threads: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/stall.db"
        options = {}
        if threads and "sqlite_threads" in inspect.signature(Database).parameters:
            options["sqlite_threads"] = True
        db = Database(url, **options)
        try:
            await migrate.upgrade(db)
            async with db.transaction() as session:
                draft = Draft(pseudonym="bench", step="photos")
                session.add(draft)
                await session.flush()
                draft_id = draft.id
            loop = asyncio.get_running_loop()
            lags: list[float] = []
            stop = False

            async def ticker() -> None:
                while not stop:
                    start = loop.time()
                    await asyncio.sleep(0.001)
                    lags.append(max(0.0, loop.time() - start - 0.001))

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)
            lags.clear()
            began = time.perf_counter()
            data = os.urandom(size)  # one blob, made before the clock starts
            for position in range(commits):
                async with db.transaction(durable=durable) as session:
                    session.add(Photo(draft_id=draft_id, position=position, data=data,
                                      width=1280, height=960))
            wall = time.perf_counter() - began
            stop = True
            await ticking
        finally:
            await db.close()
    return {
        "worst_ms": max(lags) * 1000,
        "median_ms": statistics.median(lags) * 1000,
        "p99_ms": statistics.quantiles(lags, n=100, method="inclusive")[98] * 1000,
        "ticks": len(lags),
        "wall_ms": wall * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=40)
    parser.add_argument("--size", type=int, default=700_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--durable", action="store_true")
    parser.add_argument("--threads", action="store_true")
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        result = asyncio.run(one_run(args.commits, args.size, args.durable, args.threads))
        results.append(result)
        print(f"run {run + 1}: loop lag worst {result['worst_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.2f} ms, median {result['median_ms']:.3f} ms "
              f"({result['ticks']} ticks); {args.commits} commits in "
              f"{result['wall_ms']:.0f} ms", flush=True)
    print("medians over runs: worst {:.1f} ms, p99 {:.2f} ms, median {:.3f} ms, "
          "wall {:.0f} ms".format(
              *(statistics.median(r[key] for r in results)
                for key in ("worst_ms", "p99_ms", "median_ms", "wall_ms"))))


if __name__ == "__main__":
    main()
