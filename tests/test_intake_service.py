"""The intake domain directly on real databases (SQLite and PostgreSQL): atomic commit,
concurrency, retention, expiry. No Telegram here: the domain does not import it."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import col, select

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.intake import (
    DRAFT_TTL,
    RECEIPT_DELAY,
    IntakeError,
    IntakeService,
    Step,
    Submitted,
)
from bot.domain.photos import SanitisedPhoto
from bot.domain.receipts import ALPHABET, new_code, normalise_code
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress, SealBroken
from storage.db import Database
from storage.intake import IntakeStore
from storage.models import (
    Ban,
    Draft,
    OutboxMessage,
    Photo,
    Tip,
    TipEvent,
    TipReporter,
    utcnow,
)
from storage.retention import purge_reporter_links

SECRET = b"intake-service-test-secret-0123456789"


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


@pytest.fixture
def intake(database: Database, directory: CommuneDirectory) -> IntakeService:
    return IntakeService(
        IntakeStore(database), directory, Categories.load(), ChatSealer(SECRET),
        Router(ops_chat_id=None),
    )


async def prepared(intake: IntakeService, who: str, text: str = "Sự việc cụ thể") -> None:
    await intake.begin(who, "vi", commune_code=2998)
    await intake.choose_category(who, "theft")
    await intake.set_urgency(who, False)
    await intake.add_text(who, text)
    await intake.finish_attachments(who)


async def test_submit_commits_tip_reporter_event_outbox_together(
    intake: IntakeService, database: Database
) -> None:
    await prepared(intake, "p1")
    result = await intake.submit("p1", ReplyAddress("tg", "7200000042"), channel="telegram")
    async with database.session() as session:
        tip = await session.get(Tip, result.tip_id)
        reporter = await session.get(TipReporter, result.tip_id)
        outbox = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        events = (await session.exec(select(TipEvent))).all()
        drafts = (await session.exec(select(Draft))).all()
    assert tip is not None and tip.code == result.code and tip.status == "new"
    assert tip.queue_scope == "none"  # nothing linked, no ops chat: still committed, queued
    assert reporter is not None and reporter.pseudonym == "p1"
    assert "7200000042" not in reporter.sealed_chat  # (a short id could occur in base64 by chance)
    assert ChatSealer(SECRET).open(reporter.sealed_chat) == ReplyAddress("tg", "7200000042")
    assert [(o.kind, o.tip_id, o.status) for o in outbox] == [
        ("tip_card", tip.id, "pending"), ("receipt", tip.id, "pending")
    ]
    card, receipt = outbox
    # the card is due at once; the receipt's safety net only once the confirm handler had
    # ample time to send the receipt itself (and mark the row sent)
    assert card.next_attempt_at == tip.created_at
    assert receipt.next_attempt_at == tip.created_at + RECEIPT_DELAY
    assert [e.event for e in events] == ["received"]
    assert drafts == []


async def test_photos_move_from_draft_to_tip(intake: IntakeService, database: Database) -> None:
    await intake.begin("p2", "vi", commune_code=2998)
    await intake.choose_category("p2", "drugs")
    await intake.set_urgency("p2", True)
    await intake.add_text("p2", "Có ảnh")
    photo = SanitisedPhoto(b"\xff\xd8jpeg", 10, 10, "JPEG")
    assert await intake.add_photo("p2", photo, order=7) == 1
    assert await intake.add_photo("p2", photo, order=5) == 2
    await intake.finish_attachments("p2")
    result = await intake.submit("p2", ReplyAddress("tg", "43"), channel="telegram")
    async with database.session() as session:
        photos = (await session.exec(select(Photo).order_by(col(Photo.position)))).all()
        tip = await session.get(Tip, result.tip_id)
    assert [(p.tip_id, p.draft_id, p.position) for p in photos] == [
        (result.tip_id, None, 5), (result.tip_id, None, 7)
    ]
    assert tip is not None and tip.photo_count == 2 and tip.urgent


async def test_wrong_step_and_limits_change_nothing(intake: IntakeService) -> None:
    with pytest.raises(IntakeError) as caught:
        await intake.add_text("nobody", "x")
    assert caught.value.reason == "no_draft"
    await intake.begin("p3", "vi", commune_code=2998)
    with pytest.raises(IntakeError) as caught:
        await intake.add_text("p3", "too early")
    assert caught.value.reason == "wrong_step"
    await intake.choose_category("p3", "theft")
    await intake.set_urgency("p3", False)
    with pytest.raises(IntakeError) as caught:
        await intake.add_text("p3", "x" * 4001)
    assert (caught.value.reason, caught.value.details) == (
        "text_too_long", {"limit": 4000, "length": 4001}
    )
    view = await intake.current("p3")
    assert view is not None and view.step == Step.DESCRIPTION and view.description is None


async def test_concurrent_submits_of_one_draft_commit_once(
    intake: IntakeService, database: Database
) -> None:
    await prepared(intake, "p4")
    results = await asyncio.gather(
        *(intake.submit("p4", ReplyAddress("tg", "44"), channel="telegram") for _ in range(5)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, IntakeError)]
    assert len(ok) == 1 and len(refused) == 4
    assert {r.reason for r in refused} == {"no_draft"}
    async with database.session() as session:
        assert len((await session.exec(select(Tip))).all()) == 1


async def test_many_residents_submitting_at_once_all_commit(
    intake: IntakeService, database: Database
) -> None:
    people = [f"r{i}" for i in range(25)]
    await asyncio.gather(*(prepared(intake, p, f"tin {p}") for p in people))
    results = await asyncio.gather(
        *(intake.submit(p, ReplyAddress("tg", p), channel="telegram") for p in people)
    )
    assert len({r.code for r in results}) == 25
    async with database.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert sorted((row.kind, row.tip_id) for row in rows) == sorted(
        (kind, r.tip_id) for r in results for kind in ("tip_card", "receipt")
    )


async def test_a_burst_of_submits_shares_transactions_and_keeps_each_answer(
    intake: IntakeService, database: Database
) -> None:
    """Submits arriving together are committed together, yet each resident gets the answer
    they would get alone: receipt, merge into their earlier identical tip, or refusal (and a
    refusal leaves their draft untouched)."""
    fresh = [f"f{i}" for i in range(20)]
    await asyncio.gather(*(prepared(intake, p, f"tin {p}") for p in fresh))
    await prepared(intake, "again", "Cùng một nội dung")  # sends the same tip twice
    first = await intake.submit("again", ReplyAddress("tg", "1"), channel="telegram")
    await prepared(intake, "again", "Cùng  một NỘI dung")  # same after folding
    for n in range(5):  # five tips within the hour: the sixth is refused
        await prepared(intake, "busy", f"tin số {n}")
        await intake.submit("busy", ReplyAddress("tg", "2"), channel="telegram")
    await prepared(intake, "banned", "tin của người bị cấm")
    async with database.transaction() as session:
        session.add(Ban(pseudonym="banned", banned_by=1, tip_code=first.code))
        # a draft written before the limit was reached (starting one now is refused)
        session.add(Draft(pseudonym="busy", step=Step.REVIEW, commune_code=2998,
                          category="theft", description="tin số 6"))
    await intake.begin("early", "vi", commune_code=2998)  # still choosing a category
    batches_before = intake_batches(intake)

    names = [*fresh, "again", "busy", "banned", "early", "nobody"]
    results = await asyncio.gather(
        *(intake.submit(p, ReplyAddress("tg", p), channel="telegram") for p in names),
        return_exceptions=True,
    )
    answers = dict(zip(names, results, strict=True))
    assert all(isinstance(answers[p], Submitted) for p in fresh)
    assert len({answers[p].code for p in fresh}) == 20  # type: ignore[union-attr]
    assert answers["again"] == Submitted(first.tip_id, first.code, duplicate=True)
    refused = ("busy", "banned", "early", "nobody")
    reasons = {p: getattr(answers[p], "reason", None) for p in refused}
    assert reasons == {"busy": "rate_hour", "banned": "banned", "early": "wrong_step",
                       "nobody": "no_draft"}
    assert intake_batches(intake) - batches_before < len(names) // 2  # shared, not one each
    async with database.session() as session:
        tips = (await session.exec(select(Tip))).all()
        drafts = {d.pseudonym: d.step for d in (await session.exec(select(Draft))).all()}
        received = (await session.exec(select(TipEvent).where(TipEvent.event == "received"))).all()
        merged = (await session.exec(
            select(TipEvent).where(TipEvent.event == "duplicate_merged")
        )).all()
        outbox = (await session.exec(select(OutboxMessage))).all()
    assert len(tips) == 20 + 1 + 5 and len(received) == len(tips)
    assert len(outbox) == 2 * len(tips)  # a card and a receipt each; none for the merged one
    assert [e.tip_id for e in merged] == [first.tip_id]
    assert drafts == {"busy": Step.REVIEW, "banned": Step.REVIEW, "early": Step.CATEGORY}


def intake_batches(intake: IntakeService) -> int:
    return intake._submits.batches


async def test_expired_drafts_are_purged(intake: IntakeService, database: Database) -> None:
    await intake.begin("old", "vi", commune_code=2998)
    await intake.begin("fresh", "vi", commune_code=2998)
    async with database.transaction() as session:
        await session.exec(
            update(Draft).where(col(Draft.pseudonym) == "old")  # type: ignore[call-overload]
            .values(updated_at=utcnow() - DRAFT_TTL - timedelta(minutes=1))
        )
    assert await intake.purge_expired_drafts() == 1
    assert await intake.current("old") is None
    assert await intake.current("fresh") is not None


async def test_reporter_links_are_purged_after_retention(
    intake: IntakeService, database: Database
) -> None:
    await prepared(intake, "p5")
    result = await intake.submit("p5", ReplyAddress("tg", "45"), channel="telegram")
    assert await purge_reporter_links(database) == 0  # open tips keep their link
    async with database.transaction() as session:
        await session.exec(
            update(TipReporter).where(col(TipReporter.tip_id) == result.tip_id)  # type: ignore[call-overload]
            .values(purge_after=utcnow() - timedelta(seconds=1))
        )
    assert await purge_reporter_links(database) == 1
    async with database.session() as session:
        assert await session.get(TipReporter, result.tip_id) is None
        assert await session.get(Tip, result.tip_id) is not None  # the tip itself stays


async def test_audit_rows_cannot_be_changed_or_deleted(
    intake: IntakeService, database: Database
) -> None:
    await prepared(intake, "p6")
    await intake.submit("p6", ReplyAddress("tg", "46"), channel="telegram")
    for statement in ("UPDATE tip_events SET event = 'forged'", "DELETE FROM tip_events"):
        with pytest.raises(Exception, match="append-only"):
            async with database.transaction() as session:
                await session.exec(text(statement))  # type: ignore[call-overload]
    async with database.session() as session:
        assert [e.event for e in (await session.exec(select(TipEvent))).all()] == ["received"]


def test_receipt_codes() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert len(code) == 9 and code[4] == "-"
        assert all(ch in ALPHABET for ch in code.replace("-", ""))
    assert len(ALPHABET) ** 8 >= 2**40
    assert normalise_code("7k3q 9mxd") == "7K3Q-9MXD"
    assert normalise_code("OIL0-UUUU") == "0110-VVVV"
    assert normalise_code("7K3Q-9MX") is None
    assert normalise_code("7K3Q-9MX!") is None


def test_sealed_address_needs_the_key(tmp_path: Path) -> None:
    sealed = ChatSealer(SECRET).seal(ReplyAddress("tg", "7200000001"))
    assert "7200000001" not in sealed
    with pytest.raises(SealBroken):
        ChatSealer(b"another-secret-key-0123456789-abcdef").open(sealed)
    with pytest.raises(SealBroken):
        ChatSealer(SECRET).open(sealed[:-4] + "AAAA")


def test_long_card_is_split_without_losing_text() -> None:
    from bot.domain.cards import TEXT_LIMIT, split_html_body

    header = "📥 <b>Tin báo</b> <code>AAAA-BBBB</code>\n" * 8
    body = ("Có người &amp; xe &lt;lạ&gt; ở chợ. " * 200)[:4000]
    parts = split_html_body(header, body, "(tiếp – AAAA-BBBB)\n")
    assert len(parts) == 2 and all(len(p) <= TEXT_LIMIT for p in parts)
    rebuilt = parts[0][len(header):] + " " + parts[1].removeprefix("(tiếp – AAAA-BBBB)\n")
    assert rebuilt.split() == body.split()
    for part in parts:  # never cut inside an HTML entity
        assert re.search(r"&(?!amp;|lt;|gt;)", part) is None
