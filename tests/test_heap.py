"""The bot's entry point leaves the garbage collector settled for a long run (bot/heap.py):
start-up objects frozen out of later collections, a larger young generation; garbage made
afterwards is still collected. Run in a child process: freezing is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SANDBOX_RUN = """
import asyncio, gc, json, sys, weakref
from bot.sandbox_mode import run_sandbox
from bot.settings import load_settings

before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}

async def main():
    stop = asyncio.Event()
    seen = {}

    async def watch():
        for _ in range(1200):  # until the sandbox has started (at most 60 s)
            if gc.get_freeze_count():
                break
            await asyncio.sleep(0.05)
        seen["frozen"], seen["threshold"] = gc.get_freeze_count(), gc.get_threshold()

        class Node:
            pass

        cycle = Node()
        cycle.self = cycle  # garbage only the cyclic collector can free
        freed = []
        weakref.finalize(cycle, freed.append, True)
        del cycle
        gc.collect()
        seen["cycle_freed"] = freed == [True]
        stop.set()

    watcher = asyncio.create_task(watch())
    await run_sandbox(load_settings(), stop, port=0, rate_limits=True)
    await watcher
    print(json.dumps({"before": before, "after": seen}))

asyncio.run(main())
"""


def test_the_sandbox_entry_point_settles_the_collector_once_started(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "TIPLINE_DATA_DIR": str(tmp_path), "TIPLINE_WEB_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-c", SANDBOX_RUN], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == {"frozen": 0, "threshold": [700, 10, 10]}
    # the commune directory, PTB, SQLAlchemy... are out of the collector's walks
    assert seen["after"]["frozen"] > 100_000
    assert seen["after"]["threshold"] == [10_000, 10, 10]
    assert seen["after"]["cycle_freed"] is True
