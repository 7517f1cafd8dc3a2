"""Benchmark tip intake end to end: confirm button -> PTB -> handler -> commit -> receipt
-> outbox -> card in the police group, through the local Bot API sandbox over HTTP.

Plain script (not a test):

    .venv/bin/python bench/bench_intake.py [--tips 300] [--rate 50,10] [--seconds 10] [--runs 3]
    .venv/bin/python bench/bench_intake.py --limits telegram --tips 200 --rate 8

Two processes, like production where Telegram is not on our machine:
  * the bot process (this one): ``TiplineRuntime`` with a fresh SQLite file, long polling;
  * the "Telegram" process (a child): the ``BotApiSandbox``, 100 police groups linked to 100
    real communes spread over every province, and the residents pressing buttons. Press times
    and the moment each receipt/card is stored by the sandbox are both taken there, with
    ``time.perf_counter()`` (exact: the sandbox's ``store_message`` is wrapped, no polling).

Drafts are prepared under the pseudonym the handler computes: the warm-up residents' through
``IntakeService`` (begin, category, urgency, text, done), the others as the same ``Draft`` rows
in one transaction (``--prepare service`` does all of them the slow way); each resident's
private chat gets a review message with the "d:ok" button. Only the confirm is measured, and
it takes the real path: button press -> getUpdates -> PTB -> ``handlers.resident.on_choice``
-> ``Conversation`` -> ``IntakeService.submit`` (commit) -> receipt -> ``OutboxWorker`` -> card.

Phases: a warm-up (sequential tips, not counted); (a) throughput: ``--tips`` confirms fired
at once; tips/s for "commit + receipt" and for "card delivered" separately; (b) latency:
confirms at a steady ``--rate`` for ``--seconds``; p50/p95/p99 from press to card.
Each phase also reports the bot's CPU per tip (whole process and event-loop thread), SQLite
write transactions per tip, the wait for and the hold of the write lock (engine events), new
DB connections, event-loop lag, Bot API calls per tip and 429s. A confirm that gets another
reply than the receipt (e.g. the apology after "query is too old") counts as "failed".

``--limits off`` (default) disables Telegram's flood limits on both sides: the sandbox answers
no 429 and the bot's own pacing (PTB's AIORateLimiter: 30 msg/s overall, 20/min per group)
is switched off in this process only, so that the figures show the bot, not Telegram's caps.
``--limits telegram`` keeps both as shipped (what real Telegram allows).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

CODE_RE = re.compile(r"\b([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\b")
CARD_MARK = "Tin báo "  # first line of a card: "📥 Tin báo 7K3Q-9MXD"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105 - a fake key
FIRST_RESIDENT_ID = 7_300_000_001
FIRST_GROUP_ID = -5_100_000_001
REVIEW_TEXT = "Vui lòng kiểm tra lại tin báo:\n(prepared by bench_intake)"
REVIEW_MARKUP = {"inline_keyboard": [
    [{"text": "📨 Gửi tin báo", "callback_data": "d:ok"}],
    [{"text": "🗑 Hủy", "callback_data": "d:x"}],
]}
TEXTS = [
    "Có người bán ma túy ở chợ, tối nào cũng thấy.",
    "Nhóm thanh niên tụ tập đánh bạc sau nhà văn hoá.",
    "Xe máy bị trộm trước cửa hàng tạp hoá lúc chiều.",
    "Có người gọi điện giả danh công an đòi chuyển tiền.",
]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# =============================================================================================
# The "Telegram" process: sandbox + residents + clock
# =============================================================================================


@dataclass
class Clock:
    """What the sandbox saw, timestamped with perf_counter."""

    pressed: dict[int, float] = field(default_factory=dict)  # resident id -> press time
    receipt: dict[int, tuple[float, str]] = field(default_factory=dict)  # resident -> (t, code)
    refused: dict[int, str] = field(default_factory=dict)  # resident -> text of another reply
    card: dict[str, tuple[float, int]] = field(default_factory=dict)  # code -> (t, group id)
    group_ids: set[int] = field(default_factory=set)
    other_group_messages: int = 0


def _telegram_process(conn: Connection, setup: dict[str, Any]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_telegram_main(conn, setup))


async def recv(conn: Connection) -> dict[str, Any]:
    return await asyncio.to_thread(conn.recv)


def police_groups(sandbox: Any, communes: list[int]) -> tuple[Any, list[tuple[int, int]]]:
    """In the sandbox: the admin and one police group per commune, as (chat id, code)."""
    admin = sandbox.create_user("Quản trị", username="bench_admin", user_id=7_100_000_901)
    groups: list[tuple[int, int]] = []
    for index, code in enumerate(communes):
        chat = sandbox.create_group(
            f"Công an xã {code} – tin báo", members=[admin.id], admins=[admin.id],
            chat_id=FIRST_GROUP_ID - index,
        )
        groups.append((chat.id, code))
    return admin, groups


async def _telegram_main(conn: Connection, setup: dict[str, Any]) -> None:
    from bot.sandbox import BotApiSandbox, RateLimits

    sandbox = BotApiSandbox(limits=RateLimits(enabled=setup["telegram_limits"]))
    await sandbox.start()
    world = sandbox.world
    admin, groups = police_groups(sandbox, setup["communes"])
    clock = Clock(group_ids={g for g, _ in groups})
    residents: list[int] = []
    review_id: dict[int, int] = {}
    for index in range(setup["residents"]):
        user = sandbox.create_user(f"Dân {index}", user_id=FIRST_RESIDENT_ID + index)
        stored = world.store_message(
            world.private_state(user), world.bot, {"text": REVIEW_TEXT}, markup=REVIEW_MARKUP
        )
        residents.append(user.id)
        review_id[user.id] = stored.message_id

    original_store = world.store_message

    def store_and_clock(state: Any, sender: Any, content: Any, **kwargs: Any) -> Any:
        stored = original_store(state, sender, content, **kwargs)
        if stored.from_bot:
            now = time.perf_counter()
            chat_id = state.chat.id
            text = stored.data.get("text") or stored.data.get("caption") or ""
            found = CODE_RE.search(text)
            if chat_id in clock.group_ids:
                if found and CARD_MARK in text:
                    clock.card.setdefault(found.group(1), (now, chat_id))
                else:
                    clock.other_group_messages += 1
            elif chat_id > 0:
                if found and "✅" in text:
                    clock.receipt.setdefault(chat_id, (now, found.group(1)))
                else:
                    clock.refused.setdefault(chat_id, text[:120])
        return stored

    world.store_message = store_and_clock  # type: ignore[method-assign]
    conn.send({"url": sandbox.url, "token": sandbox.token, "admin": admin.id,
               "groups": groups, "residents": residents})

    async def press(user_id: int) -> None:
        clock.pressed[user_id] = time.perf_counter()
        await sandbox.press_button(user_id, user_id, review_id[user_id], "d:ok")

    try:
        while True:
            order = await recv(conn)
            kind = order["kind"]
            if kind == "stop":
                break
            cpu0, wall0, calls0 = time.process_time(), time.perf_counter(), len(world.calls)
            batch: list[int] = order["residents"]
            if kind == "idle":
                await sandbox.wait_idle(timeout=60, settle=0.3)
                conn.send({"ok": True})
                continue
            if kind == "warmup":
                for user_id in batch:
                    await press(user_id)
                    await _wait(clock, [user_id], order["timeout"], None)
            elif kind == "burst":
                for user_id in batch:
                    await press(user_id)
                log(f"[telegram] {len(batch)} confirms pressed in "
                    f"{(time.perf_counter() - wall0) * 1000:.1f} ms")
                await _wait(clock, batch, order["timeout"], "throughput")
            elif kind == "steady":
                rate = float(order["rate"])
                start = time.perf_counter()
                waiter = asyncio.create_task(
                    _wait(clock, batch, order["timeout"] + len(batch) / rate, "latency")
                )
                for i, user_id in enumerate(batch):
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await press(user_id)
                await waiter
            conn.send(_summarise(clock, batch, time.process_time() - cpu0,
                                 time.perf_counter() - wall0, world.calls[calls0:]))
    finally:
        await sandbox.stop()


async def _wait(clock: Clock, batch: list[int], limit: float, label: str | None) -> None:
    """Until each resident has a receipt (or a refusal) and its card is in a group."""
    deadline = time.perf_counter() + limit
    last_print = time.perf_counter()
    start = last_print
    while True:
        receipts = sum(1 for u in batch if u in clock.receipt)
        refused = sum(1 for u in batch if u in clock.refused and u not in clock.receipt)
        cards = sum(1 for u in batch if u in clock.receipt and clock.receipt[u][1] in clock.card)
        pressed = sum(1 for u in batch if u in clock.pressed)
        if pressed == len(batch) and receipts + refused >= len(batch) and cards >= receipts:
            return
        now = time.perf_counter()
        if now > deadline:
            log(f"[telegram] TIMEOUT: {receipts} receipts, {refused} refusals, {cards} cards "
                f"of {len(batch)}")
            return
        if label and now - last_print >= 1.0:
            last_print = now
            log(f"[{label}] t={now - start:5.1f}s pressed {pressed:5d}  receipts {receipts:5d}  "
                f"cards {cards:5d}  / {len(batch)}")
        await asyncio.sleep(0.02)  # only decides when to stop: the times come from the hook


def _summarise(clock: Clock, batch: list[int], cpu: float, wall: float,
               calls: list[dict[str, Any]]) -> dict[str, Any]:
    pressed = [clock.pressed[u] for u in batch if u in clock.pressed]
    t0 = min(pressed) if pressed else 0.0
    receipt_lat, card_lat, receipt_at, card_at = [], [], [], []
    for u in batch:
        if u not in clock.receipt:
            continue
        t_receipt, code = clock.receipt[u]
        receipt_lat.append(t_receipt - clock.pressed[u])
        receipt_at.append(t_receipt - t0)
        if code in clock.card:
            t_card = clock.card[code][0]
            card_lat.append(t_card - clock.pressed[u])
            card_at.append(t_card - t0)
    return {
        "n": len(batch),
        "pressed": len(pressed),
        "press_span": (max(pressed) - t0) if pressed else 0.0,
        "receipts": len(receipt_lat),
        "cards": len(card_lat),
        "refused": sorted({clock.refused[u] for u in batch if u in clock.refused}),
        "other_group_messages": clock.other_group_messages,
        "receipt_lat": receipt_lat,
        "card_lat": card_lat,
        "receipt_at": sorted(receipt_at),
        "card_at": sorted(card_at),
        "telegram_cpu": cpu,
        "telegram_wall": wall,
        "http_429": sum(1 for c in calls if c.get("error_code") == 429),
        "api_calls": collections.Counter(c["method"] for c in calls),
    }


# =============================================================================================
# The bot process
# =============================================================================================


def pick_communes(count: int) -> list[int]:
    """``count`` real communes, round-robin over the provinces (deterministic)."""
    from bot.domain.communes import CommuneDirectory

    directory = CommuneDirectory.load()
    rng = random.Random(2998)
    pools = []
    for province in directory.provinces():
        communes = list(directory.communes_of(province.code))
        rng.shuffle(communes)
        pools.append(communes)
    chosen: list[int] = []
    while len(chosen) < count:
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop().code)
    return chosen


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user, system) of each thread of this process, by Python thread name with
    its number stripped ("sqlite-read_2" -> "sqlite-read"), summed over threads of a name."""
    import threading

    names = {t.native_id: re.sub(r"[_-]?\d+$|^Thread-\d+ \((.*)\)$", r"\1", t.name)
             for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            entry = seconds[names.get(int(task.name), "other")]
            entry[0] += int(fields[11]) / tick
            entry[1] += int(fields[12]) / tick
    return {name: (user, system) for name, (user, system) in seconds.items()}


def thread_cpu() -> tuple[float, float]:
    """CPU seconds of this process: (event-loop thread, all other threads), from /proc."""
    import threading

    main_tid = threading.main_thread().native_id
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            if int(task.name) == main_tid:
                main += seconds
            else:
                other += seconds  # (threads that ended during the phase are not counted)
    return main, other


class GcTrace:
    """Time the bot process spends in the cyclic garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        import gc

        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0
        self.enabled = False

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                self._started = time.perf_counter()
            elif self.enabled:
                self.pauses.append((info["generation"], time.perf_counter() - self._started))

        gc.callbacks.append(callback)

    def start(self) -> None:
        self.pauses = []
        self.enabled = True

    def stop(self) -> dict[str, Any]:
        self.enabled = False
        full = [s for g, s in self.pauses if g == 2]
        return {"gc_ms": round(sum(s for _, s in self.pauses) * 1000, 1),
                "gc_runs": [sum(1 for g, _ in self.pauses if g == gen) for gen in range(3)],
                "gc_full_runs": len(full), "gc_full_max_ms": round(max(full, default=0) * 1000, 1)}


class LoopLag:
    """How late the bot's event loop wakes up from a 5 ms sleep (a saturation signal)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.samples.append(time.perf_counter() - before - 0.005)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples


class WriteLockTrace:
    """SQLite write transactions seen from the bot (SQLAlchemy engine events, event-loop
    thread): the wait for ``BEGIN IMMEDIATE`` (the write lock) and how long the lock is then
    held until COMMIT/ROLLBACK. Instrumentation only: nothing in the product changes."""

    def __init__(self, db: Any) -> None:
        from sqlalchemy import event

        self.waits: list[float] = []
        self.holds: list[float] = []
        self.statements = 0
        self.connects = 0
        self.enabled = False
        begun: dict[int, float] = {}
        acquired: dict[int, float] = {}
        # the async engine's and, on SQLite, the work thread's (``Database.sync_engines``)
        for sync_engine in db.sync_engines:

            @event.listens_for(sync_engine, "before_cursor_execute")
            def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                if statement.startswith("BEGIN IMMEDIATE"):
                    begun[id(conn.connection)] = time.perf_counter()
                elif self.enabled:
                    self.statements += 1

            @event.listens_for(sync_engine, "after_cursor_execute")
            def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                if statement.startswith("BEGIN IMMEDIATE"):
                    key = id(conn.connection)
                    now = time.perf_counter()
                    acquired[key] = now
                    if self.enabled:
                        self.waits.append(now - begun.pop(key, now))

            def release(conn: Any) -> None:
                start = acquired.pop(id(conn.connection), None)
                if start is not None and self.enabled:
                    self.holds.append(time.perf_counter() - start)

            event.listen(sync_engine, "commit", release)
            event.listen(sync_engine, "rollback", release)

            @event.listens_for(sync_engine, "connect")
            def connected(*args: Any) -> None:
                if self.enabled:
                    self.connects += 1

    def start(self) -> None:
        self.waits, self.holds, self.statements, self.connects = [], [], 0, 0
        self.enabled = True

    def stop(self, wall: float, tips: int) -> dict[str, Any]:
        self.enabled = False
        return {
            "write_tx_per_tip": round(len(self.holds) / max(tips, 1), 2),
            "statements_per_tip": round(self.statements / max(tips, 1), 1),
            "new_db_connections": self.connects,
            "lock_wait_p50_ms": round(pct(self.waits, 50) * 1000, 1),
            "lock_wait_p99_ms": round(pct(self.waits, 99) * 1000, 1),
            "lock_hold_p50_ms": round(pct(self.holds, 50) * 1000, 1),
            "lock_hold_p99_ms": round(pct(self.holds, 99) * 1000, 1),
            "lock_held_pct_of_wall": round(sum(self.holds) / wall * 100),
        }


async def start_bot(world: dict[str, Any], tmp: Path, *, telegram_limits: bool) -> Any:
    """The bot (a ``TiplineRuntime``) on SQLite in ``tmp`` against the sandbox process's
    world, its groups linked. Imported here: the sandbox's process never loads the bot."""
    from bot.app import BotEndpoint, TiplineRuntime
    from bot.settings import Settings

    settings = Settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp / 'tipline.db'}",
        data_dir=tmp, web_port=0, secret_key=SECRET_KEY, log_format="text",
        admin_ids=[world["admin"]], telegram_private_burst=10_000,
    )
    if not telegram_limits:
        _disable_bot_flood_pacing()
    runtime = TiplineRuntime(
        settings, BotEndpoint(world["token"], world["url"]), SECRET_KEY.encode()
    )
    await runtime.start()
    assert runtime.services is not None
    for chat_id, code in world["groups"]:
        await runtime.services.linking.link(
            chat_id=chat_id, scope="commune", code=code, linked_by=world["admin"]
        )
    return runtime


