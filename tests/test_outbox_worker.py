"""The outbox worker on real databases with a recording transport: batched claims and
bookkeeping, exactly-once cards, and a shutdown that always ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.intake import IntakeService, Submitted
from bot.domain.notices import ReporterNotices
from bot.domain.outbox import (
    LEASE,
    URGENT_LEASE,
    Buttons,
    DeliveryError,
    DeliveryPolicy,
    OutboxWorker,
    RetryLater,
)
from bot.domain.outbox.payloads import DigestPayload
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.i18n import Translator
from storage.db import Database
from storage.intake import IntakeStore
from storage.models import GroupLink, JobRun, OutboxMessage, Tip, TipCard, TipEvent, utcnow
from storage.outbox_store import OutboxStore

SECRET = b"outbox-worker-test-secret-0123456789"
# what police read above a card the outbox may have posted twice (byte for byte)
RESENT_NOTE_VI = ("🔁 <b>Gửi lại</b>: thẻ này có thể trùng với một thẻ đã gửi trước đó (máy "
                  "chủ bị gián đoạn khi đang gửi). Hãy xử lý trên thẻ này.")
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

    async def send_to_reporter(self, address: ReplyAddress, text: str, *,
                               html: bool = False) -> int:
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


def make_worker(
    database: Database, directory: CommuneDirectory, *, node: str | None = None,
    run_id: str | None = None, policy: DeliveryPolicy | None = None,
) -> OutboxWorker:
    translator = Translator.load()
    renderer = CardRenderer(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"),
                            translator.for_language("vi"))
    notices = ReporterNotices(translator, ChatSealer(SECRET), directory)
    return OutboxWorker(OutboxStore(database), renderer, Router(ops_chat_id=None), notices,
                        poll_interval=0.2, node=node, run_id=run_id, policy=policy)


async def test_a_burst_of_tips_gets_each_card_once_with_shared_bookkeeping(
    database: Database, directory: CommuneDirectory
) -> None:
    async with database.transaction() as session:
        session.add(GroupLink(chat_id=GROUP, scope="commune", code=2998, province_code=15,
                              linked_by=1))
    intake = IntakeService(IntakeStore(database), directory, Categories.load(), ChatSealer(SECRET),
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
        everything = (await session.exec(select(OutboxMessage))).all()
        cards = (await session.exec(select(TipCard))).all()
        delivered = (await session.exec(
            select(TipEvent).where(TipEvent.event == "delivered")
        )).all()
        tips = (await session.exec(select(Tip))).all()
    rows = [row for row in everything if row.kind == "tip_card"]
    receipts = [row for row in everything if row.kind == "receipt"]
    assert {row.status for row in rows} == {"sent"} and len(rows) == len(codes)
    # the receipts' safety nets are not due yet (no confirm handler marked them here)
    assert {(r.status, r.attempts) for r in receipts} == {("pending", 0)}
    assert len(receipts) == len(codes)
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
    database: Database, directory: CommuneDirectory
) -> None:
    async with database.transaction() as session:
        session.add(GroupLink(chat_id=GROUP, scope="commune", code=2998, province_code=15,
                              linked_by=1))
    intake = IntakeService(IntakeStore(database), directory, Categories.load(), ChatSealer(SECRET),
                           Router(ops_chat_id=None))
    await intake.begin("slow", "vi", commune_code=2998)
    await intake.choose_category("slow", "theft")
    await intake.set_urgency("slow", False)
    await intake.add_text("slow", "Sự việc")
    await intake.finish_attachments("slow")
    await intake.submit("slow", ReplyAddress("tg", "1"), channel="telegram")
    worker = make_worker(database, directory,
                         policy=DeliveryPolicy(lease=timedelta(milliseconds=50)))
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


# --- crashes, leases and the receipt's safety net ----------------------------------------------


class ReporterTransport(RecordingTransport):
    """Also takes messages to reporters: (chat id from the sealed address, text, html)."""

    def __init__(self) -> None:
        super().__init__()
        self.to_reporter: list[tuple[str, str, bool]] = []

    async def send_to_reporter(self, address: ReplyAddress, text: str, *,
                               html: bool = False) -> int:
        self.to_reporter.append((address.chat_id, text, html))
        return 1000 + len(self.to_reporter)


class HangsAfterPosting(RecordingTransport):
    """Telegram takes the card, then the process dies before it records that."""

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        self.sent.append((chat_id, text))
        await asyncio.Event().wait()
        raise AssertionError("never answered")


class FailsOncePerTip(RecordingTransport):
    """The first send of the card of each tip in ``errors`` fails with that error."""

    def __init__(self, errors: dict[str, DeliveryError]) -> None:
        super().__init__()
        self.errors = errors

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        for code, error in list(self.errors.items()):
            if code in text:
                del self.errors[code]
                raise error
        return await super().send_html(chat_id, text, reply_to=reply_to, buttons=buttons)


async def link_group(database: Database) -> None:
    async with database.transaction() as session:
        session.add(GroupLink(chat_id=GROUP, scope="commune", code=2998, province_code=15,
                              linked_by=1))


async def submit_one(
    database: Database, directory: CommuneDirectory, who: str, *, urgent: bool = False,
    text: str | None = None,
) -> Submitted:
    intake = IntakeService(IntakeStore(database), directory, Categories.load(), ChatSealer(SECRET),
                           Router(ops_chat_id=None))
    await intake.begin(who, "vi", commune_code=2998)
    await intake.choose_category(who, "theft")
    await intake.set_urgency(who, urgent)
    await intake.add_text(who, text or f"Sự việc của {who}")
    await intake.finish_attachments(who)
    return await intake.submit(who, ReplyAddress("tg", f"72000{len(who)}"), channel="telegram")


async def sent_by(worker: OutboxWorker, count: int, timeout: float = 10.0) -> None:
    """Waits for ``count`` rows sent; far shorter than a lease (a taken-back row is sent at
    once, a row left to its lease only after 30 s or 2 min)."""
    for _ in range(int(timeout / 0.02)):
        if worker.stats.sent >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{worker.stats.sent} of {count} rows sent")


async def row_of(database: Database, row_id: int | None) -> OutboxMessage:
    async with database.session() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None
    return row


async def test_a_row_left_claimed_by_an_earlier_run_here_is_sent_at_once_and_marked(
    database: Database, directory: CommuneDirectory
) -> None:
    """kill -9 after the claim: the next start on this host does not wait out the lease."""
    await link_group(database)
    tip = await submit_one(database, directory, "crash")
    earlier = make_worker(database, directory, node="host-1", run_id="A")
    [claimed] = await earlier._claim_due(10)  # claimed; then the process dies, nothing sent
    row = await row_of(database, claimed.row.id)
    assert row.kind == "tip_card" and row.lease_owner == "host-1#A"
    assert row.next_attempt_at > utcnow() + LEASE - timedelta(seconds=5)

    restarted = make_worker(database, directory, node="host-1", run_id="B")
    transport = RecordingTransport()
    restarted.start(transport)
    try:
        await sent_by(restarted, 1)
    finally:
        await restarted.stop()
    [(chat, text)] = transport.sent
    assert chat == GROUP and tip.code in text
    assert text.startswith("🔁 <b>Gửi lại</b>")  # the dead run may have posted it already
    row = await row_of(database, claimed.row.id)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_lease_held_by_another_host_is_left_to_run_out(
    database: Database, directory: CommuneDirectory
) -> None:
    await link_group(database)
    await submit_one(database, directory, "lease")
    holder = make_worker(database, directory, node="host-1", run_id="A")
    [claimed] = await holder._claim_due(10)
    leased_until = (await row_of(database, claimed.row.id)).next_attempt_at
    assert await holder._take_back_leftover_leases() == 0  # its own, still running
    assert await make_worker(database, directory, node="host-2", run_id="C") \
        ._take_back_leftover_leases() == 0  # maybe still sending over there
    assert (await row_of(database, claimed.row.id)).next_attempt_at == leased_until
    assert await make_worker(database, directory, node="host-1", run_id="B") \
        ._take_back_leftover_leases() == 1  # the same host restarted: A is dead
    assert (await row_of(database, claimed.row.id)).next_attempt_at <= utcnow()


async def test_urgent_rows_are_leased_for_less_time(
    database: Database, directory: CommuneDirectory
) -> None:
    await link_group(database)
    normal = await submit_one(database, directory, "normal")
    urgent = await submit_one(database, directory, "urgent", urgent=True)
    worker = make_worker(database, directory)
    before = utcnow()
    claimed = await worker._claim_due(10)
    after = utcnow()
    assert [c.row.tip_id for c in claimed] == [urgent.tip_id, normal.tip_id]  # urgent first
    leases = {c.row.tip_id: (await row_of(database, c.row.id)).next_attempt_at for c in claimed}
    assert URGENT_LEASE < LEASE
    assert before + URGENT_LEASE <= leases[urgent.tip_id] <= after + URGENT_LEASE
    assert before + LEASE <= leases[normal.tip_id] <= after + LEASE


async def test_a_card_posted_just_before_a_crash_is_sent_again_marked(
    database: Database, directory: CommuneDirectory
) -> None:
    """At least once: Telegram took the card, the process died before recording it. The
    card sent after the restart says it may be a repeat; the record points at it."""
    await link_group(database)
    tip = await submit_one(database, directory, "posted")
    first = make_worker(database, directory, node="host-1", run_id="A")
    dying = HangsAfterPosting()
    first.start(dying)
    for _ in range(500):
        if dying.sent:
            break
        await asyncio.sleep(0.02)
    await first.stop(grace_seconds=0.05)  # cut off between the post and its record
    second = make_worker(database, directory, node="host-1", run_id="B")
    transport = RecordingTransport()
    second.start(transport)
    try:
        await sent_by(second, 1)
    finally:
        await second.stop()
    [(_, original)], [(_, again)] = dying.sent, transport.sent
    assert tip.code in original and "Gửi lại" not in original
    assert tip.code in again and "Gửi lại" in again
    assert again.replace(RESENT_NOTE_VI + "\n", "") == original
    async with database.session() as session:
        [card] = (await session.exec(select(TipCard))).all()
    assert card.message_id == 1  # the re-sent card is the live one


async def test_a_timed_out_card_is_sent_again_marked_a_refused_one_is_not(
    database: Database, directory: CommuneDirectory
) -> None:
    await link_group(database)
    timed_out = await submit_one(database, directory, "timeout")
    refused = await submit_one(database, directory, "busy")
    transport = FailsOncePerTip({
        timed_out.code: RetryLater("TimedOut", 0, maybe_sent=True),  # no answer: maybe posted
        refused.code: RetryLater("429 Too Many Requests", 0),  # refused: certainly not
    })
    worker = make_worker(database, directory)
    worker.start(transport)
    try:
        await sent_by(worker, 2)
    finally:
        await worker.stop()
    texts = {code: text for code in (timed_out.code, refused.code)
             for _, text in transport.sent if code in text}
    assert "Gửi lại" in texts[timed_out.code]
    assert "Gửi lại" not in texts[refused.code]


async def test_a_receipt_row_reaches_the_reporter_when_nobody_else_sent_it(
    database: Database, directory: CommuneDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died before the confirm handler sent the receipt: once its row is due
    the outbox sends it, in the resident's language, even while the card cannot go out (no
    group linked here: the card waits, the receipt does not wait for it)."""
    monkeypatch.setattr("bot.domain.intake.RECEIPT_DELAY", timedelta(0))
    tip = await submit_one(database, directory, "alone")
    worker = make_worker(database, directory)
    transport = ReporterTransport()
    worker.start(transport)
    try:
        await sent_by(worker, 1)
    finally:
        await worker.stop()
    assert transport.to_reporter == [(
        "720005", f"✅ Đã nhận tin báo của bạn. Mã tra cứu: <code>{tip.code}</code>\n\n"
        f"Hãy lưu lại mã này: gõ /status <code>{tip.code}</code> từ bất kỳ điện thoại nào để "
        "xem tình trạng tin báo, hoặc /mytips trong cuộc trò chuyện này.", True,
    )]
    assert transport.sent == []
    async with database.session() as session:
        rows = {row.kind: row for row in (await session.exec(select(OutboxMessage))).all()}
    assert rows["receipt"].status == "sent" and rows["tip_card"].status == "pending"


