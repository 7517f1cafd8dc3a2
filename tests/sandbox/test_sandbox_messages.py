"""The Bot API sandbox answers text-message methods as Telegram does (real PTB over HTTP)."""

from __future__ import annotations

import aiohttp
import pytest
from telegram import Bot, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken

from bot.sandbox import BotApiSandbox, SandboxUser


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_get_me_is_the_sandbox_bot(sandbox: BotApiSandbox, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == sandbox.bot_user.id == 123456
    assert me.is_bot and me.username == "tipline_sandbox_bot"
    assert sandbox.base_url.endswith("/bot")


async def test_wrong_token_is_unauthorized(sandbox: BotApiSandbox) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=sandbox.base_url):
            pass
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sandbox.url}/bot999:WRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False, "error_code": 401, "description": "Unauthorized"
            }
        async with http.post(f"{sandbox.base_url}{sandbox.token}/noSuchMethod") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found"


async def test_plain_http_bodies_json_and_form(
    sandbox: BotApiSandbox, lan_nguyen: SandboxUser
) -> None:
    url = f"{sandbox.base_url}{sandbox.token}/sendMessage"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"chat_id": lan_nguyen.id, "text": "json"}) as response:
            body = await response.json()
            assert body["ok"] is True and body["result"]["text"] == "json"
        async with http.post(url, data={"chat_id": str(lan_nguyen.id), "text": "form"}) as response:
            body = await response.json()
            assert body["result"]["text"] == "form"
            assert isinstance(body["result"]["date"], int)
        params = {"chat_id": str(lan_nguyen.id), "text": "query"}
        async with http.get(url, params=params) as response:
            assert (await response.json())["result"]["message_id"] == 4


async def test_send_message_to_private_chat(
    sandbox: BotApiSandbox, bot: Bot, lan_nguyen: SandboxUser
) -> None:
    sent = await bot.send_message(lan_nguyen.id, "Xin chào, cảm ơn bạn đã gửi tin báo.")
    assert sent.chat.id == lan_nguyen.id and sent.from_user.id == sandbox.bot_user.id
    assert sent.message_id == 2  # the user's /start was message 1 of this chat
    transcript = sandbox.transcript(lan_nguyen.id)
    assert [m["text"] for m in transcript] == ["/start", "Xin chào, cảm ơn bạn đã gửi tin báo."]
    assert transcript[1]["_deleted"] is False
    assert sandbox.bot_messages(lan_nguyen.id)[0]["message_id"] == 2


async def test_send_errors_for_unknown_and_unstarted_chats(
    sandbox: BotApiSandbox, bot: Bot
) -> None:
    stranger = sandbox.create_user("Minh")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "hi")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-4242, "hi")


