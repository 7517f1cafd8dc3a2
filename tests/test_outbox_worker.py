"""The outbox worker on real databases with a recording transport: batched claims and
bookkeeping, exactly-once cards, and a shutdown that always ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
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
