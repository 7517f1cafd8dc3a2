"""The day before a built-in campaign (18/8, 25/6) each linked commune police group is told
"📣 Ngày mai có chiến dịch…" by a round (job ``campaign_eve``, bot/domain/broadcast/
campaigns.py ``heads_up_job``): once per group, through the outbox (retried after a 5xx or a
429, after due tip cards), caught up after a restart within the rounds' grace, never on
another day. The real bot against the sandbox with a MovableClock, on SQLite and PostgreSQL;
what each chat received is asserted, and the ``job_runs`` / outbox rows behind it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from sqlmodel import select

from bot.domain.broadcast.campaigns import HEADS_UP_JOB, heads_up_job, load_builtins
from bot.domain.outbox import OutboxKind
from bot.domain.rounds import DailySchedule, Group, RoundWindow
from bot.i18n import Translator
from bot.sandbox import BotApiSandbox
from bot.sandbox_mode import DEMO_COMMUNE_CODE, DEMO_PROVINCE_CODE
from storage.models import JobRun, OutboxMessage
from tests.conftest import MovableClock, World, running_world
from tests.test_intake_bot import press_and_wait, write_tip
from tests.test_rounds import ICT, bot_running, outbox_idle, second_group
from tests.test_triage_bot import until

TICK = {"round_tick_seconds": 0.2, "morning_summary_at": None}
EVE_19_8 = ("📣 Ngày mai có chiến dịch: dự kiến nhiều tin báo hơn "
            "(19/8 – Ngày hội toàn dân bảo vệ an ninh Tổ quốc).")
EVE_26_6 = ("📣 Ngày mai có chiến dịch: dự kiến nhiều tin báo hơn "
            "(26/6 – Ngày toàn dân phòng, chống ma túy).")


def ict(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0
        ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ICT).astimezone(UTC)


def heads_ups(world: World, chat_id: int) -> list[str]:
    return [m["text"] for m in world.sandbox.bot_messages(chat_id)
            if m.get("text", "").startswith("📣")]


async def handled(world: World, day: date) -> bool:
    """The heads-up round of ``day`` was run (whatever it sent)."""
    async with world.services.db.session() as session:
        found = (await session.exec(select(JobRun).where(
            JobRun.job == HEADS_UP_JOB, JobRun.scope == "round",
            JobRun.round_key == day.isoformat()))).first()
    return found is not None


async def settle(world: World, clock: MovableClock) -> None:
    """Today's heads-up round (its slot is past) was run and the outbox sent what it owed."""
    await until(lambda: handled(world, clock.now().astimezone(ICT).date()), timeout=10)
    await until(lambda: outbox_idle(world), timeout=15)
    await world.sandbox.wait_idle(timeout=10)


async def ledger(world: World) -> list[tuple[str, str, str]]:
    """The heads-up's group rows: (scope, round key, status)."""
    async with world.services.db.session() as session:
        runs = (await session.exec(select(JobRun).where(
            JobRun.job == HEADS_UP_JOB, JobRun.scope != "round"))).all()
    return sorted((run.scope, run.round_key, run.status) for run in runs)


# --- what a round composes (no database) ----------------------------------------------------


async def test_the_round_speaks_on_the_eve_only_and_to_commune_groups_only() -> None:
    groups = [Group(-1, "commune", 2998), Group(-2, "province", 15), Group(-3, "commune", 1)]

    async def linked() -> list[Group]:
        return groups

    job = heads_up_job(load_builtins(), linked, at=time(8, 0), zone=ICT,
                       police_texts=Translator.load().for_language("vi"))
    assert job.name == "campaign_eve" and job.schedule == DailySchedule(time(8, 0), ICT)

    async def compose(start: datetime, end: datetime) -> dict[int, tuple[str, ...]]:
        window = RoundWindow(job.name, tuple(job.schedule.slots(start, end)))
        return {d.chat_id: d.parts for d in await job.compose(window, end)}

    assert await compose(ict(2026, 8, 18, 7), ict(2026, 8, 18, 9)) == {
        -1: (EVE_19_8,), -3: (EVE_19_8,)}
    assert await compose(ict(2027, 6, 25, 7), ict(2027, 6, 25, 9)) == {
        -1: (EVE_26_6,), -3: (EVE_26_6,)}
    for day in (date(2026, 8, 17), date(2026, 8, 19), date(2026, 6, 26), date(2026, 12, 31)):
        assert await compose(ict(day.year, day.month, day.day, 7),
                             ict(day.year, day.month, day.day, 9)) == {}
    # the eve's slot coalesced with the campaign day's (a grace over a day): "tomorrow" would
    # be wrong on the day itself, so nothing
    assert await compose(ict(2026, 8, 18, 7), ict(2026, 8, 19, 9)) == {}


