"""Awareness campaigns end to end: the real bot against the sandbox, time moved with a
MovableClock (the minute tick is called as the JobQueue calls it), on SQLite and PostgreSQL.
What residents and police groups see is asserted, and the rows behind it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.domain.broadcast.records import Outcome
from bot.domain.sealing import ReplyAddress
from bot.sandbox import BotApiSandbox, SandboxUser
from storage.tables import campaign_deliveries, campaign_runs, residents, subscribers
from tests.conftest import MovableClock, World, running_world

ICT = ZoneInfo("Asia/Ho_Chi_Minh")


def ict(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ICT).astimezone(UTC)


def photos(world: World, user: SandboxUser) -> list[dict[str, Any]]:
    return [m for m in world.sandbox.bot_messages(user.id) if "photo" in m]


async def subscribe_all(world: World, user: SandboxUser) -> None:
    [offer] = await world.exchange(user, "/subscribe")
    choices = [b["callback_data"] for row in offer["reply_markup"]["inline_keyboard"]
               for b in row]
    assert choices == ["m:sub:all"]  # no commune used yet: the whole country only
    before = len(world.sandbox.bot_messages(user.id))
    await world.press(user, offer, "m:sub:all")
    [done] = (await world.sandbox.wait_for_bot_messages(user.id, before + 1))[before:]
    assert "19/8" in done["text"]


async def tick(world: World) -> list[int]:
    started = await world.services.campaigns.tick()
    await world.services.campaigns.wait_idle()
    return started


async def start_broadcast(world: World) -> int:
    """The custom campaign due now starts (its run is driven, not awaited): by this tick,
    or by the job queue's own first tick if that came first."""
    scheduler = world.services.campaigns
    started = await scheduler.tick()
    if started:
        return started[0]
    [run] = await scheduler.store.runs_to_drive()
    return run.id


async def active(world: World, user: SandboxUser) -> bool | None:
    pseudonym = world.services.pseudonyms.resident("tg", user.id)
    async with world.services.db.engine.connect() as conn:
        return (await conn.execute(sa.select(subscribers.c.active).where(
            subscribers.c.pseudonym == pseudonym))).scalar()


@pytest.mark.parametrize(("month", "day", "marker"), [(8, 19, "19/8"), (6, 26, "26/6")])
async def test_the_yearly_campaign_goes_out_at_8_to_subscribers_only(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path, month: int, day: int,
    marker: str,
) -> None:
    clock = MovableClock(ict(2026, month, day, 7, 59))
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        dung, emma = world.demo.residents
        blocked = sandbox.create_user("Giang", user_id=7200000010)
        never = sandbox.create_user("Hải", user_id=7200000011)
        for user in (dung, emma, blocked):
            await subscribe_all(world, user)
        await world.exchange(never, "/start")
        await world.exchange(emma, "STOP")  # opted out
        sandbox.block_bot(blocked.id)

        assert await tick(world) == []  # 07:59: not yet
        assert photos(world, dung) == []

        clock.set(ict(2026, month, day, 8, 0))
        assert len(await tick(world)) == 1
        [sent] = photos(world, dung)
        assert marker in sent["caption"]
        assert [[b["callback_data"] for b in row]
                for row in sent["reply_markup"]["inline_keyboard"]] == [["m:unsub"]]
        assert photos(world, emma) == [] and photos(world, never) == []
        assert photos(world, blocked) == []
        assert await active(world, blocked) is False  # 403: inactive
        assert await active(world, emma) is False

        clock.advance(minutes=1)
        assert await tick(world) == []  # never twice
        assert len(photos(world, dung)) == 1
        async with world.services.db.engine.connect() as conn:
            statuses = sorted((await conn.execute(
                sa.select(campaign_deliveries.c.status))).scalars())
        assert statuses == ["inactive", "sent"]

        # English residents get the English text; the button opts out
        before = len(sandbox.bot_messages(dung.id))
        await world.press(dung, sent, "m:unsub")
        [bye] = (await sandbox.wait_for_bot_messages(dung.id, before + 1))[before:]
        assert "không nhận thông báo nữa" in bye["text"]
        assert await active(world, dung) is False


