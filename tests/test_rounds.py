"""Reminder and escalation rounds: which tips a round lists (once per point, never twice),
the ledger on both databases, and end to end against the sandbox with a clock the tests
move forward: one digest per group with the right tips, none when nothing is due, a round
missed while the bot was down sent once after the restart, 60 tips in a few messages,
escalation to the province group (or the ops chat) and the card's "⚠️ Quá hạn" line edited
in place."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.app import BotEndpoint, TiplineRuntime
from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.outbox import DigestPayload, OutboxKind, PayloadError, parse_payload
from bot.domain.receipts import tip_link
from bot.domain.reminders import (
    DigestTexts,
    DueTip,
    ReminderPolicy,
    escalation_items,
    reminder_items,
)
from bot.domain.rounds import (
    DailySchedule,
    Digest,
    EverySchedule,
    Group,
    RoundJob,
    RoundWindow,
    per_group,
    split_lines,
)
from bot.i18n import Translator
from bot.sandbox import BotApiSandbox
from bot.sandbox_mode import DEMO_COMMUNE_CODE, DEMO_PROVINCE_CODE
from bot.settings import SettingsError, load_settings
from storage.db import Database
from storage.models import JobRun, OutboxMessage, Tip
from storage.outbox_store import OutboxStore
from storage.rounds import RoundsStore
from tests.conftest import (
    FAST_PRIVATE_BURST,
    TEST_SECRET_KEY,
    MovableClock,
    World,
    make_settings,
    running_world,
)
from tests.test_card_texts import Tip as CardTip
from tests.test_intake_bot import send_tip, tip_by_code, wait_card
from tests.test_triage_bot import current, until

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
B = timedelta(minutes=15)
POLICY = ReminderPolicy(every=B)
TICK: dict[str, Any] = {"round_tick_seconds": 0.2, "morning_summary_at": None}  # reminders only
TIP_LINK_RE = re.compile(r"/tip_([0-9A-Z]{4})_([0-9A-Z]{4})\b")


class TipLinks:
    """The codes of the one-tap ``/tip_XXXX_YYYY`` links in a text, as ``XXXX-YYYY``."""

    @staticmethod
    def findall(text: str) -> list[str]:
        return [f"{head}-{tail}" for head, tail in TIP_LINK_RE.findall(text)]


TIP_LINKS = TipLinks()


def due_tip(n: int, created: datetime, *, status: str = "new", ack: timedelta = timedelta(hours=24),
            settle: timedelta = timedelta(days=20), chat: int | None = -1) -> DueTip:
    return DueTip(id=n, code=f"T{n:03d}-ABCD", category="drugs", commune_code=DEMO_COMMUNE_CODE,
                  province_code=DEMO_PROVINCE_CODE, status=status, owner_name=None,
                  created_at=created, ack_due_at=created + ack, settle_due_at=created + settle,
                  queue_chat_id=chat)


def window(schedule: EverySchedule, start: datetime, end: datetime) -> RoundWindow | None:
    slots = tuple(schedule.slots(start, end))
    return RoundWindow("reminder", slots) if slots else None


# --- which round lists which tip (no database) ---------------------------------------------


def test_every_schedule_slots_and_keys() -> None:
    schedule = EverySchedule(B)
    start = datetime(2026, 12, 2, 10, 0, 40, tzinfo=UTC)
    slots = schedule.slots(start, start + timedelta(minutes=31))
    assert [s.key for s in slots] == ["2026-12-02T10:15Z", "2026-12-02T10:30Z"]
    assert all(s.due_at == s.at + timedelta(seconds=30) for s in slots)
    # a slot is due 30 s after its time: not yet at 10:45:10, then exactly once
    assert schedule.slots(start, datetime(2026, 12, 2, 10, 45, 10, tzinfo=UTC))[-1].key \
        == "2026-12-02T10:30Z"
    assert schedule.slots(datetime(2026, 12, 2, 10, 45, 10, tzinfo=UTC),
                          datetime(2026, 12, 2, 10, 45, 30, tzinfo=UTC))[0].key \
        == "2026-12-02T10:45Z"


def test_daily_schedule_at_0730_vietnam_time() -> None:
    schedule = DailySchedule(time(7, 30), ICT)
    start = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 06:00 ICT on 2 December
    [slot] = schedule.slots(start, start + timedelta(hours=2))
    assert slot.key == "2026-12-02" and slot.at == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    assert [s.key for s in schedule.slots(start, start + timedelta(days=2))] == [
        "2026-12-02", "2026-12-03"]
    assert schedule.slots(slot.due_at, slot.due_at + timedelta(hours=23)) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_point_is_in_exactly_one_round_even_across_downtime(seed: int) -> None:
    """Rounds run at random moments (the bot down for a while: several slots coalesced):
    every slot is in one round, and a tip is listed for a point by the round holding that
    point's slot, while its deadline is ahead, and by no other."""
    rng = random.Random(seed)
    schedule = POLICY.schedule
    origin = datetime(2026, 12, 2, 0, 7, tzinfo=UTC)
    tips = [due_tip(n, origin + timedelta(minutes=rng.uniform(0, 600)),
                    ack=timedelta(hours=rng.choice([1, 24])),
                    settle=timedelta(days=rng.choice([2, 20])),
                    status=rng.choice(["new", "new", "acknowledged"]))
            for n in range(300)]
    runs: list[tuple[RoundWindow, datetime, set[tuple[int, str]]]] = []
    last = now = origin
    while now < origin + timedelta(days=21):
        now += timedelta(minutes=rng.choice([1, 1, 5, 15, 40, 180, 600]))
        round_window = window(schedule, last, now)
        last = now
        if round_window is not None:
            listed = [(i.tip.id, i.kind) for i in reminder_items(tips, round_window, now, POLICY)]
            assert len(listed) == len(set(listed))
            runs.append((round_window, now, set(listed)))
    keys = [slot.key for run in runs for slot in run[0].slots]
    assert len(keys) == len(set(keys))  # no slot in two rounds
    listed_total = 0
    for tip in tips:
        for kind in ("ack", "settle"):
            deadline = tip.ack_due_at if kind == "ack" else tip.settle_due_at
            slots = [POLICY.reminder_slot(point, tip.created_at)
                     for k, point in POLICY.reminder_points(tip) if k == kind]
            expected = {n for n, (w, at, _) in enumerate(runs)
                        if at < deadline and any(w.covers(slot) for slot in slots)}
            got = {n for n, (_, _, listed) in enumerate(runs) if (tip.id, kind) in listed}
            assert got == expected
            listed_total += len(got)
    assert listed_total > 300