def _disable_bot_flood_pacing() -> None:
    """--limits off: PTB's AIORateLimiter (30/s overall, 20/min per group) off, in this process.
    The per-private-chat bucket stays (its burst is raised through the settings)."""
    import bot.app
    from bot.ratelimit import TiplineRateLimiter

    class Unpaced(TiplineRateLimiter):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._base_limiter = None
            self.budget = None  # the overall 30/s (bot/domain/sendbudget.py)
            self._group_max_rate = 0
            self._group_time_period = 0

    bot.app.TiplineRateLimiter = Unpaced  # type: ignore[misc]


def draft_spec(index: int, communes: list[int], categories: list[str]) -> dict[str, Any]:
    return {"commune_code": communes[index % len(communes)],
            "category": categories[index % len(categories)],
            "urgent": index % 10 == 0,
            "description": f"{TEXTS[index % len(TEXTS)]} (#{index})"}


async def prepare_drafts(
    services: Any, residents: list[int], communes: list[int], *, via_service: int
) -> None:
    """Every resident gets a draft at the review step. The first ``via_service`` go through
    IntakeService (begin, category, urgency, text, done: 5 write transactions each); the rest
    are inserted as the same ``Draft`` rows in one transaction (seconds instead of minutes)."""
    from bot.context import TELEGRAM
    from bot.domain.intake import Step
    from storage.models import Draft

    categories = [c.key for c in services.categories.all()]
    intake = services.intake
    gate = asyncio.Semaphore(8)

    async def one(index: int, user_id: int) -> None:
        spec = draft_spec(index, communes, categories)
        async with gate:
            pseudonym = services.pseudonyms.resident(TELEGRAM, user_id)
            await intake.begin(pseudonym, "vi", commune_code=spec["commune_code"])
            await intake.choose_category(pseudonym, spec["category"])
            await intake.set_urgency(pseudonym, spec["urgent"])
            await intake.add_text(pseudonym, spec["description"])
            view = await intake.finish_attachments(pseudonym)
            assert view.step == Step.REVIEW

    await asyncio.gather(*(one(i, u) for i, u in enumerate(residents[:via_service])))
    async with services.db.transaction() as session:
        for index, user_id in enumerate(residents[via_service:], start=via_service):
            session.add(Draft(pseudonym=services.pseudonyms.resident(TELEGRAM, user_id),
                              language="vi", step=Step.REVIEW,
                              **draft_spec(index, communes, categories)))
    if via_service < len(residents):  # the bulk rows read back exactly like the real ones
        check = await intake.current(services.pseudonyms.resident(TELEGRAM, residents[-1]))
        assert check is not None and check.step == Step.REVIEW and check.commune is not None