async def test_text_length_limits(bot: Bot, lan_nguyen: SandboxUser) -> None:
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(lan_nguyen.id, "   \n ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(lan_nguyen.id, "ư" * 4097)
    longest = await bot.send_message(lan_nguyen.id, "😀" * 4096)  # counted in code points
    assert longest.text == "😀" * 4096
    trimmed = await bot.send_message(lan_nguyen.id, "  có khoảng trắng \n")
    assert trimmed.text == "có khoảng trắng"


async def test_html_parse_mode_produces_entities(bot: Bot, lan_nguyen: SandboxUser) -> None:
    sent = await bot.send_message(
        lan_nguyen.id,
        '😀 <b>Tin báo #12</b> &amp; <i>ghi chú</i> <a href="https://dichvucong.gov.vn">link</a>',
        parse_mode=ParseMode.HTML,
    )
    assert sent.text == "😀 Tin báo #12 & ghi chú link"
    kinds = {(e.type, e.offset, e.length) for e in sent.entities}
    assert ("bold", 3, 11) in kinds  # the emoji takes two UTF-16 units
    assert ("italic", 17, 7) in kinds
    assert ("text_link", 25, 4) in kinds
    with pytest.raises(BadRequest, match="Can't parse entities: unsupported start tag"):
        await bot.send_message(lan_nguyen.id, "1 < 2", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Can't parse entities: can't find end tag"):
        await bot.send_message(lan_nguyen.id, "<b>unclosed", parse_mode=ParseMode.HTML)


async def test_markdown_v2_reserved_characters(bot: Bot, lan_nguyen: SandboxUser) -> None:
    with pytest.raises(BadRequest, match=r"character '\.' is reserved"):
        await bot.send_message(lan_nguyen.id, "Số 1.5", parse_mode=ParseMode.MARKDOWN_V2)
    sent = await bot.send_message(lan_nguyen.id, r"*Đậm* số 1\.5", parse_mode=ParseMode.MARKDOWN_V2)
    assert sent.text == "Đậm số 1.5"
    assert sent.entities[0].type == "bold"


async def test_callback_data_is_limited_to_64_bytes(bot: Bot, lan_nguyen: SandboxUser) -> None:
    ok = "x" * 64
    sent = await bot.send_message(lan_nguyen.id, "ok", reply_markup=keyboard(ok))
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == ok
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(
            lan_nguyen.id, "too long", reply_markup=keyboard("đ" * 33)  # 66 bytes
        )


async def test_replies_and_force_reply(
    sandbox: BotApiSandbox, bot: Bot, lan_nguyen: SandboxUser
) -> None:
    question = await sandbox.send_text(lan_nguyen.id, "Tôi muốn báo tin")
    sent = await bot.send_message(
        lan_nguyen.id,
        "Mô tả sự việc?",
        reply_parameters=ReplyParameters(question["message_id"]),
        reply_markup=ForceReply(input_field_placeholder="Nội dung"),
    )
    assert sent.reply_to_message.message_id == question["message_id"]
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    old_style = await bot.send_message(
        lan_nguyen.id, "ok", reply_to_message_id=question["message_id"]
    )
    assert old_style.reply_to_message.text == "Tôi muốn báo tin"
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(lan_nguyen.id, "?", reply_parameters=ReplyParameters(999))


async def test_edit_message_text_and_markup(bot: Bot, lan_nguyen: SandboxUser) -> None:
    sent = await bot.send_message(lan_nguyen.id, "Đang xử lý", reply_markup=keyboard("t:1:ack"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Đang xử lý", lan_nguyen.id, sent.message_id,
                                    reply_markup=keyboard("t:1:ack"))
    edited = await bot.edit_message_text("Đã tiếp nhận", lan_nguyen.id, sent.message_id)
    assert edited.text == "Đã tiếp nhận" and edited.edit_date is not None
    assert edited.reply_markup is None  # no markup given: the keyboard goes away
    with_markup = await bot.edit_message_reply_markup(lan_nguyen.id, sent.message_id,
                                                      reply_markup=keyboard("a"))
    assert with_markup.reply_markup.inline_keyboard[0][0].callback_data == "a"
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", lan_nguyen.id, 9999)


async def test_delete_message_marks_transcript(
    sandbox: BotApiSandbox, bot: Bot, lan_nguyen: SandboxUser
) -> None:
    sent = await bot.send_message(lan_nguyen.id, "tạm")
    assert await bot.delete_message(lan_nguyen.id, sent.message_id) is True
    assert sandbox.bot_messages(lan_nguyen.id) == []
    assert sandbox.transcript(lan_nguyen.id)[-1]["_deleted"] is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(lan_nguyen.id, sent.message_id)


async def test_message_ids_grow_per_chat(sandbox: BotApiSandbox, bot: Bot) -> None:
    a, b = sandbox.create_user("A"), sandbox.create_user("B")
    await sandbox.send_text(a.id, "hi")
    await sandbox.send_text(b.id, "hi")
    first = await bot.send_message(a.id, "1")
    second = await bot.send_message(a.id, "2")
    other = await bot.send_message(b.id, "1")
    assert (first.message_id, second.message_id, other.message_id) == (2, 3, 2)
    assert a.id > 0 and a.id != b.id


async def test_edit_caption_and_protected_content(
    sandbox: BotApiSandbox, bot: Bot, lan_nguyen: SandboxUser
) -> None:
    doc = await bot.send_document(lan_nguyen.id, b"data", filename="a.txt", caption="cũ",
                                  protect_content=True)
    assert doc.has_protected_content
    edited = await bot.edit_message_caption(lan_nguyen.id, doc.message_id, caption="<i>mới</i>",
                                            parse_mode=ParseMode.HTML)
    assert edited.caption == "mới" and edited.caption_entities[0].type == "italic"
    with pytest.raises(BadRequest, match="There is no caption in the message to edit"):
        text = await bot.send_message(lan_nguyen.id, "chữ")
        await bot.edit_message_caption(lan_nguyen.id, text.message_id, caption="x")
    with pytest.raises(BadRequest, match="Message can't be forwarded"):
        await bot.forward_message(lan_nguyen.id, lan_nguyen.id, doc.message_id)


async def test_user_links_become_text_mentions(
    sandbox: BotApiSandbox, bot: Bot, lan_nguyen: SandboxUser
) -> None:
    sent = await bot.send_message(
        lan_nguyen.id,
        f'Cán bộ <a href="tg://user?id={lan_nguyen.id}">phụ trách</a>',
        parse_mode=ParseMode.HTML,
    )
    [mention] = sent.entities
    assert mention.type == "text_mention" and mention.user.id == lan_nguyen.id
    assert sandbox.bot_messages(lan_nguyen.id)[-1]["entities"][0]["user"]["first_name"] == "Lan"
