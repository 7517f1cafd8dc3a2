"""Flood limits, injected failures, and the 403/400 answers for gone users and moved groups."""

from __future__ import annotations

import asyncio
import datetime as dtm

import pytest
from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, InputMediaDocument
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.sandbox import BotApiSandbox, FloodCounts, RateLimits, SandboxUser
from tests.sandbox.conftest import started_sandbox


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def test_group_limit_hits_within_25_messages(sandbox: BotApiSandbox, bot: Bot) -> None:
    group = sandbox.create_group("Công an xã")
    sent, refused = 0, None
    for number in range(25):
        try:
            await bot.send_message(group.id, f"Tin báo {number}")
            sent += 1
        except RetryAfter as exc:
            refused = exc
            break
    assert sent == 20 and refused is not None
    assert 55 <= seconds(refused.retry_after) <= 60
    failed = sandbox.method_calls("sendMessage")[-1]
    assert failed["error_code"] == 429 and failed["description"].startswith(
        "Too Many Requests: retry after "
    )


async def test_private_chat_burst_then_about_one_per_second(bot: Bot, lan: SandboxUser) -> None:
    for number in range(5):
        await bot.send_message(lan.id, str(number))
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(lan.id, "sixth")
    assert 1 <= seconds(caught.value.retry_after) <= 5


async def test_global_limit_across_chats(sandbox: BotApiSandbox, bot: Bot) -> None:
    users = [sandbox.create_user(f"U{i}") for i in range(31)]
    for user in users:
        await sandbox.send_text(user.id, "hi")
    with pytest.raises(RetryAfter) as caught:
        for user in users:
            await bot.send_message(user.id, "thông báo")
    assert seconds(caught.value.retry_after) == 1
    assert sandbox.flood_counts() == FloodCounts(sent=30, refused=1, busiest_second=30)


async def test_flood_counts_the_busiest_second_and_injected_429s_apart(
    sandbox: BotApiSandbox, bot: Bot,
) -> None:
    users = [sandbox.create_user(f"U{i}") for i in range(12)]
    for user in users:
        await sandbox.send_text(user.id, "hi")
    sandbox.inject_errors("sendMessage", [(429, "Too Many Requests: retry after 1", 1)])
    with pytest.raises(RetryAfter):
        await bot.send_message(users[0].id, "0")
    for user in users[:5]:
        await bot.send_message(user.id, "1")
    await asyncio.sleep(1.05)
    for user in users[5:]:
        await bot.send_message(user.id, "2")
    # the injected 429 is in the call log, not among the flood limits' refusals
    assert sandbox.flood_counts() == FloodCounts(sent=12, refused=0, busiest_second=7)


async def test_media_group_counts_once_per_item(sandbox: BotApiSandbox, bot: Bot) -> None:
    group = sandbox.create_group("Công an xã")
    for number in range(19):
        await bot.send_message(group.id, str(number))
    album = [InputMediaDocument(b"1", filename="1.txt"), InputMediaDocument(b"2", filename="2.txt")]
    with pytest.raises(RetryAfter):
        await bot.send_media_group(group.id, album)
    assert len(sandbox.bot_messages(group.id)) == 19


async def test_fixed_retry_after_and_disabled_limits() -> None:
    fixed = await started_sandbox(RateLimits(private_burst=1, retry_after=7))
    free = await started_sandbox(RateLimits(enabled=False))
    try:
        for sb, expect_limit in ((fixed, True), (free, False)):
            user = sb.create_user("Lan")
            await sb.send_text(user.id, "hi")
            async with Bot(sb.token, base_url=sb.base_url) as client:
                await client.send_message(user.id, "1")
                if expect_limit:
                    with pytest.raises(RetryAfter) as caught:
                        await client.send_message(user.id, "2")
                    assert seconds(caught.value.retry_after) == 7
                else:
                    for number in range(40):
                        await client.send_message(user.id, str(number))
    finally:
        await fixed.stop()
        await free.stop()


