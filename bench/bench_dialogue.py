"""Benchmark the whole resident dialogue: the bot's CPU per update, not only the confirm.

Plain script (not a test):

    .venv/bin/python bench/bench_dialogue.py [--residents 200] [--parallel 10] [--runs 3]

Each resident, through the local Bot API sandbox over HTTP, does what a person does with the
QR poster: ``/start c<code>`` (deep link) -> category button -> urgency button -> the text ->
"done" button -> review -> "send" button (6 updates), and waits for the bot's reply to each
step before the next (the receipt after the last). ``--parallel`` residents are in their
dialogue at once.

Method (the same two processes as bench_intake.py, like production where Telegram is not on
our machine): the bot (``TiplineRuntime``, fresh SQLite file, long polling) runs in this
process; the sandbox and the residents run in a spawned child process. The bot's CPU is
``time.process_time()`` of this process over the measured phase (all its threads: event loop,
aiosqlite connection threads, executors), so the sandbox's share is not in it; it includes
everything the bot does for these residents in that time, the outbox sending the cards to
the police groups too. The phase ends when every resident has their receipt, every card is
in its group and the sandbox is idle. ``loop_thread`` is the event-loop thread alone (from
/proc). A warm-up of ``--warmup`` residents is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_intake import (  # the shared machinery of the intake benchmark
    CARD_MARK,
    CODE_RE,
    TEXTS,
    log,
    machine,
    pick_communes,
    police_groups,
    recv,
    start_bot,
    thread_cpu,
)

FIRST_RESIDENT_ID = 7_400_000_001
UPDATES_PER_DIALOGUE = 6  # /start, category, urgency, text, done, send


def _telegram_process(conn: Connection, setup: dict[str, Any]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_telegram_main(conn, setup))


def _buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


async def _telegram_main(conn: Connection, setup: dict[str, Any]) -> None:
    from bot.sandbox import BotApiSandbox, RateLimits

    sandbox = BotApiSandbox(limits=RateLimits(enabled=False))
    await sandbox.start()
    world = sandbox.world
    admin, groups = police_groups(sandbox, setup["communes"])
    group_ids = {chat_id for chat_id, _ in groups}
    residents = [sandbox.create_user(f"Dân {i}", user_id=FIRST_RESIDENT_ID + i).id
                 for i in range(setup["residents"])]
    cards: set[str] = set()
    original_store = world.store_message

    def store_and_note(state: Any, sender: Any, content: Any, **kwargs: Any) -> Any:
        stored = original_store(state, sender, content, **kwargs)
        if stored.from_bot and state.chat.id in group_ids:
            text = stored.data.get("text") or stored.data.get("caption") or ""
            found = CODE_RE.search(text)
            if found and CARD_MARK in text:
                cards.add(found.group(1))
        return stored

    world.store_message = store_and_note  # type: ignore[method-assign]
    conn.send({"url": sandbox.url, "token": sandbox.token, "admin": admin.id, "groups": groups,
               "residents": residents})

    async def step(user_id: int, action: Any) -> dict[str, Any]:
        before = len(sandbox.bot_messages(user_id))
        await action
        return (await sandbox.wait_for_bot_messages(user_id, before + 1, timeout=60))[-1]

    async def dialogue(index: int, user_id: int, commune: int) -> str:
        prompt = await step(user_id, sandbox.send_text(user_id, f"/start c{commune}"))
        category = next(b for b in _buttons(prompt) if b.startswith("d:k:"))
        prompt = await step(user_id, sandbox.press_button(
            user_id, user_id, prompt["message_id"], category))
        prompt = await step(user_id, sandbox.press_button(
            user_id, user_id, prompt["message_id"], "d:u:1" if index % 10 == 0 else "d:u:0"))
        prompt = await step(user_id, sandbox.send_text(
            user_id, f"{TEXTS[index % len(TEXTS)]} (#{index})"))
        assert "d:done" in _buttons(prompt), prompt.get("text")
        review = await step(user_id, sandbox.press_button(
            user_id, user_id, prompt["message_id"], "d:done"))
        assert "d:ok" in _buttons(review), review.get("text")
        receipt = await step(user_id, sandbox.press_button(
            user_id, user_id, review["message_id"], "d:ok"))
        found = CODE_RE.search(receipt.get("text") or "")
        assert found and "✅" in receipt["text"], receipt.get("text")
        return found.group(1)

    try:
        while True:
            order = await recv(conn)
            if order["kind"] == "stop":
                break
            batch: list[int] = order["residents"]
            gate = asyncio.Semaphore(order["parallel"])
            started = time.perf_counter()
            cpu0 = time.process_time()

            async def one(index: int, user_id: int, gate: asyncio.Semaphore = gate) -> str:
                async with gate:
                    return await dialogue(index, user_id, groups[index % len(groups)][1])

            codes = await asyncio.gather(*(one(order["first"] + i, u)
                                           for i, u in enumerate(batch)))
            wanted = set(codes)
            await world.activity.wait_until(lambda w=wanted: w <= cards, 60)
            await sandbox.wait_idle(timeout=60, settle=0.3)
            conn.send({"n": len(batch), "cards": len(set(codes) & cards),
                       "wall": time.perf_counter() - started,
                       "telegram_cpu": time.process_time() - cpu0})
    finally:
        await sandbox.stop()


async def run_once(args: argparse.Namespace, run_no: int) -> dict[str, Any]:

    communes = pick_communes(args.communes)
    total = args.warmup + args.residents
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_telegram_process, name="bench-telegram", daemon=True,
                            args=(child_end, {"communes": communes, "residents": total}))
    child.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dialogue-"))
    runtime = None
    try:
        world = await recv(parent_end)
        runtime = await start_bot(world, tmp, telegram_limits=False)
        if args.gc == "settled":  # as `python -m bot` does once started (bot/heap.py)
            from bot.heap import settle_after_start

            settle_after_start()
        services = runtime.services
        assert services is not None
        residents: list[int] = world["residents"]
        parent_end.send({"kind": "run", "residents": residents[:args.warmup], "first": 0,
                         "parallel": args.parallel})
        await recv(parent_end)
        profile = cProfile.Profile() if args.cprofile else None
        if profile is not None:
            profile.enable()
        cpu0, wall0, threads0 = time.process_time(), time.perf_counter(), thread_cpu()
        parent_end.send({"kind": "run", "residents": residents[args.warmup:],
                         "first": args.warmup, "parallel": args.parallel})
        result = await recv(parent_end)
        cpu, wall, threads1 = time.process_time() - cpu0, time.perf_counter() - wall0, thread_cpu()
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.cprofile)
        updates = result["n"] * UPDATES_PER_DIALOGUE
        figures = {
            "run": run_no, "residents": result["n"], "cards": result["cards"],
            "updates": updates,
            "bot_cpu_ms_per_update": round(cpu / updates * 1000, 2),
            "bot_cpu_ms_per_tip": round(cpu / result["n"] * 1000, 1),
            "loop_thread_cpu_ms_per_update": round(
                (threads1[0] - threads0[0]) / updates * 1000, 2),
            "telegram_cpu_ms_per_update": round(result["telegram_cpu"] / updates * 1000, 2),
            "wall_s": round(wall, 2),
            "dialogues_per_s": round(result["n"] / wall, 1),
        }
        log(f"run {run_no}: " + json.dumps(figures))
        return figures
    finally:
        if runtime is not None:
            await runtime.stop()
        with contextlib.suppress(Exception):
            parent_end.send({"kind": "stop"})
        child.join(10)
        if child.is_alive():
            child.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=200,
                        help="measured dialogues, one resident each (default 200)")
    parser.add_argument("--parallel", type=int, default=10,
                        help="residents in their dialogue at once (default 10)")
    parser.add_argument("--warmup", type=int, default=20, help="dialogues not counted")
    parser.add_argument("--communes", type=int, default=20, help="police groups (default 20)")
    parser.add_argument("--runs", type=int, default=1, help="repeat, then print medians")
    parser.add_argument("--gc", choices=["settled", "default"], default="settled",
                        help="the garbage collector as the bot's entry points leave it "
                        "(settled, default) or Python's defaults")
    parser.add_argument("--cprofile", help="write cProfile stats of the measured phase here")
    args = parser.parse_args()
    log(f"machine: {machine()}")
    log(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    runs = [asyncio.run(run_once(args, i + 1)) for i in range(args.runs)]
    print(f"\n=== median of {len(runs)} run(s), {args.residents} residents, "
          f"{args.parallel} at once")
    for key in ("bot_cpu_ms_per_update", "bot_cpu_ms_per_tip", "loop_thread_cpu_ms_per_update",
                "telegram_cpu_ms_per_update", "wall_s", "dialogues_per_s"):
        values = [r[key] for r in runs]
        print(f"  {key:32s} {statistics.median(values):9.2f}   "
              f"(runs: {', '.join(f'{v:g}' for v in values)})")
    missing = [r["run"] for r in runs if r["cards"] != r["residents"]]
    print("  every dialogue ended with a receipt and a card" if not missing
          else f"  runs with missing cards: {missing}")


if __name__ == "__main__":
    main()