def test_a_reminder_is_never_later_than_its_point_and_at_most_one_slot_early() -> None:
    created = datetime(2026, 12, 2, 8, 1, tzinfo=UTC)
    tip = due_tip(1, created, ack=timedelta(hours=1))  # urgent: 50% at 08:31, 90% at 08:55
    for _kind, point in POLICY.reminder_points(tip):
        slot = POLICY.reminder_slot(point, created)
        assert point - B < slot <= point
    late = due_tip(2, datetime(2026, 12, 2, 8, 14, tzinfo=UTC), ack=timedelta(minutes=10))
    # both points fall in the slot the tip was created in: the next round lists it
    assert {POLICY.reminder_slot(point, late.created_at)
            for kind, point in POLICY.reminder_points(late) if kind == "ack"} == {
        datetime(2026, 12, 2, 8, 15, tzinfo=UTC)}


def escalate_rounds(
    tips: list[DueTip], start: datetime, end: datetime, every: timedelta,
    counts: dict[tuple[int, str], int], *, change: Any = None,
) -> list[DueTip]:
    """Rounds from ``start`` to ``end`` as the claim runs them: what a round escalates is
    recorded on the tips (``escalated_at``), as ``claim_round`` does."""
    now = start
    while now < end:
        now += every
        if change is not None:
            tips = change(tips, now)
        told = {}
        for item in escalation_items(tips, now):
            counts[(item.tip.id, item.kind)] = counts.get((item.tip.id, item.kind), 0) + 1
            told[item.tip.id] = now
        tips = [replace(t, escalated_at=told.get(t.id, t.escalated_at)) for t in tips]
    return tips