async def test_injected_errors_come_in_order(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    sandbox.inject_errors(
        "sendMessage",
        [(500, "Internal Server Error"), (429, "Too Many Requests: retry after 2", 2)],
    )
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(lan.id, "1")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(lan.id, "2")
    assert seconds(caught.value.retry_after) == 2
    assert (await bot.send_message(lan.id, "3")).text == "3"
    assert [c["ok"] for c in sandbox.method_calls("sendmessage")] == [False, False, True]


async def test_blocked_user_and_kicked_bot(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    sandbox.block_bot(lan.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(lan.id, "nhắc nhở")
    statuses = [u["my_chat_member"]["new_chat_member"]["status"] for u in sandbox.updates
                if "my_chat_member" in u]
    assert statuses == ["kicked"]
    sandbox.unblock_bot(lan.id)
    await bot.send_message(lan.id, "ok")

    group = sandbox.create_group("Công an xã")
    sandbox.kick_bot(group.id)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(group.id, "tin báo")
    supergroup = sandbox.create_group("Công an tỉnh", supergroup=True)
    sandbox.kick_bot(supergroup.id)
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(supergroup.id, "tin báo")


async def test_group_migration_raises_chat_migrated(sandbox: BotApiSandbox, bot: Bot) -> None:
    officer = sandbox.create_user("Bình")
    group = sandbox.create_group("Công an xã", admins=[officer.id])
    new_id = await sandbox.migrate_to_supergroup(group.id)
    assert str(new_id).startswith("-100") and len(str(new_id)) == 14
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(group.id, "tin báo")
    assert caught.value.new_chat_id == new_id
    sent = await bot.send_message(new_id, "tin báo")
    assert sent.chat.type == "supergroup" and sent.chat.title == "Công an xã"
    old_service = sandbox.transcript(group.id)[-1]
    new_service = sandbox.transcript(new_id)[0]
    assert old_service["migrate_to_chat_id"] == new_id
    assert new_service["migrate_from_chat_id"] == group.id
    member = await bot.get_chat_member(new_id, officer.id)
    assert member.status == "administrator"


async def test_chat_members_and_chat_info(sandbox: BotApiSandbox, bot: Bot) -> None:
    admin, member, outsider = (sandbox.create_user(n) for n in ("An", "Bình", "Cường"))
    group = sandbox.create_group("Công an xã", members=[member.id], admins=[admin.id])
    assert (await bot.get_chat_member(group.id, admin.id)).status == "administrator"
    assert (await bot.get_chat_member(group.id, member.id)).status == "member"
    assert (await bot.get_chat_member(group.id, outsider.id)).status == "left"
    assert (await bot.get_chat_member(group.id, sandbox.bot_user.id)).status == "member"
    sandbox.remove_member(group.id, member.id)
    assert (await bot.get_chat_member(group.id, member.id)).status == "left"
    sandbox.add_member(group.id, outsider.id)
    assert (await bot.get_chat_member(group.id, outsider.id)).status == "member"
    admins = await bot.get_chat_administrators(group.id)
    assert [a.user.id for a in admins] == [admin.id]
    sandbox.add_member(group.id, sandbox.bot_user.id, admin=True)
    assert len(await bot.get_chat_administrators(group.id)) == 2
    chat = await bot.get_chat(group.id)
    assert (chat.id, chat.type, chat.title) == (group.id, "group", "Công an xã")
    assert await bot.get_chat_member_count(group.id) == 3
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(-123)


async def test_commands_by_scope_and_language(sandbox: BotApiSandbox, bot: Bot) -> None:
    resident = [BotCommand("start", "Bắt đầu"), BotCommand("report", "Gửi tin báo")]
    police = [BotCommand("link", "Liên kết nhóm")]
    await bot.set_my_commands(resident)
    await bot.set_my_commands(police, scope=BotCommandScopeAllGroupChats(), language_code="vi")
    assert sandbox.commands() == [c.to_dict() for c in resident]
    assert sandbox.commands(scope_type="all_group_chats", language_code="vi") == [
        {"command": "link", "description": "Liên kết nhóm"}
    ]
    assert [c.command for c in await bot.get_my_commands()] == ["start", "report"]
    await bot.delete_my_commands()
    assert sandbox.commands() == []
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Báo-tin", "x")])
    assert await bot.set_chat_menu_button() is True


async def test_chat_action(bot: Bot, lan: SandboxUser) -> None:
    assert await bot.send_chat_action(lan.id, "typing") is True
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(lan.id, "dancing")


async def test_editing_in_a_blocked_chat_is_forbidden(
    sandbox: BotApiSandbox, bot: Bot, lan: SandboxUser
) -> None:
    sent = await bot.send_message(lan.id, "Đang xử lý")
    sandbox.block_bot(lan.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.edit_message_text("Đã xử lý", lan.id, sent.message_id)
