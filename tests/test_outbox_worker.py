"""The outbox worker on real databases with a recording transport: batched claims and
bookkeeping, exactly-once cards, and a shutdown that always ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.intake import IntakeService
from bot.domain.notices import ReporterNotices
from bot.domain.outbox import Buttons, OutboxWorker
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.i18n import Translator
from storage.db import Database
from storage.models import GroupLink, OutboxMessage, Tip, TipCard, TipEvent

SECRET = b"outbox-worker-test-secret-0123456789"
GROUP = -5_000_002_998


class RecordingTransport:
    """Telegram stand-in: remembers what each chat was sent, hands out message ids."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        await asyncio.sleep(0.001)
        self.sent.append((chat_id, text))
        return len(self.sent)

    async def edit_html(self, chat_id: int, message_id: int, text: str, *,
                        buttons: Buttons | None = None) -> None:
        self.sent.append((chat_id, text))

    async def send_to_reporter(self, address: ReplyAddress, text: str) -> int:
        raise AssertionError("no reporter notices in these tests")

    async def send_photos(self, chat_id: int, photos: Sequence[bytes], captions: Sequence[str],
                          *, reply_to: int | None = None) -> list[int]:
        raise AssertionError("no photos in these tests")

    async def send_location(self, chat_id: int, latitude: float, longitude: float, *,
                            reply_to: int | None = None) -> int:
        raise AssertionError("no locations in these tests")


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


def make_worker(database: Database, directory: CommuneDirectory) -> OutboxWorker:
    renderer = CardRenderer(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"))
    notices = ReporterNotices(Translator.load(), ChatSealer(SECRET), directory)
    return OutboxWorker(database, renderer, Router(ops_chat_id=None), notices, poll_interval=0.2)


async def test_a_burst_of_tips_gets_each_card_once_with_shared_bookkeeping(
    database: Database, directory: CommuneDirectory
) -> None:
    async with database.transaction() as session:
        session.add(GroupLink(chat_id=GROUP, scope="commune", code=2998, province_code=15,
                              linked_by=1))
    intake = IntakeService(database, directory, Categories.load(), ChatSealer(SECRET),
                           Router(ops_chat_id=None))
    people = [f"p{i}" for i in range(40)]
    for who in people:
        await intake.begin(who, "vi", commune_code=2998)
        await intake.choose_category(who, "theft")
        await intake.set_urgency(who, False)
        await intake.add_text(who, f"Sự việc của {who}")
        await intake.finish_attachments(who)
    codes = [r.code for r in await asyncio.gather(
        *(intake.submit(p, ReplyAddress("tg", p), channel="telegram") for p in people)
    )]
    worker = make_worker(database, directory)
    transport = RecordingTransport()
    worker.start(transport)
    try:
        deadline = time.monotonic() + 20
        while worker.stats.sent < len(codes) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert sorted(code for code in codes if any(code in text for _, text in transport.sent)) \
        == sorted(codes)
    assert len(transport.sent) == len(codes) and {chat for chat, _ in transport.sent} == {GROUP}
    async with database.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
        cards = (await session.exec(select(TipCard))).all()
        delivered = (await session.exec(
            select(TipEvent).where(TipEvent.event == "delivered")
        )).all()
        tips = (await session.exec(select(Tip))).all()
    assert {row.status for row in rows} == {"sent"} and len(rows) == len(codes)
    assert len(cards) == len(delivered) == len(codes)
    assert all(tip.delivered_at is not None and tip.queue_chat_id == GROUP for tip in tips)
    posted = worker._posted
    assert posted.batches < len(codes)


async def test_stop_ends_even_when_woken_at_that_moment(
    database: Database, directory: CommuneDirectory
) -> None:
    """A wake-up landing with the stop (a row just finished) once made the worker loop on
    forever: Python 3.11's wait_for swallowed the cancel."""
    for _ in range(20):
        worker = make_worker(database, directory)
        worker.start(RecordingTransport())
        await asyncio.sleep(0.01)
        worker.wake()
        started = time.monotonic()
        await asyncio.wait_for(worker.stop(), timeout=5)
        assert time.monotonic() - started < 2


class SlowGroupTransport(RecordingTransport):
    """A group whose sends hang until released (a group at its 20/min limit)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.attempts = 0

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        self.attempts += 1
        await self.release.wait()
        return await super().send_html(chat_id, text, reply_to=reply_to, buttons=buttons)


async def test_a_row_still_being_sent_is_not_taken_again_when_its_lease_runs_out(
    database: Database, directory: CommuneDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.domain.outbox.LEASE", timedelta(milliseconds=50))
    async with database.transaction() as session:
        session.add(GroupLink(chat_id=GROUP, scope="commune", code=2998, province_code=15,
                              linked_by=1))
    intake = IntakeService(database, directory, Categories.load(), ChatSealer(SECRET),
                           Router(ops_chat_id=None))
    await intake.begin("slow", "vi", commune_code=2998)
    await intake.choose_category("slow", "theft")
    await intake.set_urgency("slow", False)
    await intake.add_text("slow", "Sự việc")
    await intake.finish_attachments("slow")
    await intake.submit("slow", ReplyAddress("tg", "1"), channel="telegram")
    worker = make_worker(database, directory)
    transport = SlowGroupTransport()
    worker.start(transport)
    try:
        for _ in range(10):  # lease long gone; the worker keeps looking
            await asyncio.sleep(0.05)
            worker.wake()
        assert transport.attempts == 1
        transport.release.set()
        for _ in range(100):
            if worker.stats.sent:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert len(transport.sent) == 1 and worker.stats.sent == 1