def test_escalation_lists_a_missed_deadline_once() -> None:
    created = datetime(2026, 12, 2, 8, 1, tzinfo=UTC)
    tips = [due_tip(1, created), due_tip(2, created, status="acknowledged"),
            due_tip(3, created, status="processed")]
    counts: dict[tuple[int, str], int] = {}
    escalate_rounds(tips, created, created + timedelta(days=22), timedelta(minutes=7), counts)
    assert counts == {(1, "ack"): 1, (1, "settle"): 1, (2, "settle"): 1}


def test_escalation_goes_by_state_not_by_the_round_the_deadline_fell_in() -> None:
    """A tip taken up in time and transferred back to "Mới" after its acknowledgement
    deadline, and a deadline passed during an outage longer than any grace: both are
    escalated once, at the next round."""
    created = datetime(2026, 12, 2, 8, 1, tzinfo=UTC)
    tips = [due_tip(1, created, status="acknowledged"), due_tip(2, created)]

    def transfer_at_30h(tips: list[DueTip], now: datetime) -> list[DueTip]:
        if now >= created + timedelta(hours=30):
            return [replace(t, status="new") if t.id == 1 else t for t in tips]
        return tips

    counts: dict[tuple[int, str], int] = {}
    # rounds every 15 min for two days; tip 2's deadline (+24 h) passes during an outage
    # from +20 h to +40 h (no rounds): the first round after it escalates it
    tips = escalate_rounds(tips, created, created + timedelta(hours=20),
                           timedelta(minutes=15), counts, change=transfer_at_30h)
    assert counts == {}
    tips = escalate_rounds(tips, created + timedelta(hours=40), created + timedelta(hours=48),
                           timedelta(minutes=15), counts, change=transfer_at_30h)
    assert counts == {(1, "ack"): 1, (2, "ack"): 1}


def test_long_digests_are_split_into_few_messages_without_cutting_a_line() -> None:
    texts = DigestTexts(CommuneDirectory.load(), Categories.load(), ICT,
                        Translator.load().for_language("vi"))
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    tips = [due_tip(n, now - timedelta(hours=12, minutes=n + 1)) for n in range(60)]
    items = reminder_items(tips, RoundWindow("reminder", tuple(POLICY.schedule.slots(
        now - timedelta(hours=2), now))), now, POLICY)
    assert len(items) == 60
    parts = texts.reminder(items, now)
    assert 1 < len(parts) <= 3
    assert all(len(part) <= 4096 for part in parts)
    assert parts[0].startswith("⏰ <b>Nhắc hạn</b>: 60 tin báo sắp đến hạn (phần 1/")
    assert sorted(TIP_LINKS.findall("".join(parts))) == sorted(t.code for t in tips)
    assert "chưa có người nhận · còn 11 giờ" in parts[0]
    many = [replace(i, tip=replace(i.tip, id=n, code=f"{n:04d}-ABCD"))
            for n, i in enumerate(items * 5)]
    capped = texts.reminder(many, now)
    listed = len(TIP_LINKS.findall("".join(capped)))
    assert len(capped) <= 5 and capped[-1].endswith(f"… và {300 - listed} tin báo khác")
    assert split_lines("H", ["x" * 5000]) == ["H\n" + "x" * 4094]