async def test_a_pending_receipt_holds_back_nothing_of_its_tip(
    database: Database, directory: CommuneDirectory
) -> None:
    """The receipt's row (due 30 s after the commit) is older than the tip's later rows, yet
    a notice queued after it goes out at once."""
    await link_group(database)
    tip = await submit_one(database, directory, "notice")
    worker = make_worker(database, directory)
    transport = ReporterTransport()
    worker.start(transport)
    try:
        await sent_by(worker, 1)  # the card
        async with database.transaction() as session:
            session.add(OutboxMessage(kind="reporter_notice", tip_id=tip.tip_id,
                                      payload=json.dumps({"notice": "ack"})))
        worker.wake()
        await sent_by(worker, 2)
    finally:
        await worker.stop()
    [(_, text, html)] = transport.to_reporter
    assert text.startswith(f"Tin báo {tip.code} của bạn") and not html
    async with database.session() as session:
        receipt = (await session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "receipt")
        )).one()
    assert (receipt.status, receipt.attempts) == ("pending", 0)


OPS = -5_000_000_001


async def test_a_forged_payload_sends_nothing_and_is_given_up_to_the_admins(
    database: Database, directory: CommuneDirectory
) -> None:
    """A row whose payload no writer produces (here a notice with a key of its own) is not
    sent: its attempt fails like any other, and once the policy gives up the admins' ops
    chat is told, in Vietnamese, and the tip's history records it."""
    await link_group(database)
    tip = await submit_one(database, directory, "forged")
    async with database.transaction() as session:
        session.add(OutboxMessage(kind="reporter_notice", tip_id=tip.tip_id, payload=json.dumps(
            {"notice": "ack", "choice": None, "chat_id": 12345}
        )))
    translator = Translator.load()
    renderer = CardRenderer(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"),
                            translator.for_language("vi"))
    notices = ReporterNotices(translator, ChatSealer(SECRET), directory)
    worker = OutboxWorker(OutboxStore(database), renderer, Router(ops_chat_id=OPS), notices,
                          poll_interval=0.05, policy=DeliveryPolicy(max_attempts=1))
    transport = ReporterTransport()
    worker.start(transport)
    try:
        await sent_by(worker, 1)  # the card
        for _ in range(250):
            if any(chat == OPS for chat, _text in transport.sent):
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert transport.to_reporter == []
    assert [text for chat, text in transport.sent if chat == OPS] == [
        f"⚠️ Không gửi được (reporter_notice) cho tin báo số {tip.tip_id} sau 1 lần thử: "
        "PayloadError: unknown keys [&#x27;chat_id&#x27;]"
    ]
    async with database.session() as session:
        notice = (await session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "reporter_notice")
        )).one()
        events = (await session.exec(
            select(TipEvent).where(TipEvent.event == "delivery_failed")
        )).all()
    assert notice.status == "failed"
    assert [json.loads(e.details or "{}") for e in events] == [{"kind": "reporter_notice"}]