# --- end to end -----------------------------------------------------------------------------


async def test_on_the_eve_at_8_every_linked_commune_group_is_told_once(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 8, 18, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        y, _code = await second_group(world)
        clock.set(ict(2026, 8, 18, 7, 59))
        await asyncio.sleep(0.6)  # a few ticks: not yet
        assert heads_ups(world, x) == [] and not await handled(world, date(2026, 8, 18))

        clock.set(ict(2026, 8, 18, 8, 0, 30))  # the 08:00 slot runs 30 s after (SETTLE)
        await settle(world, clock)
        assert heads_ups(world, x) == [EVE_19_8]
        assert heads_ups(world, y) == [EVE_19_8]
        assert heads_ups(world, world.demo.province_group.id) == []
        assert heads_ups(world, world.demo.ops_group.id) == []

        clock.advance(minutes=30)
        await asyncio.sleep(0.6)
        await settle(world, clock)
        assert len(heads_ups(world, x)) == 1 and len(heads_ups(world, y)) == 1
        assert await ledger(world) == [
            (f"chat:{x}", "2026-08-18", "sent"), (f"chat:{y}", "2026-08-18", "sent")]

    # a restart the same morning, within the grace: not told again
    clock.advance(minutes=20)
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as again:
        await settle(again, clock)
        await asyncio.sleep(0.6)
        assert len(heads_ups(again, x)) == 1 and len(heads_ups(again, y)) == 1
        async with again.services.db.session() as session:
            digests = (await session.exec(select(OutboxMessage).where(
                OutboxMessage.kind == OutboxKind.DIGEST))).all()
        assert sorted(row.status for row in digests) == ["sent", "sent"]


async def test_a_bot_down_at_8_on_the_eve_tells_them_once_when_back(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2027, 6, 25, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        await asyncio.sleep(0.4)
        assert heads_ups(world, x) == []
    clock.set(ict(2027, 6, 25, 11, 0))  # down from 07:00 to 11:00: within the 6 h grace
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as again:
        await until(lambda: len(heads_ups(again, x)) == 1, 10)
        assert heads_ups(again, x) == [EVE_26_6]
    clock.advance(minutes=30)
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as third:
        await settle(third, clock)
        await asyncio.sleep(0.6)
        assert heads_ups(third, x) == [EVE_26_6]
        assert await ledger(third) == [(f"chat:{x}", "2027-06-25", "sent")]


async def test_past_the_grace_or_on_the_day_itself_it_is_not_sent_late(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 8, 18, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
    clock.set(ict(2026, 8, 18, 14, 5))  # back past the grace (6 h after 08:00:30)
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as again:
        await asyncio.sleep(0.6)
        assert heads_ups(again, x) == []
        assert not await handled(again, date(2026, 8, 18))  # skipped for good
    # a grace longer than a day: down from the eve 07:00 to the day itself 09:00, the eve's
    # slot is caught up with the day's, and "tomorrow" is not said on the day
    clock.set(ict(2027, 8, 18, 7, 0))
    async with bot_running(sandbox, database_url, tmp_path, clock, world,
                           round_misfire_grace_minutes=30 * 60) as long_grace:
        await asyncio.sleep(0.4)
    clock.set(ict(2027, 8, 19, 9, 0))
    async with bot_running(sandbox, database_url, tmp_path, clock, world,
                           round_misfire_grace_minutes=30 * 60) as long_grace:
        await settle(long_grace, clock)
        assert await handled(long_grace, date(2027, 8, 18))
        await asyncio.sleep(0.4)
        assert heads_ups(long_grace, x) == []
        assert await ledger(long_grace) == []


async def test_nothing_on_other_days(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 8, 17, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        for day in (date(2026, 8, 17), date(2026, 8, 19), date(2026, 8, 20),
                    date(2026, 12, 31), date(2027, 1, 1), date(2027, 6, 24),
                    date(2027, 6, 26)):
            clock.set(ict(day.year, day.month, day.day, 8, 1))
            await settle(world, clock)
        await asyncio.sleep(0.4)
        assert heads_ups(world, x) == []
        assert heads_ups(world, world.demo.province_group.id) == []
        assert await ledger(world) == []  # each day's round ran and sent nothing


@pytest.mark.parametrize("error", [(502, "Bad Gateway"),
                                   (429, "Too Many Requests: retry after 1", 1)])
async def test_a_group_whose_first_send_fails_still_gets_it_once(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
    error: tuple[int, str] | tuple[int, str, int],
) -> None:
    clock = MovableClock(ict(2026, 8, 18, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        y, _code = await second_group(world)
        await sandbox.wait_idle()
        sandbox.inject_errors("sendMessage", [error], chat_id=x)
        clock.set(ict(2026, 8, 18, 8, 0, 30))
        await until(lambda: len(heads_ups(world, x)) == 1, timeout=15)
        await settle(world, clock)
        await asyncio.sleep(0.4)
        assert heads_ups(world, x) == [EVE_19_8] and heads_ups(world, y) == [EVE_19_8]
        refused = [c for c in sandbox.method_calls("sendMessage") if not c["ok"]]
        assert [(c["error_code"], str(c["params"]["chat_id"])) for c in refused] == [
            (error[0], str(x))]  # the first try was refused: the heads-up is its retry
        assert await ledger(world) == [
            (f"chat:{x}", "2026-08-18", "sent"), (f"chat:{y}", "2026-08-18", "sent")]


async def test_a_tip_card_confirmed_at_the_same_moment_is_not_held_behind_it(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    """91 commune groups are told (about three seconds at 30 messages a second); a tip
    confirmed as the round is queued reaches its group before the heads-ups are all out
    (the outbox sends due cards before digests), once, and its reporter gets the receipt."""
    clock = MovableClock(ict(2026, 8, 18, 7, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        services = world.services
        x = world.demo.commune_group.id
        others = [c for c in services.directory.communes_of(DEMO_PROVINCE_CODE)
                  if c.code != DEMO_COMMUNE_CODE][:90]
        groups = [x]
        for number, commune in enumerate(others):
            chat = sandbox.create_group(f"Công an {commune.name}",
                                        members=[world.demo.officer.id],
                                        chat_id=-5000100000 - number)
            await services.linking.link(chat_id=chat.id, scope="commune", code=commune.code,
                                        linked_by=world.demo.admin.id)
            groups.append(chat.id)
        resident = world.demo.residents[0]
        prompt = await write_tip(world, resident, text="Có người lạ đột nhập kho.")
        [review] = await press_and_wait(world, resident, prompt, "d:done")
        await sandbox.wait_idle(timeout=10)

        clock.set(ict(2026, 8, 18, 8, 0, 30))
        await until(lambda: handled(world, date(2026, 8, 18)), timeout=10)  # 91 queued
        await world.press(resident, review, "d:ok")  # confirmed now
        await until(lambda: receipts(world, resident.id), timeout=10)
        [code] = receipts(world, resident.id)
        await until(lambda: any(code in m.get("text", "")
                                for m in sandbox.bot_messages(x)), timeout=10)
        await settle(world, clock)
        assert all(len(heads_ups(world, chat)) == 1 for chat in groups)
        assert receipts(world, resident.id) == [code]

        sends = [c for c in sandbox.method_calls("sendMessage") if c["ok"]]
        cards = [i for i, c in enumerate(sends) if code in c["params"].get("text", "")
                 and str(c["params"]["chat_id"]) == str(x)]
        assert len(cards) == 1
        told_before = sum(1 for c in sends[:cards[0]] if c["params"]["text"].startswith("📣"))
        # first come, first served it would follow all 91; it came after about 30 (those
        # already in flight): the card did not wait for them
        assert told_before < 70, told_before


def receipts(world: World, chat_id: int) -> list[str]:
    """The receipt codes the reporter was given."""
    return [m["text"].split("Mã tra cứu: ")[1][:9] for m in world.sandbox.bot_messages(chat_id)
            if m.get("text", "").startswith("✅ Đã nhận tin báo")]
