"""The resident conversation without any channel: neutral events in, neutral messages out,
on a real database with the real services (SQLite, and PostgreSQL when configured). What a
Telegram chat shows of the same dialogue is in test_intake_bot.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.conversation.core import Conversation
from bot.conversation.model import (
    ChoicePressed,
    CommandIn,
    Edit,
    LocationIn,
    MessageRef,
    PictureIn,
    PictureOut,
    RecordingChat,
    Resident,
    Say,
    TextIn,
    Undelivered,
    flat,
)
from bot.conversation.numbered import NumberedMenu, render
from bot.domain.broadcast.subscribers import Subscriptions
from bot.domain.cards import CardRenderer
from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory, in_sentence
from bot.domain.geo import CommuneLocator
from bot.domain.identity import Pseudonymizer
from bot.domain.intake import IntakeService
from bot.domain.notices import ReporterNotices
from bot.domain.outbox import RECEIPT, OutboxWorker
from bot.domain.picture_jobs import PictureJobs
from bot.domain.residents import ResidentPreferences
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.domain.tips import TipQueries
from bot.domain.triage import TriageService
from bot.i18n import Translator
from storage.db import Database
from storage.intake import IntakeStore
from storage.models import OutboxMessage, Tip
from storage.outbox_store import OutboxStore
from storage.residents import ResidentStore
from storage.subscribers import SubscriberStore
from storage.tips import TipsStore
from storage.triage import TriageStore

SECRET = b"conversation-test-secret-0123456789"
PHUC_KHANH = 2998
PHOTO = (Path(__file__).parent / "fixtures" / "photos" / "DSCN0010.jpg").read_bytes()


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


class NoMembers:
    async def is_member(self, chat_id: int, user_id: int) -> bool:
        return False


@dataclass
class Zone:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))


@dataclass
class CoreServices:
    """The services the conversation uses, built as bot/app.py builds them."""

    settings: Zone
    directory: CommuneDirectory
    translator: Translator
    residents: ResidentPreferences
    categories: Categories
    locator: CommuneLocator
    intake: IntakeService
    tips: TipQueries
    outbox: OutboxWorker
    triage: TriageService
    pictures: PictureJobs
    subscriptions: Subscriptions


@pytest.fixture
async def conversation(database: Database, directory: CommuneDirectory) -> Conversation:
    categories, translator, sealer = Categories.load(), Translator.load(), ChatSealer(SECRET)
    router = Router(ops_chat_id=None)
    services = CoreServices(
        settings=Zone(), directory=directory, translator=translator,
        residents=ResidentPreferences(ResidentStore(database)), categories=categories,
        locator=CommuneLocator([]),
        intake=IntakeService(IntakeStore(database), directory, categories, sealer, router),
        tips=TipQueries(TipsStore(database)),
        outbox=OutboxWorker(
            OutboxStore(database), CardRenderer(
                directory, categories, Zone().zone, translator.for_language("vi")
            ), router,
            ReporterNotices(translator, sealer, directory),
        ),
        triage=TriageService(TriageStore(database), directory, NoMembers(), admin_ids=frozenset(),
                             retention=timedelta(days=90)),
        pictures=PictureJobs(workers=1),
        subscriptions=Subscriptions(SubscriberStore(database), sealer, directory),
    )
    return Conversation(services, photo_ack_delay=0.05, album_wait=0.2)


def resident(number: int = 1, language: str = "vi") -> Resident:
    pseudonym = Pseudonymizer(SECRET).resident("test", number)
    return Resident(pseudonym, language, ReplyAddress("test", str(number)), "test")


def ids(message: Say | Edit | PictureOut) -> list[str]:
    return [c.id for c in flat(message.choices)] if not isinstance(message, PictureOut) else []


def last(chat: RecordingChat) -> tuple[MessageRef, Say]:
    message = chat.sent[-1]
    assert isinstance(message, Say)
    return MessageRef(str(len(chat.sent))), message


async def press(
    conversation: Conversation, who: Resident, chat: RecordingChat, ref: MessageRef, choice: str
) -> None:
    await conversation.handle(who, ChoicePressed(choice, ref), chat)


async def tip_to_attachments(
    conversation: Conversation, who: Resident, chat: RecordingChat
) -> None:
    await conversation.handle(who, CommandIn("start", (f"c{PHUC_KHANH}",)), chat)
    await press(conversation, who, chat, last(chat)[0], "d:k:drugs")
    await press(conversation, who, chat, last(chat)[0], "d:u:0")
    await conversation.handle(who, TextIn("Có người bán ma túy ở chợ Phúc Khánh."), chat)


async def test_whole_dialogue_without_a_channel(
    conversation: Conversation, database: Database
) -> None:
    who, chat = resident(), RecordingChat()
    await conversation.handle(who, CommandIn("start", (f"c{PHUC_KHANH}",)), chat)
    first, prompt = last(chat)
    # 9.5.5: the division words in lower case mid-sentence; 9.5.1: the QR welcome line
    assert prompt.text.startswith("Gửi cho: xã Phúc Khánh, tỉnh Lào Cai\nTin báo về việc gì?")
    assert prompt.text.endswith("🔒 Ẩn danh: công an không bao giờ thấy tên, tài khoản hay số "
                                "điện thoại của bạn. Trường hợp khẩn cấp, gọi 113.")
    assert ids(prompt)[:2] == ["d:k:drugs", "d:k:theft"]

    await press(conversation, who, chat, first, "d:k:drugs")
    # 9.5.4: the answered prompt shows the answer, without choices
    assert chat.edits[-1] == Edit(first, "Gửi cho: xã Phúc Khánh, tỉnh Lào Cai\nLoại: Ma túy ✓",
                                  html=True)
    assert chat.alerts == [None]
    urgency, prompt = last(chat)
    assert ids(prompt) == ["d:u:1", "d:u:0", "d:x"]
    await press(conversation, who, chat, urgency, "d:u:0")
    assert chat.edits[-1] == Edit(urgency, "Khẩn cấp: không ✓", html=True)

    await conversation.handle(who, TextIn("Có người bán ma túy ở chợ Phúc Khánh."), chat)
    attachments, prompt = last(chat)
    assert "nút đính kèm 📎 → Vị trí" in prompt.text and ids(prompt) == ["d:done", "d:x"]

    # 9.5.3: after a location the reply offers "Done" at once; the older prompt loses it
    await conversation.handle(who, LocationIn(22.1, 104.1), chat)
    located, prompt = last(chat)
    assert prompt.text.startswith("📍 Đã thêm vị trí nơi xảy ra sự việc.")
    assert ids(prompt) == ["d:done", "d:x"]
    assert chat.edits[-1] == Edit(attachments)

    await press(conversation, who, chat, located, "d:done")
    assert chat.edits[-1] == Edit(located, "Ảnh: 0 · Vị trí: có ✓", html=True)
    review, prompt = last(chat)
    assert "Bấm “Gửi tin báo” để gửi." in prompt.text and ids(prompt) == ["d:ok", "d:x"]

    await press(conversation, who, chat, review, "d:ok")
    receipt = chat.sent[-1]
    assert isinstance(receipt, Say) and receipt.text.startswith("✅ Đã nhận tin báo của bạn.")
    # 9.5.4: the review says it was sent; no choices, no "tap Send" left
    [sent_review] = [e for e in chat.edits if e.message == review]
    assert sent_review.choices == () and sent_review.text is not None
    assert sent_review.text.startswith("<b>Tin báo của bạn (đã gửi):</b>")
    assert "Bấm “Gửi tin báo”" not in sent_review.text
    assert "✅ Đã gửi." in sent_review.text
    assert "Loại: Ma túy" in sent_review.text
    async with database.session() as session:
        tip = (await session.exec(select(Tip))).one()
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == RECEIPT))).one()
    assert tip.code in receipt.text and tip.commune_code == PHUC_KHANH
    assert row.status == "sent"  # the receipt went out: its safety net is done


async def test_a_receipt_the_channel_did_not_take_goes_to_the_outbox(
    conversation: Conversation, database: Database
) -> None:
    class Refusing(RecordingChat):
        async def deliver(self, message: Say) -> Undelivered | None:
            return Undelivered("RetryAfter", retry_after=3.0)

    who, chat = resident(), Refusing()
    await tip_to_attachments(conversation, who, chat)
    await press(conversation, who, chat, last(chat)[0], "d:done")
    await press(conversation, who, chat, last(chat)[0], "d:ok")
    async with database.session() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == RECEIPT))).one()
    assert row.status == "pending"
    assert row.next_attempt_at - row.created_at < timedelta(seconds=20)  # due now, not in 30 s


async def test_pictures_one_acknowledgement_and_the_first_prompt_loses_its_choices(
    conversation: Conversation, database: Database
) -> None:
    who, chat = resident(), RecordingChat()
    await tip_to_attachments(conversation, who, chat)
    attachments, prompt = last(chat)
    assert "Ảnh: 0/10" in prompt.text and ids(prompt) == ["d:done", "d:x"]
    await asyncio.gather(*(
        conversation.handle(who, PictureIn.of_bytes(PHOTO, order=n, album="a"), chat)
        for n in (1, 2)
    ))
    for _ in range(100):
        if len(chat.sent) > 5:
            break
        await asyncio.sleep(0.05)
    _ack, message = last(chat)
    assert message.text == "📷 Đã đính kèm 2/10 ảnh. Gửi thêm, hoặc bấm “Xong”."
    assert ids(message) == ["d:done", "d:x"]
    assert Edit(attachments) in chat.edits  # 9.5.4: "Ảnh: 0/10" has no live choices left
    view = await conversation.services.intake.current(who.pseudonym)
    assert view is not None and view.photo_count == 2


async def test_one_router_for_commands_codes_and_hints(conversation: Conversation) -> None:
    who, chat = resident(language="en"), RecordingChat()
    await conversation.handle(who, TextIn("hello"), chat)
    hint = chat.sent[-1]
    assert isinstance(hint, Say) and hint.text.startswith("To send a tip, tap /new.")
    assert ids(hint) == ["m:new", "m:look", "m:sub", "m:lang"]
    await conversation.handle(who, TextIn("7K3Q-9MXD"), chat)  # looks like a receipt code
    assert chat.sent[-1] == Say("No tip has this code. Please check it and try again.")
    await conversation.handle(who, TextIn("a reply", reply_to=MessageRef("99")), chat)
    assert isinstance(chat.sent[-1], Say) and chat.sent[-1].text.startswith("To send a tip")
    await press(conversation, who, chat, MessageRef("1"), "m:new")
    assert chat.sent[-1].text.startswith("Which commune or ward")  # type: ignore[union-attr]
    await press(conversation, who, chat, MessageRef("1"), "zz:forged")
    assert chat.alerts[-1] == "This button is no longer valid."
    await conversation.handle(who, CommandIn("cancel"), chat)
    assert chat.sent[-1] == Say("Your draft tip was deleted. Nothing was sent.")


async def test_choices_as_a_numbered_list_for_channels_without_buttons(
    conversation: Conversation,
) -> None:
    """A list channel (Zalo) shows "1. …" lines and reads "2" back as the second choice."""
    who, chat = resident(), RecordingChat()
    await conversation.handle(who, CommandIn("start", (f"c{PHUC_KHANH}",)), chat)
    await press(conversation, who, chat, last(chat)[0], "d:k:theft")
    ref, prompt = last(chat)
    _ = conversation.services.translator.for_language("vi")
    text, menu = render(prompt, _)
    assert text.splitlines()[-5:] == [
        "1. 🔴 Khẩn cấp – đang xảy ra", "2. Không khẩn cấp", "3. ❌ Hủy", "",
        "Trả lời 1, 2 hoặc 3",
    ]
    assert menu is not None
    choice = menu.pick(" 2 ")
    assert choice is not None and choice.id == "d:u:0"
    await press(conversation, who, chat, ref, choice.id)
    view = await conversation.services.intake.current(who.pseudonym)
    assert view is not None and view.urgent is False and view.step == "description"


def test_numbered_menu_reads_only_its_numbers() -> None:
    from bot.conversation.model import Choice
    menu = NumberedMenu((Choice("a", "A"), Choice("b", "B")))
    assert [menu.pick(t) for t in ("1", "2.", "số 2", "2)")] == [menu.choices[0]] + [
        menu.choices[1]] * 3
    assert [menu.pick(t) for t in ("0", "3", "12", "two", "1 2", "")] == [None] * 6
    _ = Translator.load().for_language("vi")
    assert render(Say("Câu hỏi?", ((Choice("a", "A"),),)), _)[0].endswith("Trả lời 1")
    assert render(Say("Chỉ chữ"), _) == ("Chỉ chữ", None)


def test_division_words_are_lower_case_inside_a_sentence() -> None:
    assert in_sentence("Xã Phúc Khánh") == "xã Phúc Khánh"
    assert in_sentence("Phường Ba Đình") == "phường Ba Đình"
    assert in_sentence("Đặc khu Phú Quốc") == "đặc khu Phú Quốc"
    assert in_sentence("Thành phố Hà Nội") == "thành phố Hà Nội"
    assert in_sentence("Tỉnh Lào Cai") == "tỉnh Lào Cai"
    assert in_sentence("Xãm Lạ") == "Xãm Lạ"  # a word, not the division


async def test_only_the_newest_prompt_keeps_its_choices_when_sends_overlap(
    conversation: Conversation,
) -> None:
    """Two texts at once, the first prompt's send slower than the second's: the prompt
    shown last (lowest in the chat) stays live, the other loses its choices."""
    delays: list[float] = []

    class Slow(RecordingChat):
        async def send(self, message: Say | PictureOut) -> MessageRef | None:
            if delays:
                await asyncio.sleep(delays.pop(0))
            return await super().send(message)

    who, chat = resident(), Slow()
    await tip_to_attachments(conversation, who, chat)
    delays += [0.3, 0.0]  # the first prompt to go out is slower than the second
    await asyncio.gather(
        conversation.handle(who, TextIn("Thêm một chi tiết."), chat),
        conversation.handle(who, TextIn("Và một chi tiết nữa."), chat),
    )
    closed = {e.message for e in chat.edits if e.text is None and not e.choices}
    live = [MessageRef(str(n)) for n, m in enumerate(chat.sent, 1)
            if isinstance(m, Say) and m.choices and MessageRef(str(n)) not in closed
            and not any(e.message == MessageRef(str(n)) and e.text for e in chat.edits)]
    assert live == [MessageRef(str(len(chat.sent)))]


async def test_a_review_confirmed_after_a_restart_loses_its_choices(
    conversation: Conversation, database: Database
) -> None:
    who, chat = resident(), RecordingChat()
    await tip_to_attachments(conversation, who, chat)
    await press(conversation, who, chat, last(chat)[0], "d:done")
    review = last(chat)[0]
    restarted = Conversation(conversation.services)  # nothing in memory, the draft in the DB
    await press(restarted, who, chat, review, "d:ok")
    assert Edit(review, None, html=True) in chat.edits
    receipt = chat.sent[-1]
    assert isinstance(receipt, Say) and receipt.text.startswith("✅ Đã nhận tin báo của bạn.")