@dataclass
class Phase:
    name: str
    result: dict[str, Any]
    bot_cpu: float
    bot_wall: float
    lag: list[float]
    loop_cpu: float  # the event-loop thread
    worker_cpu: float  # aiosqlite connection threads, executor threads
    db: dict[str, Any]


async def run_once(args: argparse.Namespace, run_no: int) -> dict[str, Any]:
    from sqlmodel import func, select

    from storage.models import OutboxMessage, Tip

    telegram_limits = args.limits == "telegram"
    communes = pick_communes(args.communes)
    rates = [float(r) for r in str(args.rate).split(",") if r.strip()]
    steady_sizes = [round(rate * args.seconds) for rate in rates]
    total = args.warmup + args.tips + sum(steady_sizes)
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(
        target=_telegram_process, name="bench-telegram", daemon=True,
        args=(child_end, {"telegram_limits": telegram_limits, "communes": communes,
                          "residents": total}),
    )
    child.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    runtime = None
    try:
        world = await recv(parent_end)
        log(f"run {run_no}: sandbox {world['url']} (pid {child.pid}): {len(world['groups'])} "
            f"groups, {len(world['residents'])} residents; bot pid {os.getpid()}")
        runtime = await start_bot(world, tmp, telegram_limits=telegram_limits)
        services = runtime.services
        assert services is not None
        residents: list[int] = world["residents"]
        trace = WriteLockTrace(services.db)
        gc_trace = GcTrace()
        started = time.perf_counter()
        await prepare_drafts(services, residents, communes, via_service=(
            len(residents) if args.prepare == "service" else args.warmup))
        if args.gc == "settled":  # as `python -m bot` does once started (bot/heap.py)
            from bot.heap import settle_after_start

            settle_after_start()
        log(f"run {run_no}: {len(residents)} drafts prepared in "
            f"{time.perf_counter() - started:.1f} s")
        parent_end.send({"kind": "idle", "residents": []})
        await recv(parent_end)

        warm, rest = residents[:args.warmup], residents[args.warmup:]
        plan: list[tuple[str, dict[str, Any]]] = [
            ("warmup", {"kind": "warmup", "residents": warm, "timeout": 10})]
        if args.tips:
            plan.append(("throughput", {"kind": "burst", "residents": rest[:args.tips],
                                        "timeout": 100}))
            rest = rest[args.tips:]
        for rate, size in zip(rates, steady_sizes, strict=True):
            plan.append((f"latency@{rate:g}", {"kind": "steady", "residents": rest[:size],
                                              "rate": rate, "timeout": 60}))
            rest = rest[size:]
        phases: list[Phase] = []
        for name, order in plan:
            if name != "warmup":
                parent_end.send({"kind": "idle", "residents": []})
                await recv(parent_end)
                log(f"run {run_no}: phase {name}: {len(order['residents'])} tips")
            lag = LoopLag()
            lag.start()
            spy = _start_py_spy(args, name) if name != "warmup" else None
            profile = cProfile.Profile() if args.cprofile and name != "warmup" else None
            if profile is not None:
                profile.enable()
            trace.start()
            gc_trace.start()
            by_thread0 = cpu_by_thread()
            cpu0, wall0, threads0 = time.process_time(), time.perf_counter(), thread_cpu()
            parent_end.send(order)
            result = await recv(parent_end)
            bot_cpu, bot_wall = time.process_time() - cpu0, time.perf_counter() - wall0
            threads1 = thread_cpu()
            by_thread1, tips = cpu_by_thread(), max(len(order["residents"]), 1)
            by_thread = {  # user+system ms per tip, and the system part
                name: [round((u - by_thread0.get(name, (0, 0))[0]) / tips * 1000, 2),
                       round((s - by_thread0.get(name, (0, 0))[1]) / tips * 1000, 2)]
                for name, (u, s) in sorted(by_thread1.items())
            }
            _stop_py_spy(spy)
            if profile is not None:
                profile.disable()
                Path(args.cprofile).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
                profile.dump_stats(Path(args.cprofile) / f"bot-{name}.pstats")
            phases.append(Phase(name, result, bot_cpu, bot_wall, await lag.stop(),
                                threads1[0] - threads0[0], threads1[1] - threads0[1],
                                {**trace.stop(bot_wall, len(order["residents"])),
                                 **gc_trace.stop(),
                                 "cpu_ms_per_tip_by_thread_user_system": by_thread}))

        await asyncio.sleep(0.5)  # a row is marked sent just after its card is stored
        async with services.db.session() as session:
            tips = (await session.exec(select(func.count()).select_from(Tip))).one()
            pending = (await session.exec(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status != "sent")
            )).one()
        db_size = sum(p.stat().st_size for p in tmp.glob("tipline.db*"))  # noqa: ASYNC240
        return report(args, run_no, phases, {
            "tips_in_db": tips, "outbox_not_sent": pending,
            "outbox_retried": services.outbox.stats.retried, "db_bytes": db_size,
        })
    finally:
        if runtime is not None:  # the bot first: it long-polls the sandbox
            await runtime.stop()
        with contextlib.suppress(Exception):
            parent_end.send({"kind": "stop"})
        child.join(10)
        if child.is_alive():
            child.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def _start_py_spy(args: argparse.Namespace, phase: str) -> list[subprocess.Popen[bytes]] | None:
    if not args.py_spy:
        return None
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = Path(args.py_spy)
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for who, pid in (("bot", os.getpid()),
                     *[("telegram", p.pid) for p in multiprocessing.active_children()]):
        procs.append(subprocess.Popen(  # noqa: S603 - our own profiler, our own pids
            [exe, "record", "--pid", str(pid), "--rate", str(args.py_spy_rate), "--nonblocking",
             "--format", "raw", "--output", str(out / f"{who}-{phase}.txt"), "--threads"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    time.sleep(0.5)  # let it attach
    return procs


def _stop_py_spy(procs: list[subprocess.Popen[bytes]] | None) -> None:
    for proc in procs or []:
        proc.send_signal(signal.SIGINT)
    for proc in procs or []:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)


def report(args: argparse.Namespace, run_no: int, phases: list[Phase],
           db: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {"run": run_no, **db}
    for phase in phases:
        r = phase.result
        ms = lambda xs, p: round(pct(xs, p) * 1000, 1)  # noqa: E731
        lag_ms = [x * 1000 for x in phase.lag]
        line = {
            "n": r["n"], "receipts": r["receipts"], "cards": r["cards"], "refused": r["refused"],
            "bot_cpu_s": round(phase.bot_cpu, 2), "bot_wall_s": round(phase.bot_wall, 2),
            "bot_cpu_ms_per_tip": round(phase.bot_cpu / max(r["n"], 1) * 1000, 2),
            "loop_thread_cpu_ms_per_tip": round(phase.loop_cpu / max(r["n"], 1) * 1000, 2),
            "loop_thread_busy_pct": round(phase.loop_cpu / phase.bot_wall * 100),
            **phase.db,
            "telegram_cpu_ms_per_tip": round(r["telegram_cpu"] / max(r["n"], 1) * 1000, 2),
            "loop_lag_p99_ms": round(pct(lag_ms, 99), 1),
            "loop_lag_max_ms": round(max(lag_ms, default=0.0), 1),
            "http_429": r["http_429"],
            "api_calls_per_tip": {m: round(n / max(r["n"], 1), 2)
                                  for m, n in sorted(r["api_calls"].items())},
            "receipt_p50_ms": ms(r["receipt_lat"], 50), "receipt_p99_ms": ms(r["receipt_lat"], 99),
            "card_p50_ms": ms(r["card_lat"], 50), "card_p95_ms": ms(r["card_lat"], 95),
            "card_p99_ms": ms(r["card_lat"], 99),
            "card_max_ms": round(max(r["card_lat"], default=float("nan")) * 1000, 1),
        }
        line["failed"] = r["n"] - r["receipts"]
        if phase.name == "throughput" and r["receipt_at"] and r["card_at"]:
            receipt_at, card_at = r["receipt_at"], r["card_at"]
            last_receipt, last_card = receipt_at[-1], card_at[-1]
            line["receipt_tips_per_s"] = round(len(receipt_at) / last_receipt, 1)
            line["card_tips_per_s"] = round(len(card_at) / max(last_card, last_receipt), 1)
            line["receipts_done_s"] = round(last_receipt, 2)
            line["cards_done_s"] = round(last_card, 2)
            for key, times in (("receipt_rate_mid80", receipt_at), ("card_rate_mid80", card_at)):
                lo, hi = int(len(times) * 0.1), int(len(times) * 0.9) - 1
                if hi > lo and times[hi] > times[lo]:  # steady rate, no start-up, no tail
                    line[key] = round((hi - lo) / (times[hi] - times[lo]), 1)
        if phase.name.startswith("latency"):
            line["achieved_press_rate"] = round(
                (r["pressed"] - 1) / r["press_span"], 1) if r["press_span"] else None
        figures[phase.name] = line
    if not args.quiet:
        for phase in phases:
            if phase.name == "warmup":
                continue
            log(f"run {run_no} {phase.name}: "
                + json.dumps(figures[phase.name], ensure_ascii=False))
        log(f"run {run_no} db: " + json.dumps(db))
    return figures


COMMON_KEYS = ["failed", "bot_cpu_ms_per_tip", "loop_thread_cpu_ms_per_tip",
               "loop_thread_busy_pct", "telegram_cpu_ms_per_tip", "write_tx_per_tip",
               "lock_wait_p99_ms", "lock_hold_p50_ms", "lock_hold_p99_ms",
               "lock_held_pct_of_wall", "loop_lag_p99_ms", "http_429", "gc_ms",
               "gc_full_runs", "gc_full_max_ms"]
MEDIAN_KEYS = {
    "throughput": ["receipt_tips_per_s", "card_tips_per_s", "receipt_rate_mid80",
                   "card_rate_mid80", "receipts_done_s", "cards_done_s", "receipt_p50_ms",
                   "card_p50_ms", "card_p99_ms", *COMMON_KEYS],
    "latency": ["achieved_press_rate", "receipt_p50_ms", "receipt_p99_ms", "card_p50_ms",
                "card_p95_ms", "card_p99_ms", "card_max_ms", *COMMON_KEYS],
}


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tips", type=int, default=300,
                        help="confirms fired at once in the throughput phase (default 300; "
                        "more than ~15 s of work makes Telegram expire the button presses)")
    parser.add_argument("--rate", default="50",
                        help="confirms per second in the latency phase; a comma-separated list "
                        "runs one phase per rate (default 50)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each latency phase (default 10)")
    parser.add_argument("--communes", type=int, default=100,
                        help="police groups, one per real commune (default 100)")
    parser.add_argument("--warmup", type=int, default=20, help="sequential warm-up tips")
    parser.add_argument("--limits", choices=["off", "telegram"], default="off",
                        help="off: no flood limits (sandbox nor bot pacing); telegram: as shipped")
    parser.add_argument("--runs", type=int, default=1, help="repeat, then print medians")
    parser.add_argument("--json", help="write every run's figures to this file")
    parser.add_argument("--prepare", choices=["bulk", "service"], default="bulk",
                        help="drafts of the measured residents: inserted as Draft rows (bulk, "
                        "default) or each through IntakeService (5 transactions, slow)")
    parser.add_argument("--cprofile", help="write cProfile stats of the bot process per phase "
                        "into this directory (slows the bot ~2x: for call counts, not speed)")
    parser.add_argument("--gc", choices=["settled", "default"], default="settled",
                        help="the garbage collector as the bot's entry points leave it "
                        "(settled, default) or Python's defaults")
    parser.add_argument("--py-spy-rate", type=int, default=100,
                        help="py-spy samples per second (default 100)")
    parser.add_argument("--py-spy", help="record py-spy raw stacks of both processes per phase "
                        "into this directory (py-spy must be installed)")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args()

    log(f"machine: {machine()}")
    log(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    runs = [asyncio.run(run_once(args, i + 1)) for i in range(args.runs)]
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    print(f"\n=== median of {len(runs)} run(s), limits={args.limits}, {args.communes} communes")
    for phase in [p for p in runs[0] if isinstance(runs[0][p], dict)]:
        keys = MEDIAN_KEYS["throughput" if phase == "throughput" else "latency"]
        if phase == "warmup" or not all(phase in r for r in runs):
            continue
        for key in keys:
            values = [r[phase][key] for r in runs if r[phase].get(key) is not None]
            if values:
                print(f"  {phase:12s} {key:28s} {statistics.median(values):9.1f}   "
                      f"(runs: {', '.join(f'{v:g}' for v in values)})")
    incomplete = [r["run"] for r in runs if r["outbox_not_sent"] or any(
        isinstance(v, dict) and (v["receipts"] != v["n"] or v["cards"] != v["receipts"])
        for v in r.values())]
    refusals = sorted({text for r in runs for v in r.values() if isinstance(v, dict)
                       for text in v["refused"]})
    print("  every confirm got its receipt and its card" if not incomplete else
          f"  runs with failed confirms or missing cards: {incomplete}; replies instead of a "
          f"receipt: {refusals}")


if __name__ == "__main__":
    main()
