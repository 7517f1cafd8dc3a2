"""Benchmark a reminder round over 10,000 open tips (issue 10: < 1 s).

Plain script (not a test):

    .venv/bin/python bench/bench_rounds.py [--tips 10000] [--groups 500] [--runs 5]
    .venv/bin/python bench/bench_rounds.py --database-url postgresql://postgres@127.0.0.1/test

A fresh database (a SQLite file in a temporary folder, or a new PostgreSQL database created
next to the one named and dropped after), migrated, with ``--tips`` open tips in ``--groups``
commune groups (real communes, each province's group linked), then the round exactly as the
scheduler's tick runs it (``RoundEngine.run_due(now)`` with the reminder job: the candidate
query, which tips a slot lists, the digests' texts, and the claim: ``job_runs`` rows and the
digests' outbox rows in one transaction). Two scenarios:

* ``all due``: every tip reaches its 50% point in the round (the worst case: every group gets
  a digest, 10,000 tips listed);
* ``spread``: the tips' ages spread over 20 days (a normal round: few are due).

Each run claims the round afresh (its rows are deleted between runs, not timed); the median
of ``--runs`` is reported, plus the whole tick (reminders, escalations, the cards' overdue
mark) on the "spread" set.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.reminders import DigestTexts, ReminderPolicy, Reminders
from bot.domain.rounds import RoundEngine
from bot.i18n import Translator
from storage import migrate
from storage.db import Database
from storage.rounds import RoundsStore
from storage.tables import job_runs, links, outbox, tips

POLICY = ReminderPolicy()
CODE_LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def tip_rows(
    count: int, communes: list[tuple[int, int, int]], now: datetime, *, all_due: bool,
    rng: random.Random,
) -> list[dict[str, object]]:
    schedule = POLICY.schedule
    slot = schedule.at(schedule.index(now))
    rows = []
    for n in range(count):
        commune, province, chat = communes[n % len(communes)]
        if all_due:  # the 50% point of a 24 h window in the slot due now
            created = slot - timedelta(hours=12) + timedelta(minutes=rng.uniform(0.1, 14.9))
            status = "new"
        else:  # received over the last 20 days, a third taken up
            created = now - timedelta(days=rng.uniform(0, 20))
            status = "new" if rng.random() < 0.3 else "acknowledged"
        code = "".join(rng.choices(CODE_LETTERS, k=8))
        rows.append({
            "code": f"{code[:4]}-{code[4:]}", "channel": "telegram", "commune_code": commune,
            "province_code": province, "category": rng.choice(["drugs", "theft", "traffic"]),
            "urgent": False, "description": "bench", "content_hash": f"h{n}",
            "photo_count": 0, "status": status, "queue_scope": "commune",
            "queue_chat_id": chat, "created_at": created, "updated_at": created,
            "ack_due_at": created + timedelta(hours=24),
            "settle_due_at": created + timedelta(days=20),
            "owner_name": None if status == "new" else "Cán bộ Bench", "transfers": 0,
        })
    return rows


async def reset(db: Database) -> None:
    async with db.transaction() as session:
        conn = await session.connection()
        await conn.execute(sa.delete(job_runs))
        await conn.execute(sa.delete(outbox))


async def fill(db: Database, rows: list[dict[str, object]]) -> None:
    async with db.transaction() as session:
        conn = await session.connection()
        await conn.execute(sa.delete(tips))
        for start in range(0, len(rows), 2000):
            await conn.execute(sa.insert(tips), rows[start:start + 2000])


async def timed_runs(
    db: Database, engine: RoundEngine, now: datetime, runs: int
) -> tuple[list[float], int]:
    times, digests = [], 0
    for _ in range(runs):
        await reset(db)
        started = time.perf_counter()
        report = await engine.run_due(now)
        times.append(time.perf_counter() - started)
        digests = report.digests
    return times, digests


async def bench(url: str, count: int, groups: int, runs: int) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    directory = CommuneDirectory.load()
    rng = random.Random(10)
    everything = [c for p in directory.provinces() for c in directory.communes_of(p.code)]
    chosen = rng.sample(everything, groups)
    communes = [(c.code, c.province_code, -7_000_000_000 - i) for i, c in enumerate(chosen)]
    async with db.transaction() as session:
        conn = await session.connection()
        await conn.execute(sa.delete(links))
        provinces = sorted({p for _, p, _ in communes})
        await conn.execute(sa.insert(links), [
            {"chat_id": chat, "scope": "commune", "code": code, "province_code": province,
             "linked_by": 1, "linked_at": datetime.now(UTC)}
            for code, province, chat in communes] + [
            {"chat_id": -8_000_000_000 - p, "scope": "province", "code": p, "province_code": p,
             "linked_by": 1, "linked_at": datetime.now(UTC)} for p in provinces])
    texts = DigestTexts(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"),
                        Translator.load().for_language("vi"))
    store = RoundsStore(db)
    reminders = Reminders(store, texts, policy=POLICY, ops_chat_id=-1)
    reminder_job, escalation_job = reminders.jobs()
    # one slot due: now is just after a slot, the previous one already handled
    schedule = POLICY.schedule
    now = schedule.at(schedule.index(datetime.now(UTC))) + timedelta(minutes=1)
    grace = timedelta(minutes=2)
    only_reminders = RoundEngine(store, grace=grace, jobs=[reminder_job])
    whole = RoundEngine(store, grace=grace, jobs=[reminder_job, escalation_job])
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{backend}, {count:,} open tips in {groups} groups, {runs} runs "
          f"(Python {platform.python_version()}, {platform.machine()})")

    await fill(db, tip_rows(count, communes, now, all_due=True, rng=rng))
    times, digests = await timed_runs(db, only_reminders, now, runs)
    print(f"  reminder round, all due:  median {statistics.median(times) * 1000:7.1f} ms "
          f"(runs {', '.join(f'{t * 1000:.0f}' for t in times)}), {digests} digests")

    await fill(db, tip_rows(count, communes, now, all_due=False, rng=rng))
    times, digests = await timed_runs(db, only_reminders, now, runs)
    print(f"  reminder round, spread:   median {statistics.median(times) * 1000:7.1f} ms "
          f"(runs {', '.join(f'{t * 1000:.0f}' for t in times)}), {digests} digests")

    ticks = []
    for _ in range(runs):
        await reset(db)
        async with db.transaction() as session:
            await (await session.connection()).execute(
                sa.update(tips).values(overdue_marked_at=None))
        started = time.perf_counter()
        await whole.run_due(now)
        marked = await reminders.mark_overdue(now)
        ticks.append(time.perf_counter() - started)
    print(f"  whole tick, spread:       median {statistics.median(ticks) * 1000:7.1f} ms "
          f"(runs {', '.join(f'{t * 1000:.0f}' for t in ticks)}), {marked} cards marked")
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tips", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL: a fresh database is made next to it")
    args = parser.parse_args()
    if args.database_url is None:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            asyncio.run(bench(url, args.tips, args.groups, args.runs))
        return
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(args.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"bench_rounds_{uuid.uuid4().hex[:8]}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(bench(base.set(database=name).render_as_string(hide_password=False),
                          args.tips, args.groups, args.runs))
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
