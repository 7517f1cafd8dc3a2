"""The broadcast engine against the Bot API sandbox with its rate limits on (issue 11).

Four runs, each with its own sandbox process (a ``BotApiSandbox`` holding N generated
people, each with a private chat with the bot) and the engine in a worker process (the
bot's PTB ``Bot`` with its rate limiter, as ``bot.app`` builds it, SQLite):

1. ``--users`` (20,000) subscribers, the 19/8 photo + caption (uploaded once, then its file
   id): sustained rate (first to last accepted send, as the sandbox counted them), 429s,
   duplicates (chats with more than one message), lost (chats with none);
2. a kill -9 of the worker mid-run (after ``--kill-after`` s), then a restart that resumes
   the run: duplicates and lost counted the same way, against the documented bound;
3. RSS of the worker while broadcasting to ``--rss-users`` (100,000): the sandbox without
   rate limits and the engine at ``--rss-rate`` msg/s (the bot's rate limiter with its
   per-chat windows, its overall 30/s off, so that it takes minutes), peak VmHWM of
   the worker, sampled for ``--rss-seconds`` (the whole run if 0);
4. yielding: the outbox stands busy from 15 s to 30 s into a run of 1,500: the rate per
   second the sandbox counted shows the drop to ``yield_rate`` (20/s) and back;
5. mixed (``--only mixed``, not in the default set): a run of ``--mixed-users`` (1,500)
   while the same bot sends ``--mixed`` (8) other messages a second to residents'
   chats, every other one an edit (dialogues, progress edits), through the same rate
   limiter and its send budget: the broadcast's rate, 429s, the most sends the sandbox
   counted within a second, and how long the others took (they go ahead of the
   broadcast's waiting senders).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_broadcast.py [--users 20000] [--kill-users 3000]
    PYTHONPATH=$PWD .venv/bin/python bench/bench_broadcast.py --only mixed [--mixed 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105 - a bench key
FIRST_ID = 9_000_000_000
OTHER_ID = 9_900_000_000  # residents in a dialogue with the bot, not subscribers (mixed)
OTHERS = 40


# --- the sandbox process -------------------------------------------------------------------

async def serve_sandbox(users: int, limits: bool) -> None:
    from bot.sandbox import BotApiSandbox, RateLimits
    from bot.sandbox.ratelimit import FloodControl

    sandbox = BotApiSandbox(limits=RateLimits(enabled=limits))
    world = sandbox.world
    accepted: list[float] = []
    announced: list[float] = []  # the accepted sends to subscribers (the broadcast's)
    refused = [0]

    class Counting(FloodControl):
        def acquire(self, chat_id: int, is_group: bool, units: int = 1) -> None:
            try:
                super().acquire(chat_id, is_group, units)
            except Exception:
                refused[0] += 1
                raise
            accepted.append(time.monotonic())
            if FIRST_ID <= chat_id < FIRST_ID + users:
                announced.append(accepted[-1])

    world.flood = Counting(sandbox.limits)
    world.calls = _NoLog()  # type: ignore[assignment]  # 100,000 calls: keep no log
    for number in range(users):
        user = sandbox.create_user(f"R{number}", user_id=FIRST_ID + number)
        world.private_state(user)
    for number in range(OTHERS):
        world.private_state(sandbox.create_user(f"O{number}", user_id=OTHER_ID + number))

    async def stats(request: web.Request) -> web.Response:
        counts = [sum(1 for m in world.chats[FIRST_ID + n].messages.values() if m.from_bot)
                  for n in range(users)]
        window, best, start = accepted, 0, 0
        for end in range(len(window)):  # the most sends the sandbox saw in any 1 s
            while window[end] - window[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return web.json_response({
            "messages": sum(counts), "duplicates": sum(1 for c in counts if c > 1),
            "extra_messages": sum(c - 1 for c in counts if c > 1),
            "lost": sum(1 for c in counts if c == 0), "too_many": refused[0],
            "seconds": (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0,
            "accepted": len(accepted), "max_in_1s": best,
            "broadcast_rate": (len(announced) - 1) / (announced[-1] - announced[0])
            if len(announced) > 1 else 0.0,
            "per_second": [sum(1 for t in accepted if int(t - accepted[0]) == second)
                           for second in range(int(accepted[-1] - accepted[0]) + 1)]
            if accepted and request.query.get("histogram") else None,
        })

    app = sandbox.make_app()
    app.router.add_get("/bench/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


class _NoLog(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:
        return None


# --- the worker process (the bot's side) ----------------------------------------------------

def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class BusyWindow:
    """Stands for the outbox: busy (tip cards being sent) from ``start`` to ``end`` seconds
    after the worker started (``OutboxWorker.busy`` in the bot)."""

    def __init__(self, start: float, end: float) -> None:
        self._t0 = time.monotonic()
        self._start, self._end = start, end

    def busy(self) -> bool:
        return self._start <= time.monotonic() - self._t0 < self._end


async def other_sends(bot: Any, per_second: float, took: list[float]) -> None:
    """The rest of the bot meanwhile: ``per_second`` messages to residents' chats, every
    other one an edit of the one before (a dialogue's steps, a progress message)."""
    last: dict[int, int] = {}
    number = 0
    while True:
        chat_id = OTHER_ID + number % OTHERS
        started = time.monotonic()
        if number % 2 and chat_id in last:
            await bot.edit_message_text(f"bước {number} (sửa)", chat_id, last[chat_id])
        else:
            last[chat_id] = (await bot.send_message(chat_id, f"bước {number}")).message_id
        took.append(time.monotonic() - started)
        number += 1
        await asyncio.sleep(max(1 / per_second - (time.monotonic() - started), 0.0))


async def work(db_url: str, api: str, run_id: int, rate: float, ptb_limiter: bool,
               seconds: float, busy: tuple[float, float] | None = None,
               mixed: float = 0.0) -> None:
    from telegram import Bot
    from telegram.ext import ExtBot

    from bot.app import BotEndpoint, build_application
    from bot.conversation.texts import stop_button
    from bot.domain.broadcast.engine import BroadcastEngine, BroadcastSettings
    from bot.domain.sealing import ChatSealer
    from bot.i18n import Translator
    from bot.ratelimit import TiplineRateLimiter, budget_of
    from bot.settings import Settings
    from bot.telegram_broadcast import TelegramBroadcastTransport
    from bot.telegram_http import AiohttpRequest
    from storage.campaigns import CampaignsStore
    from storage.db import Database

    token = "123456:SANDBOX-TOKEN"  # noqa: S105 - the sandbox's fake token
    settings = Settings(_env_file=None, database_url=db_url, secret_key=SECRET,  # type: ignore[call-arg]
                        log_format="text", log_level="WARNING")
    if ptb_limiter:
        bot: Bot = build_application(settings, BotEndpoint(token, api)).bot
    else:  # the bot's rate limiter with its per-chat windows, its overall 30/s off
        bot = ExtBot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot",
                     request=AiohttpRequest(connection_pool_size=64),
                     rate_limiter=TiplineRateLimiter(overall_max_rate=0))
    await bot.initialize()
    db = Database(db_url)
    translator = Translator.load()
    engine = BroadcastEngine(
        CampaignsStore(db), TelegramBroadcastTransport(bot), ChatSealer(SECRET.encode()),
        lambda language: stop_button(translator.for_language(language or "vi")),
        settings=BroadcastSettings(rate=rate, yield_rate=20.0 if busy else rate),
        capacity=BusyWindow(*busy) if busy else None,
        budget=budget_of(bot),  # as bot.app builds it
    )
    peak = [rss_kib()]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_kib())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    took: list[float] = []
    others = asyncio.create_task(other_sends(bot, mixed, took)) if mixed > 0 else None
    started = time.monotonic()
    drive = asyncio.create_task(engine.run(run_id))
    try:
        if seconds > 0:
            done, _pending = await asyncio.wait({drive}, timeout=seconds)
            status = drive.result() if done else "sampled"
        else:
            status = await drive
    finally:
        sampler.cancel()
        if others is not None:
            others.cancel()
    elapsed = time.monotonic() - started
    took.sort()
    print(json.dumps({
        "status": status, "elapsed": elapsed,
        "sent": engine.stats.sent, "too_many_seen": engine.stats.too_many,
        "rss_peak_mib": peak[0] / 1024, "hwm_mib": rss_kib("VmHWM") / 1024,
        **({"others_sent": len(took), "others_per_s": len(took) / elapsed,
            "others_p50_ms": 1000 * took[len(took) // 2],
            "others_p99_ms": 1000 * took[int(len(took) * 0.99)],
            "others_max_ms": 1000 * took[-1]} if took else {}),
    }), flush=True)
    os._exit(0)  # the point is the numbers; skip a slow teardown of a cut-off run


# --- orchestration --------------------------------------------------------------------------

def python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def start_sandbox(users: int, limits: bool) -> tuple[subprocess.Popen[str], str]:
    command = python("--serve", str(users), *([] if limits else ["--no-limits"]))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,  # noqa: S603
                               env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError("the sandbox did not start")
    return process, url


async def seed(db_url: str, users: int) -> int:
    """``users`` subscribers (sealed chats), the 19/8 campaign with its photo, a run."""
    from bot.domain.broadcast.campaigns import load_builtins
    from bot.domain.broadcast.images import render_campaign_image
    from bot.domain.sealing import ChatSealer, ReplyAddress
    from storage import migrate
    from storage.campaigns import CampaignsStore
    from storage.db import Database
    from storage.tables import subscribers

    db = Database(db_url)
    await migrate.upgrade(db)
    sealer = ChatSealer(SECRET.encode())
    now = datetime.now(UTC)
    for start in range(0, users, 5000):
        rows = [{"pseudonym": f"bench{n}", "scope": "all", "active": True,
                 "subscribed_at": now,
                 "sealed_chat": sealer.seal(ReplyAddress("tg", str(FIRST_ID + n)))}
                for n in range(start, min(users, start + 5000))]
        async with db.transaction() as session:
            await (await session.connection()).execute(sa.insert(subscribers), rows)
    store = CampaignsStore(db)
    builtin = load_builtins()[0]
    campaign = await store.sync_builtin(builtin.key, builtin.title, builtin.text_vi,
                                        builtin.text_en, render_campaign_image(builtin.image),
                                        now)
    run_id = await store.start_run(campaign, now.year, now)
    assert run_id is not None
    await db.close()
    return run_id


def run_worker(db_url: str, api: str, run_id: int, *, rate: float, ptb_limiter: bool = True,
               seconds: float = 0, kill_after: float | None = None,
               busy: tuple[float, float] | None = None,
               mixed: float = 0.0) -> dict[str, Any] | None:
    args = ["--work", db_url, api, str(run_id), str(rate), str(seconds)]
    if mixed:
        args += ["--mixed", str(mixed)]
    if busy:
        args += ["--busy", f"{busy[0]},{busy[1]}"]
    if not ptb_limiter:
        args.append("--no-ptb-limiter")
    process = subprocess.Popen(python(*args), stdout=subprocess.PIPE, text=True,  # noqa: S603
                               env=os.environ | {"PYTHONPATH": str(ROOT)})
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None
    out, _err = process.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def stats(url: str, histogram: bool = False) -> dict[str, Any]:
    import urllib.request

    query = "?histogram=1" if histogram else ""
    with urllib.request.urlopen(f"{url}/bench/stats{query}", timeout=600) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


def scenario(name: str, users: int, *, limits: bool, rate: float, kill_after: float | None = None,
             ptb_limiter: bool = True, seconds: float = 0,
             busy: tuple[float, float] | None = None, mixed: float = 0.0) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    db_url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    sandbox, url = start_sandbox(users, limits)
    try:
        run_id = asyncio.run(seed(db_url, users))
        result: dict[str, Any] = {"scenario": name, "users": users}
        if kill_after is not None:
            run_worker(db_url, url, run_id, rate=rate, kill_after=kill_after)
            result["killed_after_s"] = kill_after
            result["after_kill"] = stats(url)["messages"]
        worker = run_worker(db_url, url, run_id, rate=rate, ptb_limiter=ptb_limiter,
                            seconds=seconds, busy=busy, mixed=mixed)
        result["worker"] = worker
        result["sandbox"] = stats(url, histogram=busy is not None)
        return result
    finally:
        sandbox.send_signal(signal.SIGKILL)
        sandbox.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int)
    parser.add_argument("--no-limits", action="store_true")
    parser.add_argument("--work", nargs=5)
    parser.add_argument("--no-ptb-limiter", action="store_true")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--kill-users", type=int, default=3_000)
    parser.add_argument("--kill-after", type=float, default=30.0)
    parser.add_argument("--rss-users", type=int, default=100_000)
    parser.add_argument("--rss-rate", type=float, default=400.0)
    parser.add_argument("--rss-seconds", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--busy")
    parser.add_argument("--mixed", type=float)  # other sends per second (mixed: 8)
    parser.add_argument("--mixed-users", type=int, default=1_500)
    parser.add_argument("--only", choices=["rate", "kill", "rss", "yield", "mixed"])
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve_sandbox(args.serve, not args.no_limits))
        return
    if args.work is not None:
        db_url, api, run_id, rate, seconds = args.work
        busy = tuple(float(v) for v in args.busy.split(",")) if args.busy else None
        asyncio.run(work(db_url, api, int(run_id), float(rate), not args.no_ptb_limiter,
                         float(seconds), busy, args.mixed or 0.0))  # type: ignore[arg-type]
        return
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.only in (None, "rate"):
        print(json.dumps(scenario("rate", args.users, limits=True, rate=args.rate)), flush=True)
    if args.only in (None, "kill"):
        print(json.dumps(scenario("kill -9", args.kill_users, limits=True, rate=args.rate,
                                  kill_after=args.kill_after)), flush=True)
    if args.only in (None, "rss"):
        print(json.dumps(scenario("rss", args.rss_users, limits=False, rate=args.rss_rate,
                                  ptb_limiter=False, seconds=args.rss_seconds)), flush=True)
    if args.only in (None, "yield"):  # the outbox "busy" from 15 s to 30 s into the run
        print(json.dumps(scenario("yield", 1_500, limits=True, rate=args.rate,
                                  busy=(15.0, 30.0))), flush=True)
    if args.only == "mixed":  # the rest of the bot sending meanwhile, through one budget
        print(json.dumps(scenario("mixed", args.mixed_users, limits=True, rate=args.rate,
                                  mixed=8.0 if args.mixed is None else args.mixed)),
              flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