def test_the_cards_overdue_line_names_the_missed_deadline() -> None:
    cards = CardRenderer(CommuneDirectory.load(), Categories.load(), ICT,
                         Translator.load().for_language("vi"))
    base = CardTip(status="new", owner_name=None, acknowledged_at=None)
    assert "Quá hạn" not in cards.render(base)[0]
    late_ack = replace(base, overdue_marked_at=base.ack_due_at + timedelta(minutes=5))
    assert "🔴 <b>KHẨN CẤP</b>\n⚠️ <b>Quá hạn</b>: hạn tiếp nhận là 12:04 02/01/2026\n" \
        in cards.render(late_ack)[0]
    late_settle = replace(CardTip(), overdue_marked_at=CardTip().settle_due_at)
    assert "⚠️ <b>Quá hạn</b>: hạn giải quyết là 12:04 09/01/2026" in cards.render(late_settle)[0]
    closed = replace(late_settle, status="processed", closed_at=CardTip().settle_due_at)
    assert "Quá hạn" not in cards.render(closed)[0]
    # taken up late: no longer overdue (deadlines.overdue), the line goes
    taken_late = replace(late_ack, status="acknowledged", owner_name="Bình",
                         acknowledged_at=late_ack.ack_due_at + timedelta(minutes=30))
    assert "Quá hạn" not in cards.render(taken_late)[0]
    # the settlement deadline extended past the mark: the line goes too
    extended = replace(late_settle, settle_due_at=CardTip().settle_due_at + timedelta(days=30),
                       extension_days=30)
    assert "Quá hạn" not in cards.render(extended)[0]


def test_digest_payload_reads_back_and_refuses_what_no_writer_produces() -> None:
    payload = DigestPayload(-100, ("a", "b <b>c</b>"), sent=1, run=7)
    assert parse_payload(OutboxKind.DIGEST, payload.to_json()) == payload
    for bad in ('{"chat_id": -1, "parts": []}', '{"chat_id": -1, "parts": ["a"], "sent": 2}',
                '{"parts": ["a"]}', '{"chat_id": -1, "parts": ["a"], "x": 1}'):
        with pytest.raises(PayloadError):
            parse_payload(OutboxKind.DIGEST, bad)


def test_reminder_settings() -> None:
    settings = load_settings(_env_file=None, reminder_ack_points="0.4, 0.8",
                             reminder_settle_days="7,3,1", round_minutes="10")
    assert settings.reminder_ack_points == [0.4, 0.8]
    assert settings.reminder_settle_days == [7, 3, 1]
    for name, value in (("reminder_ack_points", "50%"), ("reminder_ack_points", "1.5"),
                        ("reminder_settle_days", "5,-1"), ("round_minutes", "0")):
        with pytest.raises(SettingsError, match=f"TIPLINE_{name.upper()}"):
            load_settings(_env_file=None, **{name: value})


# --- the ledger and the outbox, on SQLite and PostgreSQL -----------------------------------


async def add_tips(db: Database, tips: Sequence[dict[str, Any]]) -> list[Tip]:
    rows = []
    async with db.transaction() as session:
        for n, values in enumerate(tips):
            created = values.pop("created_at")
            code = values.pop("code", None) or \
                "".join(random.choices("ABCDEFGHJKMNPQRSTVWXYZ23456789", k=8))
            row = Tip(
                code=code if "-" in code else f"{code[:4]}-{code[4:]}", channel="telegram",
                commune_code=values.pop("commune_code", DEMO_COMMUNE_CODE),
                province_code=DEMO_PROVINCE_CODE, category=values.pop("category", "drugs"),
                description=f"tip {n}", content_hash=f"hash-{code}",
                queue_scope="commune", created_at=created, updated_at=created,
                ack_due_at=created + values.pop("ack", timedelta(hours=24)),
                settle_due_at=created + values.pop("settle", timedelta(days=20)), **values,
            )
            session.add(row)
            rows.append(row)
    return rows


async def test_a_round_is_claimed_once_with_its_digests(database: Database) -> None:
    store = RoundsStore(database)
    now = datetime.now(UTC)
    digest = Digest(-100, ("one", "two"))
    assert await store.claim_round("reminder", ["k1", "k2"], [digest], now=now)
    assert await store.done_keys("reminder", ["k0", "k1", "k2"]) == {"k1", "k2"}
    # a second claim of any of its rounds writes nothing
    assert not await store.claim_round("reminder", ["k2", "k3"], [digest], now=now)
    assert await store.done_keys("reminder", ["k3"]) == set()  # rolled back as a whole
    async with database.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
        runs = (await session.exec(select(JobRun).where(JobRun.scope == "chat:-100"))).all()
    digests = [parse_payload(r.kind, r.payload) for r in rows if r.kind == OutboxKind.DIGEST]
    [run] = runs
    assert (run.round_key, run.status) == ("k2", "pending")
    assert digests == [DigestPayload(-100, ("one", "two"), run=run.id)]
    # an empty round is recorded too (nothing queued)
    assert await store.claim_round("escalation", ["k1"], [], now=now)
    assert await store.done_keys("escalation", ["k1"]) == {"k1"}


