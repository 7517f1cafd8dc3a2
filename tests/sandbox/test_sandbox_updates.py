"""Updates from the sandbox reach the real PTB: long polling, webhooks, callback queries.

Every kind of update the sandbox emits must deserialize with `telegram.Update.de_json`
without leftover unknown fields.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, TelegramObject, Update
from telegram.error import BadRequest, Conflict
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox import BotApiSandbox, SandboxUser


def build_app(sandbox: BotApiSandbox) -> Application:  # type: ignore[type-arg]
    return (
        ApplicationBuilder()
        .token(sandbox.token)
        .base_url(sandbox.base_url)
        .base_file_url(sandbox.base_file_url)
        .build()
    )


@pytest.fixture
async def echo_app(sandbox: BotApiSandbox) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """A polling application: /start greets, text is echoed, buttons are answered."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Nhận", callback_data="t:1:ack")]])
        assert update.effective_message is not None
        await update.effective_message.reply_text("Chào bạn", reply_markup=keyboard)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("Đã nhận", show_alert=True)
        await update.callback_query.edit_message_text("Đã tiếp nhận")

    app = build_app(sandbox)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(button))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        yield app
        await app.updater.stop()
        await app.stop()


def unknown_fields(obj: Any, path: str = "update") -> list[str]:
    """Fields PTB did not recognise (kept in `api_kwargs`), anywhere in the object tree."""
    problems: list[str] = []
    if isinstance(obj, TelegramObject):
        if obj.api_kwargs:
            problems.append(f"{path}: {dict(obj.api_kwargs)}")
        for name, value in obj._get_attrs(recursive=False).items():
            problems += unknown_fields(value, f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            problems += unknown_fields(value, f"{path}[{index}]")
    return problems


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Every key the sandbox sent comes back from PTB's to_dict with the same value."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} lost in the round trip"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), path
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(left, right, f"{path}[{index}]")
    else:
        assert expected == actual, f"{path}: {expected!r} != {actual!r}"


def assert_round_trip(data: dict[str, Any], bot: Bot) -> Update:
    update = Update.de_json(data, bot)
    assert unknown_fields(update) == []
    assert_subset(data, update.to_dict())
    return update


def jpeg(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_every_update_kind_round_trips_through_ptb(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    officer = sandbox.create_user("Bình", username="canbo_binh")
    group = sandbox.create_group("Công an xã", admins=[officer.id])
    await sandbox.send_text(
        fresh_lan_nguyen.id, "/start t_abc có link https://example.vn và @canbo_binh"
    )
    await sandbox.send_photo(fresh_lan_nguyen.id, jpeg(), caption="ảnh hiện trường")
    await sandbox.send_document(
        fresh_lan_nguyen.id, b"%PDF-1.4 demo", file_name="don.pdf", mime_type="application/pdf"
    )
    await sandbox.send_location(fresh_lan_nguyen.id, 22.3364, 103.8438)
    card = await bot.send_message(
        group.id,
        "Tin báo mới",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Nhận", callback_data="a")]]),
    )
    await sandbox.press_button(officer.id, group.id, card.message_id, "a")
    newcomer = sandbox.create_user("Cường")
    sandbox.add_member(group.id, newcomer.id)
    sandbox.remove_member(group.id, newcomer.id)
    sandbox.block_bot(fresh_lan_nguyen.id)
    sandbox.unblock_bot(fresh_lan_nguyen.id)
    await sandbox.migrate_to_supergroup(group.id)

    kinds: dict[str, int] = {}
    for data in sandbox.updates:
        update = assert_round_trip(data, bot)
        kind = next(key for key in data if key != "update_id")
        kinds[kind] = kinds.get(kind, 0) + 1
        if update.message and update.message.migrate_to_chat_id:
            kinds["migrate_to"] = 1
        if update.message and update.message.migrate_from_chat_id:
            kinds["migrate_from"] = 1
    assert kinds["my_chat_member"] == 3 and kinds["callback_query"] == 1
    assert kinds["migrate_to"] == kinds["migrate_from"] == 1
    fetched = await bot.get_updates(timeout=0)
    assert [u.update_id for u in fetched] == [u["update_id"] for u in sandbox.updates]
    messages = [u.message for u in fetched if u.message is not None]
    [text] = [m for m in messages if m.text and m.text.startswith("/start")]
    assert [e.type for e in text.entities] == ["bot_command", "url", "mention"]
    [photo] = [m for m in messages if m.photo]
    assert photo.photo[-1].width == 640 and photo.caption == "ảnh hiện trường"
    [document] = [m for m in messages if m.document]
    assert document.document.file_name == "don.pdf"
    [location] = [m for m in messages if m.location]
    assert location.location.latitude == pytest.approx(22.3364)


async def test_polling_application_replies_and_answers_buttons(
    sandbox: BotApiSandbox, echo_app: Application, fresh_lan_nguyen: SandboxUser  # type: ignore[type-arg]
) -> None:
    await sandbox.send_text(fresh_lan_nguyen.id, "/start")
    [greeting] = await sandbox.wait_for_bot_messages(fresh_lan_nguyen.id, 1)
    assert greeting["text"] == "Chào bạn"
    await sandbox.send_text(fresh_lan_nguyen.id, "Có trộm")
    messages = await sandbox.wait_for_bot_messages(fresh_lan_nguyen.id, 2)
    assert messages[-1]["text"] == "echo: Có trộm"

    query_id = await sandbox.press_button(
        fresh_lan_nguyen.id, fresh_lan_nguyen.id, greeting["message_id"], "t:1:ack"
    )
    await sandbox.wait_idle()
    assert sandbox.callback_answer(query_id) == {"text": "Đã nhận", "show_alert": True}
    assert sandbox.bot_messages(fresh_lan_nguyen.id)[0]["text"] == "Đã tiếp nhận"
    with pytest.raises(ValueError, match="no button with callback_data 'forged'"):
        await sandbox.press_button(
            fresh_lan_nguyen.id, fresh_lan_nguyen.id, greeting["message_id"], "forged"
        )


async def test_answering_a_callback_twice_is_too_old(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    await sandbox.send_text(fresh_lan_nguyen.id, "hi")
    sent = await bot.send_message(fresh_lan_nguyen.id, "x")
    query_id = await sandbox.press_button(
        fresh_lan_nguyen.id, fresh_lan_nguyen.id, sent.message_id, "forged", check=False
    )
    assert await bot.answer_callback_query(query_id, "ok") is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("123")


async def test_long_poll_receives_an_update_sent_after_it_started(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await sandbox.send_text(fresh_lan_nguyen.id, "muộn")
    updates = await asyncio.wait_for(poll, 2)
    assert updates[0].message and updates[0].message.text == "muộn"
    again = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert again == ()
    assert sandbox.world.hub.pending == []


async def test_two_pollers_conflict(sandbox: BotApiSandbox, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await asyncio.sleep(0.1)
    async with Bot(sandbox.token, base_url=sandbox.base_url) as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=0.3))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        assert await second == ()


async def test_allowed_updates_filters_later_updates(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    await sandbox.send_text(fresh_lan_nguyen.id, "không giao")
    assert await bot.get_updates(timeout=0) == ()


async def test_group_privacy_mode(sandbox: BotApiSandbox, bot: Bot) -> None:
    officer = sandbox.create_user("Bình")
    group = sandbox.create_group("Công an xã", members=[officer.id])
    await bot.get_updates(offset=-1, timeout=0)
    start = len(sandbox.updates)
    await sandbox.send_text(officer.id, "chuyện riêng", chat_id=group.id)
    await sandbox.send_text(officer.id, "/link@tipline_sandbox_bot 2998", chat_id=group.id)
    await sandbox.send_text(officer.id, "/other@someone_else_bot", chat_id=group.id)
    card = await bot.send_message(group.id, "Tin báo")
    await sandbox.send_text(officer.id, "đã xử lý", chat_id=group.id,
                            reply_to_message_id=card.message_id)
    seen = [u["message"]["text"] for u in sandbox.updates[start:]]
    assert seen == ["/link@tipline_sandbox_bot 2998", "đã xử lý"]
    assert len(sandbox.transcript(group.id)) == 6  # the bot-joined message and all five
    sandbox.privacy_mode = False
    await sandbox.send_text(officer.id, "bot thấy hết", chat_id=group.id)
    assert sandbox.updates[-1]["message"]["text"] == "bot thấy hết"


async def test_webhook_posts_with_secret_and_retries(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    answers = [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(BadRequest):
            await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="bad secret!")
        with pytest.raises(BadRequest, match="only to loopback addresses"):
            await bot.set_webhook("https://bot.example.org/hook")
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr-et_X")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates(timeout=0)
        await sandbox.send_text(fresh_lan_nguyen.id, "một")
        await sandbox.send_text(fresh_lan_nguyen.id, "hai")
        await sandbox.wait_idle(settle=0)
        texts = [body["message"]["text"] for _, body in received]
        assert texts == ["một", "một", "hai"]  # the 500 was retried, order kept
        assert {secret for secret, _ in received} == {"s3cr-et_X"}
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0 and info.last_error_message
        await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


async def test_wait_idle_times_out_without_a_consumer(
    sandbox: BotApiSandbox, fresh_lan_nguyen: SandboxUser
) -> None:
    await sandbox.send_text(fresh_lan_nguyen.id, "không ai đọc")
    with pytest.raises(TimeoutError, match="1 updates pending"):
        await sandbox.wait_idle(timeout=0.3)


async def test_wait_for_bot_messages_explains_a_timeout(
    sandbox: BotApiSandbox, bot: Bot, fresh_lan_nguyen: SandboxUser
) -> None:
    await sandbox.send_text(fresh_lan_nguyen.id, "hi")
    await bot.send_message(fresh_lan_nguyen.id, "một")
    with pytest.raises(TimeoutError, match=r"bot sent 1 of 2 expected messages.*'một'"):
        await sandbox.wait_for_bot_messages(fresh_lan_nguyen.id, 2, timeout=0.2)
