"""Benchmark the KPIs behind /stats and /overdue on 1,000,000 tips.

Plain script (not a test):

    .venv/bin/python bench/bench_kpi.py                       # SQLite, /tmp/tipline-bench-kpi.db
    .venv/bin/python bench/bench_kpi.py --database-url postgresql://postgres@127.0.0.1:5432/kpibench

Generates (once; reused while it holds the same number of tips) N tips (default 1,000,000)
over the 3,321 communes and the 12 months before "now" (01/12/2026 09:00 ICT), with bulk
inserts (SQLite: executemany in one transaction; PostgreSQL: COPY), then times with the real
``KpiService`` over the real ``KpiStore``, median of --runs runs after one warm-up:

- province /stats for a month (the province with the most communes, and Lào Cai): the
  report (totals, categories, days, communes, percentiles) + the backlog now, without the
  chart. Target < 100 ms.
- commune /stats (Xã Phúc Khánh) for the last 7 days and for a month. Target < 20 ms.
- /overdue for the province and the commune; the morning summary's figures.
- the chart (Pillow) for a 30-day month. Target < 300 ms.

and prints the SQL statements of a province month with their query plans (EXPLAIN QUERY
PLAN on SQLite; EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL). The database is not kept in the
repository: pass a path outside it (the default is under /tmp).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import sqlalchemy as sa
from sqlalchemy import event

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.deadlines import DeadlinePolicy
from bot.domain.kpi import Area, KpiService, parse_period, yesterday
from bot.domain.kpi_chart import ChartLabels, render_chart
from storage import migrate
from storage.db import Database
from storage.kpi import KpiStore

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ICT).astimezone(UTC)
DAYS = 365
POLICY = DeadlinePolicy()
COLUMNS = (
    "code", "channel", "commune_code", "province_code", "category", "urgent", "description",
    "content_hash", "status", "queue_scope", "created_at", "ack_due_at", "settle_due_at",
    "updated_at", "acknowledged_at", "closed_at", "owner_id", "owner_name", "outcome",
    "transfers", "photo_count",
)
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PHUC_KHANH, LAO_CAI = 2998, 15


def _sqlite_time(moment: datetime | None) -> str | None:
    """As SQLAlchemy stores a UTC datetime in SQLite (storage.models.UTCDateTime)."""
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(count: int, directory: CommuneDirectory, categories: list[str],
             seed: int = 20261201) -> Any:
    """Rows (tuples in COLUMNS order, datetimes aware UTC). Busy and quiet communes; most
    tips older than their settlement window are closed, a few are left open (overdue)."""
    rng = random.Random(seed)
    communes = [c for p in directory.provinces() for c in directory.communes_of(p.code)]
    weights = [rng.lognormvariate(0, 0.6) for _ in communes]
    picks = rng.choices(communes, weights=weights, k=count)
    cat_weights = [5, 6, 3, 5, 3, 2, 4, 2, 1, 3][:len(categories)]
    for index, commune in enumerate(picks):
        received = NOW - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        urgent = rng.random() < 0.05
        ack_due = POLICY.ack_due(received, urgent=urgent)
        settle_due = POLICY.settle_due(received)
        age = (NOW - received).total_seconds()
        ack_delay = rng.expovariate(1 / (1800 if urgent else 6 * 3600))
        acknowledged = received + timedelta(seconds=ack_delay)
        roll = rng.random()
        status, closed, outcome = "new", None, None
        if acknowledged > NOW:
            acknowledged = None  # type: ignore[assignment]
        elif (age > 25 * 86400 and roll < 0.985) or (age <= 25 * 86400 and roll < 0.6):
            closed = acknowledged + timedelta(seconds=rng.uniform(3600, 22 * 86400))
            if closed > NOW:
                status, closed = "verifying", None
            else:
                status, outcome = ("invalid", "spam") if rng.random() < 0.1 else \
                    ("processed", "admin")
        else:
            status = "acknowledged" if rng.random() < 0.5 else "verifying"
        if status == "new":
            acknowledged = None  # type: ignore[assignment]
        code = "".join(rng.choice(ALPHABET) for _ in range(8))
        yield (
            f"{code[:4]}-{code[4:]}{index:07d}"[:16], "telegram", commune.code,
            commune.province_code, rng.choices(categories, weights=cat_weights)[0], urgent,
            "bench", f"{index:064x}", status, "commune", received, ack_due, settle_due,
            closed or acknowledged or received, acknowledged, closed,
            7100000002 if acknowledged else None, "Cán bộ" if acknowledged else None,
            outcome, 0, 0,
        )


async def _count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM tips"))).scalar_one())


def _load_sqlite(path: str, rows: Any) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        marks = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO tips ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608 (constants)
        batch: list[tuple[Any, ...]] = []
        conn.execute("BEGIN")
        for row in rows:
            batch.append(tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in row))
            if len(batch) == 50_000:
                conn.executemany(sql, batch)
                batch.clear()
        if batch:
            conn.executemany(sql, batch)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _load_postgres(url: str, rows: Any) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY tips ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tips")


async def prepare(db: Database, url: str, count: int, directory: CommuneDirectory) -> None:
    await migrate.upgrade(db)
    existing = await _count(db)
    if existing == count:
        print(f"reusing {existing:,} tips")
        return
    if existing:
        raise SystemExit(f"the database holds {existing:,} tips, not {count:,}: use another "
                         "path/database or empty it")
    categories = [c.key for c in Categories.load().all()]
    started = time.perf_counter()
    rows = generate(count, directory, categories)
    if db.engine.dialect.name == "sqlite":
        path = sa.engine.make_url(url).database
        assert path
        await asyncio.to_thread(_load_sqlite, path, rows)
    else:
        await asyncio.to_thread(_load_postgres, url, rows)
    print(f"generated and inserted {count:,} tips in {time.perf_counter() - started:.1f} s")


async def timed(label: str, runs: int, work: Callable[[], Awaitable[Any]],
                results: list[tuple[str, float, float, float]]) -> Any:
    value = await work()  # warm-up (statement cache, pages)
    samples = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        value = await work()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    results.append((label, statistics.median(samples), samples[0], samples[-1]))
    return value


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite+aiosqlite:////tmp/tipline-bench-kpi.db")
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-plans", action="store_true")
    args = parser.parse_args()
    url = args.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]

    directory = CommuneDirectory.load()
    db = Database(url)
    try:
        await prepare(db, url, args.tips, directory)
        kpi = KpiService(KpiStore(db), directory)
        biggest = max(directory.provinces(), key=lambda p: len(directory.communes_of(p.code)))
        month = parse_period("2026-11", NOW, ICT)
        week = parse_period("week", NOW, ICT)
        assert month is not None and week is not None
        results: list[tuple[str, float, float, float]] = []

        async def stats(area: Area, period: Any) -> Any:
            return await kpi.report(area, period, NOW)  # the figures + the backlog now

        big = Area("province", biggest.code, biggest.name)
        lao_cai = Area("province", LAO_CAI, "Tỉnh Lào Cai")
        commune = Area("commune", PHUC_KHANH, "Xã Phúc Khánh")
        report = await timed(
            f"province /stats month: {biggest.name} ({len(directory.communes_of(biggest.code))}"
            " communes)", args.runs, lambda: stats(big, month), results)
        big_received = report.totals.received
        await timed("province /stats month: Tỉnh Lào Cai (99 communes)", args.runs,
                    lambda: stats(lao_cai, month), results)
        await timed("province /stats week: " + biggest.name, args.runs,
                    lambda: stats(big, week), results)
        commune_month = await timed("commune /stats month: Xã Phúc Khánh", args.runs,
                                    lambda: stats(commune, month), results)
        await timed("commune /stats week: Xã Phúc Khánh", args.runs,
                    lambda: stats(commune, week), results)
        await timed("province /overdue: " + biggest.name, args.runs,
                    lambda: kpi.overdue(big, NOW), results)
        await timed("commune /overdue: Xã Phúc Khánh", args.runs,
                    lambda: kpi.overdue(commune, NOW), results)

        async def morning() -> Any:  # yesterday's figures + the backlog now
            return await kpi.report(commune, yesterday(NOW, ICT), NOW)

        await timed("morning summary figures: one commune", args.runs, morning, results)
        await timed("all of Vietnam /stats month (not a command; for scale)", 5,
                    lambda: stats(Area("all"), month), results)

        labels = ChartLabels("Xã Phúc Khánh – 01/11–30/11/2026",
                             "Tin báo nhận mỗi ngày và số đã xử lý xong (theo ngày nhận)",
                             "Tin đã nhận", "Đã xử lý xong", "Tỷ lệ đúng hạn theo ngày nhận",
                             "Chỉ tiêu 100%", "Không có tin báo nào trong kỳ này.")
        chart_samples = []
        for daily in [report.daily] * (args.runs + 1):
            started = time.perf_counter()
            png = await asyncio.to_thread(render_chart, daily, labels)
            chart_samples.append((time.perf_counter() - started) * 1000)
        chart_samples = sorted(chart_samples[1:])
        results.append((f"chart render, 30 days, off the loop ({len(png):,} bytes PNG)",
                        statistics.median(chart_samples), chart_samples[0],
                        chart_samples[-1]))

        for where, how in (("nothing (the VM's own noise)", "idle"),
                           ("5 charts drawn on the loop", "inline"),
                           ("5 charts drawn off the loop (as /stats does)", "thread")):
            lags = sorted([await loop_lag(lambda: render_chart(report.daily, labels), how)
                           for _ in range(5)])
            results.append((f"event-loop stall, worst 1 ms tick during {where}",
                            statistics.median(lags), lags[0], lags[-1]))

        print(f"\n{db.engine.dialect.name}, {await _count(db):,} tips, "
              f"Python {platform.python_version()}, {os.cpu_count()} CPUs; "
              f"{biggest.name} received {big_received:,} tips in November, Xã Phúc Khánh "
              f"{commune_month.totals.received}; median of {args.runs} runs after a warm-up")
        print("| what | median ms | min | max |\n|---|---|---|---|")
        for label, median, low, high in results:
            print(f"| {label} | {median:.1f} | {low:.1f} | {high:.1f} |")
        if not args.no_plans:
            await plans(db, kpi, big, month, commune)
    finally:
        await db.close()


async def loop_lag(render: Callable[[], bytes], how: str) -> float:
    """The longest a 1 ms ticker waited beyond its tick while 5 charts were drawn (or for
    as long, idle): what a Telegram update arriving meanwhile would wait."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, (time.perf_counter() - started) * 1000 - 1)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    for _ in range(5):
        if how == "thread":
            await asyncio.to_thread(render)
        elif how == "inline":
            render()
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(0.03)
    done = True
    await task
    return worst


async def plans(db: Database, kpi: KpiService, province: Area, month: Any,
                commune: Area) -> None:
    """Every statement of a province month and a commune backlog, with its plan."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    await kpi.report(province, month, NOW)
    await kpi.overdue(province, NOW)
    await kpi.report(commune, month, NOW)
    await kpi.overdue(commune, NOW)
    event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    postgres = db.engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
    for statement, parameters in captured:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        print("\n```sql\n" + " ".join(statement.split()) + "\n```")
        async with db.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
        print("```\n" + "\n".join(
            str(row[0]) if postgres else f"{'  ' * (row[1] > 0)}{row[-1]}" for row in rows)
            + "\n```")


if __name__ == "__main__":
    asyncio.run(main())