async def test_tip_cards_go_before_digests(database: Database) -> None:
    [tip] = await add_tips(database, [{"created_at": datetime.now(UTC)}])
    store = RoundsStore(database)
    assert await store.claim_round("reminder", ["k"], [Digest(-100, ("digest",))],
                                   now=datetime.now(UTC))
    async with database.transaction() as session:
        session.add(OutboxMessage(kind=OutboxKind.TIP_CARD, tip_id=tip.id))
    heads = await OutboxStore(database).due_heads(datetime.now(UTC) + timedelta(seconds=1), 5)
    async with database.session() as session:
        kinds = {r.id: r.kind for r in (await session.exec(select(OutboxMessage))).all()}
    assert [kinds[h.row_id] for h in heads] == [OutboxKind.TIP_CARD, OutboxKind.DIGEST]


async def test_overdue_tips_are_marked_once_per_missed_deadline(database: Database) -> None:
    now = datetime.now(UTC)
    late, fine, closed = await add_tips(database, [
        {"created_at": now - timedelta(hours=25)}, {"created_at": now},
        {"created_at": now - timedelta(days=30), "status": "processed"}])
    store = RoundsStore(database)
    assert await store.mark_overdue(now) == 1
    assert await store.mark_overdue(now + timedelta(minutes=1)) == 0
    async with database.transaction() as session:
        await session.exec(sa.update(Tip).where(col(Tip.id) == late.id)  # type: ignore[call-overload]
                           .values(status="acknowledged"))
    later = late.settle_due_at + timedelta(minutes=1)
    assert await store.mark_overdue(later) == 2  # its settlement now, and the other tip's
    async with database.session() as session:
        refreshes = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.kind == OutboxKind.CARD_REFRESH))).all()
        marked = {t.id: t.overdue_marked_at for t in (await session.exec(select(Tip))).all()}
    assert sorted(r.tip_id or 0 for r in refreshes) == sorted([late.id, late.id, fine.id])
    assert marked[closed.id] is None and marked[late.id] == later


# --- end to end ----------------------------------------------------------------------------


async def digests(world: World, chat_id: int) -> list[str]:
    return [m["text"] for m in world.sandbox.bot_messages(chat_id)
            if m["text"].startswith(("⏰", "🚨"))]


async def round_done(world: World, job: str, at: datetime) -> bool:
    """The round of the slot at or before ``at`` was handled (whatever it sent)."""
    key = POLICY.schedule.slot(POLICY.schedule.index(at)).key
    async with world.services.db.session() as session:
        found = (await session.exec(select(JobRun).where(
            JobRun.job == job, JobRun.scope == "round", JobRun.round_key == key))).first()
    return found is not None


async def outbox_idle(world: World) -> bool:
    async with world.services.db.session() as session:
        pending = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.status == "pending"))).all()
    return not pending


async def settle(world: World, clock: MovableClock, *jobs: str) -> None:
    """Every round up to the clock's time was handled and the outbox sent what it owed."""
    for job in jobs or ("reminder", "escalation"):
        await until(lambda job=job: round_done(world, job, clock.now() - timedelta(seconds=30)),
                    timeout=10)
    await until(lambda: outbox_idle(world), timeout=10)
    await world.sandbox.wait_idle(timeout=10)


async def second_group(world: World) -> tuple[int, int]:
    """Another commune of the province with its own group: (chat id, commune code)."""
    other = next(c for c in world.services.directory.communes_of(DEMO_PROVINCE_CODE)
                 if c.code != DEMO_COMMUNE_CODE)
    group = world.sandbox.create_group("Công an xã khác", members=[world.demo.officer.id],
                                       chat_id=-5000003000)
    await world.services.linking.link(chat_id=group.id, scope="commune", code=other.code,
                                      linked_by=world.demo.admin.id)
    return group.id, other.code


