"""The morning summary: at 07:30 ICT every linked police group gets yesterday's figures and
the backlog now for its commune or province (bot/domain/kpi.py ``morning_summary_job``),
once a day, also when the bot was down at 07:30 and came back within the rounds' grace."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlmodel import select

from bot.sandbox import BotApiSandbox
from storage.models import JobRun
from tests.conftest import MovableClock, World, running_world
from tests.test_rounds import ICT, add_tips, bot_running, settle
from tests.test_triage_bot import until

TICK = {"round_tick_seconds": 0.2, "morning_summary_at": time(7, 30)}  # the default time


def summaries(world: World, chat_id: int) -> list[str]:
    return [m["text"] for m in world.sandbox.bot_messages(chat_id)
            if m["text"].startswith("☀️")]


def expected(area: str, day: datetime) -> str:
    return (
        f"☀️ Tổng hợp đầu ngày – {area}\n"
        f"Hôm qua ({day:%d/%m/%Y}): nhận 3 tin, đã tiếp nhận 2, đã xử lý xong 1.\n"
        "Hiện tại: 2 tin chưa xử lý xong, 1 tin quá hạn.\n"
        "❌ Chưa đạt chỉ tiêu: 1 tin chưa tiếp nhận đã quá hạn.\n"
        "Danh sách: /overdue"
    )


async def yesterdays_tips(world: World, t0: datetime) -> None:
    """Three tips received at ``t0``: one taken up, one handled, one urgent never taken up
    (overdue an hour later)."""
    x = world.demo.commune_group.id
    await add_tips(world.services.db, [
        {"created_at": t0, "queue_chat_id": x, "status": "acknowledged",
         "acknowledged_at": t0 + timedelta(hours=1), "owner_name": "Bình Lê Thị"},
        {"created_at": t0, "queue_chat_id": x, "status": "processed", "outcome": "agency",
         "acknowledged_at": t0 + timedelta(hours=1), "closed_at": t0 + timedelta(hours=2)},
        {"created_at": t0, "queue_chat_id": x, "urgent": True, "ack": timedelta(hours=1)},
    ])


async def test_each_group_gets_its_summary_at_07_30_once(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    day = datetime.combine(clock.now().astimezone(ICT).date(), time(10, 0), ICT)
    clock.set(day.astimezone(UTC))
    commune_chat = province_chat = 0
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        commune_chat = world.demo.commune_group.id
        province_chat = world.demo.province_group.id
        await yesterdays_tips(world, clock.now())
        clock.set(datetime.combine(day.date() + timedelta(days=1), time(7, 29), ICT)
                  .astimezone(UTC))
        await settle(world, clock)
        assert summaries(world, commune_chat) == []  # not before 07:30

        clock.set(datetime.combine(day.date() + timedelta(days=1), time(7, 31), ICT)
                  .astimezone(UTC))
        await until(lambda: len(summaries(world, province_chat)) == 1, 10)
        await until(lambda: len(summaries(world, commune_chat)) == 1, 10)
        assert summaries(world, commune_chat) == [expected("Xã Phúc Khánh", day)]
        assert summaries(world, province_chat) == [expected("Tỉnh Lào Cai", day)]
        # the residents' chats and the ops chat get none
        assert summaries(world, world.demo.ops_group.id) == []

        clock.advance(minutes=30)
        await settle(world, clock)
        await asyncio.sleep(0.5)  # a few more ticks
        assert len(summaries(world, commune_chat)) == 1

    async with bot_running(sandbox, database_url, tmp_path, clock, world, **TICK) as again:
        clock.advance(minutes=20)  # a restart the same morning: not sent again
        await settle(again, clock)
        await asyncio.sleep(0.5)
        assert len(summaries(again, commune_chat)) == 1
        async with again.services.db.session() as session:
            runs = (await session.exec(select(JobRun).where(
                JobRun.job == "summary", JobRun.scope != "round"))).all()
        assert sorted((run.scope, run.status) for run in runs) == sorted([
            (f"chat:{commune_chat}", "sent"), (f"chat:{province_chat}", "sent")])


async def test_a_summary_missed_while_down_goes_out_once_when_back(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    day = datetime.combine(clock.now().astimezone(ICT).date(), time(10, 0), ICT)
    clock.set(day.astimezone(UTC))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        await yesterdays_tips(world, clock.now())
    # down from 10:00 until 09:00 the next day (07:30 passed meanwhile)
    clock.set(datetime.combine(day.date() + timedelta(days=1), time(9, 0), ICT).astimezone(UTC))
    async with bot_running(sandbox, database_url, tmp_path, clock, world, **TICK) as again:
        await until(lambda: len(summaries(again, world.demo.commune_group.id)) == 1, 10)
        assert summaries(again, world.demo.commune_group.id) == [
            expected("Xã Phúc Khánh", day)]
    async with bot_running(sandbox, database_url, tmp_path, clock, world, **TICK) as third:
        clock.advance(minutes=5)
        await settle(third, clock)
        await asyncio.sleep(0.5)
        assert len(summaries(third, world.demo.commune_group.id)) == 1


async def test_no_summary_when_switched_off(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    day = datetime.combine(clock.now().astimezone(ICT).date(), time(10, 0), ICT)
    clock.set(day.astimezone(UTC))
    async with running_world(sandbox, database_url, tmp_path, clock=clock,
                             **(TICK | {"morning_summary_at": None})) as world:
        await yesterdays_tips(world, clock.now())
        clock.set(datetime.combine(day.date() + timedelta(days=1), time(7, 45), ICT)
                  .astimezone(UTC))
        await settle(world, clock)
        await asyncio.sleep(0.5)
        assert summaries(world, world.demo.commune_group.id) == []