async def test_down_from_7_to_9_still_sends_once_and_a_whole_day_down_skips_it(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 8, 18, 20, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        dung, _emma = world.demo.residents
        await subscribe_all(world, dung)
        clock.set(ict(2026, 8, 19, 9, 0))  # back at 09:00: the 08:00 run was missed
        assert len(await tick(world)) == 1
        clock.set(ict(2026, 8, 19, 9, 30))
        assert await tick(world) == []
        assert len(photos(world, dung)) == 1
        clock.set(ict(2026, 6, 26, 15, 0))  # 26/6 of the next year... grace (6 h) is over
        clock.set(ict(2027, 6, 26, 15, 0))
        assert await tick(world) == []
        assert len(photos(world, dung)) == 1
        async with world.services.db.engine.connect() as conn:
            runs = (await conn.execute(sa.select(sa.func.count()).select_from(
                campaign_runs))).scalar()
        assert runs == 1


async def test_a_custom_campaign_reaches_its_scope_only(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 12, 2, 10, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        services = world.services
        directory = services.directory
        here = directory.commune(2998)
        assert here is not None
        other_commune = next(c for c in directory.communes_of(here.province_code)
                             if c.code != here.code)
        other_province = next(p for p in directory.provinces() if p.code != here.province_code)
        people = {
            "commune": ("commune", here.code), "neighbour": ("commune", other_commune.code),
            "province": ("province", here.province_code),
            "elsewhere": ("province", other_province.code), "all": ("all", None),
        }
        users = {}
        for number, (name, (scope, code)) in enumerate(people.items()):
            user = sandbox.create_user(name, user_id=7300000000 + number)
            sandbox.world.private_state(user)
            users[name] = user
            await services.subscriptions.subscribe(
                services.pseudonyms.resident("tg", user.id),
                ReplyAddress("tg", str(user.id)), scope, code)  # type: ignore[arg-type]
        store = services.campaigns.store
        commune_id = await store.add_custom(
            title="Họp dân", text="Họp dân tại nhà văn hóa xã lúc 19:00.", photo=None,
            scope="commune", scope_code=here.code, send_at=clock.now(), status="scheduled",
            created_by=None, now=clock.now())
        assert len(await tick(world)) == 1
        got = {name for name, user in users.items()
               if any("Họp dân" in m.get("text", "") for m in sandbox.bot_messages(user.id))}
        assert got == {"commune", "province", "all"}
        province_id = await store.add_custom(
            title="Tỉnh", text="Thông báo của Công an tỉnh.", photo=None, scope="province",
            scope_code=here.province_code, send_at=clock.now(), status="scheduled",
            created_by=None, now=clock.now())
        await tick(world)
        got = {name for name, user in users.items()
               if any("Công an tỉnh" in m.get("text", "") for m in sandbox.bot_messages(user.id))}
        assert got == {"commune", "neighbour", "province", "all"}
        for campaign_id in (commune_id, province_id):
            campaign = await store.campaign(campaign_id)
            assert campaign is not None and campaign.status == "done"


@pytest.mark.parametrize("word", ["Dừng", "dừng", "STOP", "stop", "Stop", "  dừng  "])
async def test_stop_words_opt_out(world: World, word: str) -> None:
    dung, _emma = world.demo.residents
    await subscribe_all(world, dung)
    [answer] = await world.exchange(dung, word)
    assert answer["text"] == "Bạn sẽ không nhận thông báo nữa."
    assert await active(world, dung) is False
    await subscribe_all(world, dung)  # only a new opt-in re-activates
    assert await active(world, dung) is True
    [answer] = await world.exchange(dung, "/unsubscribe")
    assert await active(world, dung) is False


async def test_subscribe_offers_the_last_commune_first_and_seals_the_chat(world: World) -> None:
    dung, emma = world.demo.residents
    services = world.services
    pseudonym = services.pseudonyms.resident("tg", dung.id)
    async with services.db.transaction() as session:
        await (await session.connection()).execute(sa.insert(residents).values(
            pseudonym=pseudonym, last_commune_code=2998, subscribed=False,
            created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
    [offer] = await world.exchange(dung, "/subscribe")
    rows = offer["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in rows for b in row] == [
        "m:sub:c:2998", "m:sub:p:15", "m:sub:all"]
    assert rows[0][0]["text"] == "📍 Xã Phúc Khánh (khuyên dùng)"
    before = len(world.sandbox.bot_messages(dung.id))
    await world.press(dung, offer, "m:sub:c:2998")
    await world.sandbox.wait_for_bot_messages(dung.id, before + 1)
    async with services.db.engine.connect() as conn:
        row = (await conn.execute(sa.select(subscribers).where(
            subscribers.c.pseudonym == pseudonym))).one()
    assert (row.scope, row.commune_code, row.province_code, row.active) == (
        "commune", 2998, 15, True)
    assert str(dung.id) not in row.sealed_chat  # sealed, never in the clear
    [answered] = [m for m in world.sandbox.bot_messages(dung.id)
                  if m["message_id"] == offer["message_id"]]
    assert "reply_markup" not in answered  # its choices went with the answer
    # from the menu ("Nhận thông báo"), the same offer
    [menu] = await world.exchange(emma, "xin chào")
    assert "m:sub" in [b["callback_data"] for row in menu["reply_markup"]["inline_keyboard"]
                       for b in row]
    before = len(world.sandbox.bot_messages(emma.id))
    await world.press(emma, menu, "m:sub")
    [again] = (await world.sandbox.wait_for_bot_messages(emma.id, before + 1))[before:]
    assert [b["callback_data"] for row in again["reply_markup"]["inline_keyboard"]
            for b in row] == ["m:sub:all"]


async def test_a_run_resumes_after_a_crash_without_resending_what_was_marked(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    """The state a kill -9 leaves: delivery rows written, two marked sent, three pending
    (never answered). The next start's tick drives the run: only the three are sent."""
    clock = MovableClock(ict(2026, 12, 2, 10, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        services = world.services
        users = []
        for number in range(5):
            user = sandbox.create_user(f"K{number}", user_id=7500000000 + number)
            sandbox.world.private_state(user)
            users.append(user)
            await services.subscriptions.subscribe(
                services.pseudonyms.resident("tg", user.id), ReplyAddress("tg", str(user.id)),
                "all")
        store = services.campaigns.store
        campaign_id = await store.add_custom(
            title="K", text="Thông báo sau sự cố.", photo=None, scope="all", scope_code=None,
            send_at=clock.now(), status="running", created_by=None, now=clock.now())
        run_id = await store.start_run(campaign_id, 2026, clock.now())
        assert run_id is not None
        assert await store.extend(run_id, "all", None, None, 10) == 5
        [first, second, *_rest] = await store.pending(run_id, 0, 10)
        await store.mark([Outcome(first.delivery_id, first.subscriber_id, "sent", 1),
                          Outcome(second.delivery_id, second.subscriber_id, "sent", 1)],
                         clock.now())
        await tick(world)
        assert [len(sandbox.bot_messages(u.id)) for u in users] == [0, 0, 1, 1, 1]
        counts = await store.counts(run_id)
        assert (counts.sent, counts.pending, counts.remaining) == (5, 0, 0)


async def test_errors_chat_not_found_502_and_429(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    clock = MovableClock(ict(2026, 12, 2, 10, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock) as world:
        services = world.services
        dung, emma = world.demo.residents
        await subscribe_all(world, dung)
        await subscribe_all(world, emma)
        gone = 7599999999  # no such chat: 400 "chat not found"
        await services.subscriptions.subscribe(
            services.pseudonyms.resident("tg", gone), ReplyAddress("tg", str(gone)), "all")
        sandbox.inject_errors("sendPhoto", [(502, "Bad Gateway")], chat_id=dung.id)
        sandbox.inject_errors("sendPhoto", [(429, "Too Many Requests: retry after 1", 1)],
                              chat_id=emma.id)
        clock.set(ict(2027, 6, 26, 8, 0))
        assert len(await tick(world)) == 1
        [to_dung] = photos(world, dung)
        [to_emma] = photos(world, emma)
        assert to_dung["caption"].startswith("🚫 Ngày 26/6")
        assert to_emma["caption"].startswith("🚫 26 June")  # her app speaks English
        assert [[b["text"] for b in row] for row in to_emma["reply_markup"][
            "inline_keyboard"]] == [["🔕 Stop these announcements"]]
        async with services.db.engine.connect() as conn:
            state = (await conn.execute(sa.select(subscribers.c.active).where(
                subscribers.c.pseudonym == services.pseudonyms.resident("tg", gone)))).scalar()
        assert state is False


async def test_the_tick_runs_every_minute_on_the_job_queue(world: World) -> None:
    application = world.runtime.application
    assert application is not None and application.job_queue is not None
    [job] = application.job_queue.get_jobs_by_name("campaign_tick")
    assert job.trigger.interval.total_seconds() == 60  # type: ignore[attr-defined]


async def test_a_tip_card_goes_out_while_a_broadcast_is_running(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    """Cards keep priority: a tip confirmed while an announcement goes to 150 subscribers
    (5 s at 30/s) reaches its police group before the broadcast is over; the announcements
    take only what the resident's replies and the card leave of the 30/s: nothing is
    refused."""
    from tests.test_intake_bot import confirm, write_tip

    clock = MovableClock(ict(2026, 12, 2, 10, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock,
                             morning_summary_at=None) as world:
        services = world.services
        for number in range(150):
            user = sandbox.create_user(f"B{number}", user_id=7600000000 + number)
            sandbox.world.private_state(user)
            await services.subscriptions.subscribe(
                services.pseudonyms.resident("tg", user.id), ReplyAddress("tg", str(user.id)),
                "all")
        resident = world.demo.residents[0]
        prompt = await write_tip(world, resident, text="Có người lạ đột nhập kho.")
        store = services.campaigns.store
        await store.add_custom(
            title="B", text="Thông báo an ninh.", photo=None, scope="all", scope_code=None,
            send_at=clock.now(), status="scheduled", created_by=None, now=clock.now())
        run_id = await start_broadcast(world)
        await sandbox.wait_for_bot_messages(7600000000 + 10, 1, timeout=10)  # under way
        await confirm(world, resident, prompt)
        await sandbox.wait_for_bot_messages(world.demo.commune_group.id, 1, timeout=10)
        assert (await store.counts(run_id)).remaining > 0  # the card did not wait for it
        await services.campaigns.wait_idle()
        counts = await store.counts(run_id)
        assert (counts.sent, counts.remaining) == (150, 0)
    assert [c for c in sandbox.method_calls() if not c["ok"]] == []
    flood = sandbox.flood_counts()
    assert (flood.refused, flood.busiest_second <= 30) == (0, True), flood


async def test_residents_dialogues_a_card_and_a_broadcast_share_30_per_second(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path,
) -> None:
    """One budget for everything the bot sends: six residents write tips from /start to
    the receipt (messages, button answers, edits) and their cards go to the commune group
    while an announcement goes to 150 subscribers. The sandbox, its limits on, refuses
    nothing and never counts more than 30 sends within a second; each subscriber gets the
    announcement once; the first card arrives before the broadcast is over."""
    from tests.test_intake_bot import confirm, write_tip

    clock = MovableClock(ict(2026, 12, 2, 10, 0))
    async with running_world(sandbox, database_url, tmp_path, clock=clock,
                             morning_summary_at=None) as world:
        services = world.services
        subscribers_ids = [7610000000 + number for number in range(150)]
        for user_id in subscribers_ids:
            user = sandbox.create_user(f"S{user_id}", user_id=user_id)
            sandbox.world.private_state(user)
            await services.subscriptions.subscribe(
                services.pseudonyms.resident("tg", user.id), ReplyAddress("tg", str(user.id)),
                "all")
        first = world.demo.residents[0]
        others = [world.demo.residents[1],
                  *(sandbox.create_user(f"R{n}", user_id=7620000000 + n) for n in range(4))]
        prompt = await write_tip(world, first, text="Có người lạ đột nhập kho.")
        store = services.campaigns.store
        await store.add_custom(
            title="B", text="Thông báo an ninh.", photo=None, scope="all", scope_code=None,
            send_at=clock.now(), status="scheduled", created_by=None, now=clock.now())
        run_id = await start_broadcast(world)
        await sandbox.wait_for_bot_messages(subscribers_ids[10], 1, timeout=10)  # under way

        async def whole_tip(user: SandboxUser, number: int) -> str:
            return await confirm(world, user, await write_tip(
                world, user, text=f"Có người bán hàng cấm ở chợ số {number}."))

        dialogues = asyncio.gather(*(whole_tip(user, n) for n, user in enumerate(others)))
        receipt = await confirm(world, first, prompt)
        [card] = await sandbox.wait_for_bot_messages(world.demo.commune_group.id, 1,
                                                     timeout=10)
        assert (await store.counts(run_id)).remaining > 0  # the card did not wait for it
        receipts = await dialogues
        assert len({receipt, *receipts}) == 6
        await services.campaigns.wait_idle()
        counts = await store.counts(run_id)
        assert (counts.sent, counts.remaining) == (150, 0)
        cards = await sandbox.wait_for_bot_messages(world.demo.commune_group.id, 6,
                                                    timeout=30)
        assert card["message_id"] == cards[0]["message_id"]
    assert [len(sandbox.bot_messages(user_id)) for user_id in subscribers_ids] == [1] * 150
    assert [c for c in sandbox.method_calls() if not c["ok"]] == []
    flood = sandbox.flood_counts()
    assert (flood.refused, flood.busiest_second <= 30) == (0, True), flood