async def test_one_reminder_digest_per_group_with_the_right_tips(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        y, other = await second_group(world)
        due, taken, later, closed, elsewhere = await add_tips(world.services.db, [
            {"created_at": t0, "queue_chat_id": x},  # 50% of 24 h at t0 + 12 h
            {"created_at": t0 - timedelta(days=15, hours=-11), "queue_chat_id": x,
             "status": "acknowledged", "owner_name": "Bình Lê Thị",
             "acknowledged_at": t0 - timedelta(days=14)},  # 5 days before settling: t0 + 11 h
            {"created_at": t0, "ack": timedelta(hours=48), "queue_chat_id": x},  # at t0 + 24 h
            {"created_at": t0, "queue_chat_id": x, "status": "processed"},
            {"created_at": t0, "queue_chat_id": y, "commune_code": other},
        ])
        await settle(world, clock)
        assert await digests(world, x) == [] and await digests(world, y) == []

        world.sandbox.inject_errors("sendMessage", [(429, "Too Many Requests", 1)], chat_id=x)
        clock.set(t0 + timedelta(hours=12, minutes=1))
        await settle(world, clock)
        [digest_x] = await digests(world, x)
        assert sorted(TIP_LINKS.findall(digest_x)) == sorted([due.code, taken.code])
        assert digest_x.startswith("⏰ Nhắc hạn: 2 tin báo sắp đến hạn")
        assert f"{tip_link(due.code)} · Ma túy · chưa có người nhận · còn 11 giờ" in digest_x
        assert f"{tip_link(taken.code)} · Ma túy · Bình Lê Thị · còn 4 ngày" in digest_x
        assert later.code not in digest_x and closed.code not in digest_x
        assert TIP_LINKS.findall((await digests(world, y))[0]) == [elsewhere.code]
        # each code is a one-tap command: the client shows /tip_XXXX_YYYY as a link
        [message_x] = [m for m in world.sandbox.bot_messages(x) if m["text"] == digest_x]
        commands = [message_x["text"][e["offset"]:e["offset"] + e["length"]]
                    for e in message_x.get("entities", []) if e["type"] == "bot_command"]
        assert sorted(commands) == sorted([tip_link(due.code), tip_link(taken.code)])

        # the 90% point is another round; the 50% one is not repeated
        clock.set(t0 + timedelta(hours=21, minutes=37))
        await settle(world, clock)
        assert len(await digests(world, x)) == 2
        assert TIP_LINKS.findall((await digests(world, x))[1]) == [due.code]
        assert len(await digests(world, y)) == 2
        assert await digests(world, world.demo.province_group.id) == []
        assert await digests(world, world.demo.ops_group.id) == []
        async with world.services.db.session() as session:
            runs = (await session.exec(select(JobRun).where(JobRun.scope != "round"))).all()
        assert sorted((r.job, r.scope, r.status) for r in runs) == [
            ("reminder", f"chat:{x}", "sent"), ("reminder", f"chat:{x}", "sent"),
            ("reminder", f"chat:{y}", "sent"), ("reminder", f"chat:{y}", "sent")]


async def test_a_group_that_removed_the_bot_gets_no_digest_and_the_others_do(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        y, other = await second_group(world)
        await add_tips(world.services.db, [
            {"created_at": t0, "queue_chat_id": x},
            {"created_at": t0, "queue_chat_id": y, "commune_code": other}])
        world.sandbox.kick_bot(y)
        clock.set(t0 + timedelta(hours=12, minutes=1))
        await settle(world, clock)
        assert len(await digests(world, x)) == 1
        async with world.services.db.session() as session:
            runs = {r.scope: r.status for r in (await session.exec(
                select(JobRun).where(JobRun.scope != "round"))).all()}
            rows = (await session.exec(select(OutboxMessage).where(
                OutboxMessage.kind == OutboxKind.DIGEST))).all()
        assert runs == {f"chat:{x}": "sent", f"chat:{y}": "failed"}
        assert sorted(r.status for r in rows) == ["failed", "sent"]


async def test_no_digest_when_nothing_is_due(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        await add_tips(world.services.db, [
            {"created_at": t0, "ack": timedelta(hours=48), "queue_chat_id": x},
            {"created_at": t0 - timedelta(hours=13), "queue_chat_id": x, "status": "invalid"},
        ])
        for hours in (3, 12, 20):
            clock.set(t0 + timedelta(hours=hours))
            await settle(world, clock)
        assert world.sandbox.bot_messages(x) == []
        assert world.sandbox.bot_messages(world.demo.province_group.id) == []
        async with world.services.db.session() as session:
            runs = (await session.exec(select(JobRun))).all()
        assert runs and all(r.scope == "round" for r in runs)  # handled, nothing sent


@contextlib.asynccontextmanager
async def bot_running(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path, clock: MovableClock,
    world: World, **overrides: Any,
) -> AsyncIterator[World]:
    """The bot again, on the same sandbox and database (a restart)."""
    settings = make_settings(database_url, tmp_path, admin_ids=[world.demo.admin.id],
                             ops_chat_id=world.demo.ops_group.id, membership_cache_seconds=0,
                             telegram_private_burst=FAST_PRIVATE_BURST,
                             **(TICK | overrides))
    runtime = TiplineRuntime(settings, BotEndpoint(sandbox.token, sandbox.url),
                             TEST_SECRET_KEY.encode(), clock)
    try:
        await runtime.start()
        yield World(sandbox, runtime, world.demo)
    finally:
        await runtime.stop()


async def test_a_round_missed_while_down_runs_once_after_restart(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        [due] = await add_tips(world.services.db, [{"created_at": t0, "queue_chat_id": x}])
        await settle(world, clock)
    # down: the 50% point (t0 + 12 h) passes meanwhile
    clock.set(t0 + timedelta(hours=13))
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as again:
        await settle(again, clock)
        [digest] = await digests(again, x)
        assert TIP_LINKS.findall(digest) == [due.code]
    # and again: nothing is sent twice, not even once the next slot is due
    clock.advance(minutes=16)
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as third:
        await settle(third, clock)
        assert len(await digests(third, x)) == 1
    # past the grace (6 h) a missed round is skipped, never sent late
    clock.set(t0 + timedelta(hours=21, minutes=37) + timedelta(hours=7))
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as late:
        await settle(late, clock)
        assert len(await digests(late, x)) == 1


async def test_sixty_tips_due_in_one_group_stay_within_twenty_messages_a_minute(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x = world.demo.commune_group.id
        tips = await add_tips(world.services.db, [
            {"created_at": t0 + timedelta(seconds=n), "queue_chat_id": x} for n in range(60)])
        clock.set(t0 + timedelta(hours=12, minutes=2))
        await settle(world, clock)
        messages = world.sandbox.bot_messages(x)
        assert 2 <= len(messages) <= 3
        assert all(len(m["text"]) <= 4096 for m in messages)
        listed = [code for m in messages for code in TIP_LINKS.findall(m["text"])]
        assert sorted(listed) == sorted(t.code for t in tips)  # each once
        dates = sorted(m["date"] for m in messages)
        assert all(sum(1 for d in dates if start <= d < start + 60) <= 20 for start in dates)


async def test_overdue_tip_escalates_to_the_province_and_its_card_is_marked_in_place(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        x, province = world.demo.commune_group.id, world.demo.province_group.id
        code = await send_tip(world, world.demo.residents[0])
        [card] = await wait_card(world, x)
        tip = await tip_by_code(world, code)
        await until(lambda: world.services.triage.active_card(tip.id or 0, x, card["message_id"]))
        assert "Quá hạn" not in card["text"]

        clock.set(tip.ack_due_at + timedelta(minutes=16))
        await settle(world, clock)
        [escalation] = await digests(world, province)
        assert escalation.startswith("🚨 Tin báo quá hạn: 1")
        assert f"{tip_link(code)} · Xã Phúc Khánh · chưa có người nhận · quá hạn tiếp nhận" \
            in escalation
        await until(lambda: "⚠️ Quá hạn: hạn tiếp nhận là" in current(world, card)["text"])
        assert len(world.sandbox.bot_messages(x)) == 1  # edited, not posted again
        # the reminders of a deadline already past are not sent: that is the escalation's
        assert await digests(world, x) == []

        # later rounds do not repeat it
        clock.advance(hours=3)
        await settle(world, clock)
        assert len(await digests(world, province)) == 1


async def test_escalation_without_a_province_group_goes_to_the_ops_chat(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    t0 = clock.now()
    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        await world.services.linking.unlink(chat_id=world.demo.province_group.id)
        [late] = await add_tips(world.services.db, [
            {"created_at": t0 - timedelta(hours=23, minutes=50),
             "queue_chat_id": world.demo.commune_group.id}])
        clock.advance(minutes=30)
        await settle(world, clock)
        [escalation] = await digests(world, world.demo.ops_group.id)
        assert TIP_LINKS.findall(escalation) == [late.code]
        assert world.sandbox.bot_messages(world.demo.province_group.id) == []


async def test_a_round_job_plugged_in_with_its_own_text(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path
) -> None:
    """The morning summary's machinery: a daily round at 07:30 ICT, one message per linked
    group from a text callback (a placeholder here), once per day across a restart."""
    clock = MovableClock()
    seen: list[tuple[int, str]] = []

    async def placeholder(group: Group, round_window: RoundWindow, now: datetime) -> str:
        seen.append((group.chat_id, round_window.key))
        return f"☀️ Tóm tắt buổi sáng {round_window.key} ({group.scope} {group.code})"

    def plug(world: World) -> None:
        rounds = world.services.rounds
        rounds.add(RoundJob("summary", DailySchedule(time(7, 30), ICT),
                            per_group(rounds.groups, placeholder)))

    def summaries(world: World, chat: int) -> list[str]:
        return [m["text"] for m in world.sandbox.bot_messages(chat)
                if m["text"].startswith("☀️")]

    async with running_world(sandbox, database_url, tmp_path, clock=clock, **TICK) as world:
        plug(world)
        local = clock.now().astimezone(ICT)
        morning = datetime.combine(local.date() + timedelta(days=1), time(7, 31), ICT)
        clock.set(morning.astimezone(UTC))
        await until(lambda: len(summaries(world, world.demo.province_group.id)) == 1, 10)
        await until(lambda: len(summaries(world, world.demo.commune_group.id)) == 1, 10)
        assert summaries(world, world.demo.commune_group.id)[0] == \
            f"☀️ Tóm tắt buổi sáng {morning.date().isoformat()} (commune {DEMO_COMMUNE_CODE})"
    async with bot_running(sandbox, database_url, tmp_path, clock, world) as again:
        plug(again)
        clock.advance(minutes=20)
        await settle(again, clock)
        await asyncio.sleep(0.5)  # a few ticks of the restarted bot
        assert len(summaries(again, world.demo.commune_group.id)) == 1
        assert len(seen) == 2  # composed once, for the two linked groups


async def test_escalation_candidates_are_the_overdue_tips_not_yet_told(
    database: Database
) -> None:
    now = datetime.now(UTC)
    day = timedelta(days=1)
    _told, untold, again, _fresh, _closed = await add_tips(database, [
        {"created_at": now - 2 * day, "escalated_at": now - day + timedelta(minutes=15)},
        {"created_at": now - 2 * day},  # e.g. transferred back to "Mới" after its deadline
        {"created_at": now - 21 * day, "status": "acknowledged",  # settle missed since
         "escalated_at": now - 20 * day + timedelta(minutes=15)},  # its ack was escalated
        {"created_at": now},
        {"created_at": now - 2 * day, "status": "processed"},
    ])
    store = RoundsStore(database)
    found = {tip.id for tip in await store.escalation_candidates(now=now)}
    assert found == {untold.id, again.id}
    assert {item.tip.id: item.kind for item in escalation_items(
        await store.escalation_candidates(now=now), now)} == {
        untold.id: "ack", again.id: "settle"}
    assert await store.claim_round("escalation", ["k"], [
        Digest(-100, ("…",), escalates=(untold.id, again.id))], now=now)
    assert await store.escalation_candidates(now=now + timedelta(minutes=15)) == []