class FailsContinuationOnce(RecordingTransport):
    """The second part of a long card fails once (a 502: certainly not posted)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        if text.startswith("(tiếp") and not self.failed:
            self.failed = True
            raise RetryLater("502 Bad Gateway", 0)
        return await super().send_html(chat_id, text, reply_to=reply_to, buttons=buttons)


async def test_a_long_card_cut_off_after_its_first_part_is_sent_again_marked(
    database: Database, directory: CommuneDirectory
) -> None:
    """Part 1 (with the buttons) reached the group, part 2 did not: the next attempt posts a
    second part 1, so it says "Gửi lại"."""
    await link_group(database)
    tip = await submit_one(database, directory, "long", text="Chi tiết sự việc. " * 221)
    transport = FailsContinuationOnce()
    worker = make_worker(database, directory)
    worker.start(transport)
    try:
        await sent_by(worker, 1)
    finally:
        await worker.stop()
    firsts = [text for _, text in transport.sent if tip.code in text and "(tiếp" not in text]
    assert len(firsts) == 2
    assert "Gửi lại" not in firsts[0] and "Gửi lại" in firsts[1]


async def test_a_card_posted_but_not_recorded_is_sent_again_marked(
    database: Database, directory: CommuneDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram took the card, the database write that records it failed: the row still
    says "no card", so the card goes out again, marked."""
    await link_group(database)
    tip = await submit_one(database, directory, "unrecorded")
    worker = make_worker(database, directory)
    original = worker.store.write_cards_posted
    failures = [OperationalError("INSERT", {}, Exception("disk I/O error"))]

    async def fails_once(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        await original(*args, **kwargs)

    monkeypatch.setattr(worker.store, "write_cards_posted", fails_once)
    transport = RecordingTransport()
    worker.start(transport)
    try:
        await sent_by(worker, 1)
    finally:
        await worker.stop()
    cards = [text for _, text in transport.sent if tip.code in text]
    assert len(cards) == 2
    assert "Gửi lại" not in cards[0] and "Gửi lại" in cards[1]


class DigestRefused(RecordingTransport):
    """Every message to ``chat`` fails (a 5xx: certainly not posted)."""

    def __init__(self, chat: int) -> None:
        super().__init__()
        self.chat = chat

    async def send_html(self, chat_id: int, text: str, *, reply_to: int | None = None,
                        buttons: Buttons | None = None) -> int:
        if chat_id == self.chat:
            raise RetryLater("502 Bad Gateway", 0)
        return await super().send_html(chat_id, text, reply_to=reply_to, buttons=buttons)


async def test_a_digest_given_up_is_recorded_on_its_round_and_shown_to_the_admins(
    database: Database, directory: CommuneDirectory
) -> None:
    """A digest belongs to no tip: once the outbox gives it up, its round's ``job_runs``
    row says "failed" (not "pending" for ever) and the admins are told without a tip
    number."""
    group = -1_000_000_777
    async with database.transaction() as session:
        run = JobRun(job="reminder", scope=f"chat:{group}", round_key="2026-12-02T10:15Z",
                     status="pending")
        session.add(run)
        await session.flush()
        assert run.id is not None
        session.add(OutboxMessage(kind="digest", payload=DigestPayload(
            chat_id=group, parts=("⏰ Nhắc hạn",), run=run.id).to_json()))
    translator = Translator.load()
    renderer = CardRenderer(directory, Categories.load(), ZoneInfo("Asia/Ho_Chi_Minh"),
                            translator.for_language("vi"))
    notices = ReporterNotices(translator, ChatSealer(SECRET), directory)
    worker = OutboxWorker(OutboxStore(database), renderer, Router(ops_chat_id=OPS), notices,
                          poll_interval=0.05, policy=DeliveryPolicy(max_attempts=1))
    transport = DigestRefused(group)
    worker.start(transport)
    try:
        for _ in range(250):
            if any(chat == OPS for chat, _text in transport.sent):
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert [text for chat, text in transport.sent if chat == OPS] == [
        "⚠️ Không gửi được (digest) sau 1 lần thử: 502 Bad Gateway"]
    async with database.session() as session:
        row = (await session.exec(select(OutboxMessage))).one()
        ledger = (await session.exec(select(JobRun))).one()
    assert (row.status, ledger.status) == ("failed", "failed")
