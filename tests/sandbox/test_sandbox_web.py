"""The sandbox's web chat page and its HTTP control API answer over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox import BotApiSandbox


@pytest.fixture
async def http(sandbox: BotApiSandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> Any:
    async with http.request(method, f"/sandbox/api{path}", **kwargs) as response:
        body = await response.json()
        assert response.status == 200, body
        return body


async def test_page_and_static_files(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert '<script src="/static/app.js">' in page and "https://" not in page
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        async with http.get(f"/static/{name}") as response:
            assert response.status == 200 and response.content_type == kind
    async with http.get("/static/server.py") as response:
        assert response.status == 404


async def test_people_act_through_the_control_api(
    sandbox: BotApiSandbox, http: aiohttp.ClientSession
) -> None:
    user = await call(http, "POST", "/users", json={"first_name": "Dung", "phone_number": "+8490"})
    assert user["first_name"] == "Dung" and user["started"] is False
    message = await call(http, "POST", "/messages/text", json={"user_id": user["id"],
                                                                "text": "/start"})
    assert message["entities"][0]["type"] == "bot_command"
    location = await call(http, "POST", "/messages/location",
                          json={"user_id": user["id"], "latitude": 22.3, "longitude": 103.8})
    assert location["location"] == {"latitude": 22.3, "longitude": 103.8}
    transcript = await call(http, "GET", f"/chats/{user['id']}/transcript")
    assert [m["message_id"] for m in transcript["messages"]] == [1, 2]
    state = await call(http, "GET", "/state")
    assert [c["name"] for c in state["chats"]] == ["Dung"]
    assert state["users"][0]["started"] is True
    blocked = await call(http, "POST", f"/users/{user['id']}/block", json={"blocked": True})
    assert blocked["blocked"] is True and user["id"] in sandbox.world.blocked
    async with http.post("/sandbox/api/messages/text", json={"user_id": 1, "text": "x"}) as resp:
        assert resp.status == 400 and "no sandbox user" in (await resp.json())["error"]
    async with http.post("/sandbox/api/messages/text", json={"text": "x"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "missing field user_id"
    async with http.get("/sandbox/api/files/nope") as resp:
        assert resp.status == 404


async def test_media_uploads_and_file_route(
    sandbox: BotApiSandbox, http: aiohttp.ClientSession
) -> None:
    user = sandbox.create_user("Dung")
    buffer = io.BytesIO()
    Image.new("RGB", (500, 400), (10, 20, 30)).save(buffer, "PNG")
    original = buffer.getvalue()
    for as_file in ("false", "true"):
        form = aiohttp.FormData()
        form.add_field("user_id", str(user.id))
        form.add_field("caption", "ảnh")
        form.add_field("as_file", as_file)
        form.add_field("file", original, filename="scene.png", content_type="image/png")
        message = await call(http, "POST", "/messages/photo", data=form)
        if as_file == "true":
            file_id = message["document"]["file_id"]
            assert message["document"]["file_name"] == "scene.png"
            async with http.get(f"/sandbox/api/files/{file_id}") as response:
                assert await response.read() == original
        else:
            assert [s["width"] for s in message["photo"]] == [90, 320, 500]
            assert message["caption"] == "ảnh"


async def test_buttons_groups_and_transcript_long_poll(
    sandbox: BotApiSandbox, http: aiohttp.ClientSession
) -> None:
    admin = sandbox.create_user("An")
    member = sandbox.create_user("Bình")
    group = await call(http, "POST", "/groups", json={"title": "Công an xã",
                                                       "admins": [admin.id]})
    await call(http, "POST", f"/groups/{group['id']}/members", json={"user_id": member.id})
    async with Bot(sandbox.token, base_url=sandbox.base_url) as bot:
        card = await bot.send_message(group["id"], "Tin báo", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Nhận", callback_data="t:1:ack")]]))
        pressed = await call(http, "POST", "/buttons", json={
            "user_id": member.id, "chat_id": group["id"], "message_id": card.message_id,
            "callback_data": "t:1:ack"})
        await bot.answer_callback_query(pressed["callback_query_id"], "Đã nhận")
    answer = await call(http, "GET", f"/callbacks/{pressed['callback_query_id']}")
    assert answer == {"answer": {"text": "Đã nhận", "show_alert": False}}
    transcript = await call(http, "GET", f"/chats/{group['id']}/transcript")
    assert transcript["answers"][0]["data"] == "t:1:ack"
    assert transcript["messages"][-1]["_markup"]["inline_keyboard"][0][0]["text"] == "Nhận"

    waiting = asyncio.create_task(call(
        http, "GET", f"/chats/{group['id']}/transcript",
        params={"since": str(transcript["version"]), "wait": "5"}))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await sandbox.send_text(member.id, "đã xử lý", chat_id=group["id"])
    later = await asyncio.wait_for(waiting, 2)
    assert later["messages"][-1]["text"] == "đã xử lý"

    await call(http, "DELETE", f"/groups/{group['id']}/members/{member.id}")
    migrated = await call(http, "POST", f"/groups/{group['id']}/migrate")
    assert str(migrated["chat_id"]).startswith("-100")
    await call(http, "POST", f"/groups/{migrated['chat_id']}/kick_bot")
    calls = await call(http, "GET", "/calls", params={"method": "sendMessage"})
    assert len(calls) == 1 and calls[0]["ok"] is True
    updates = await call(http, "GET", "/updates")
    assert any("callback_query" in u for u in updates)


HARNESS = Path(__file__).with_name("page_harness.js")
APP_JS = Path(__file__).parents[2] / "bot" / "sandbox" / "static" / "app.js"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


async def open_page(sandbox: BotApiSandbox, hash_: str, scenario: str = "") -> Any:
    """What the page shows after loading with ``#hash_`` (and a scenario): app.js run by
    Node with a minimal DOM against this sandbox over HTTP (tests/sandbox/page_harness.js)."""
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node, str(HARNESS), str(APP_JS), sandbox.url, hash_, scenario,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


@needs_node
async def test_opening_a_group_keeps_who_you_are_and_says_you_are_not_in_it(
    sandbox: BotApiSandbox,
) -> None:
    """"You are" Dung, who is not in the police group: opening it does not switch to a
    member (a press would be recorded as someone else); the page says so, its buttons are
    off, and offers the members to act as. Times are ICT, 24 h."""
    dung = sandbox.create_user("Dung")
    officer = sandbox.create_user("Minh", last_name="Trần")
    group = sandbox.create_group("Công an xã Phúc Khánh", admins=[officer.id])
    async with Bot(sandbox.token, base_url=sandbox.base_url) as bot:
        card = await bot.send_message(group.id, "Tin báo", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Nhận", callback_data="t:1:ack")]]))
    ict = card.date.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%H:%M")  # 24 h

    seen = await open_page(sandbox, f"#chat={group.id}&me={dung.id}", "act-as")
    opened = seen["opened"]
    assert opened["me"] == dung.id
    assert opened["notice"].startswith("You are Dung, who is not in this group: Dung cannot "
                                       "write or press buttons here.")
    assert opened["actAs"] == ["Minh Trần ★"]
    assert opened["buttons"] == [{"text": "Nhận", "disabled": True}]
    assert opened["times"] == [ict]
    after = seen["after"]  # pressed "Minh Trần ★": now acting as the officer
    assert after["me"] == officer.id and after["notice"].startswith("Privacy mode")
    assert after["buttons"] == [{"text": "Nhận", "disabled": False}]


@needs_node
async def test_reloading_the_page_does_not_replay_an_old_popup(sandbox: BotApiSandbox) -> None:
    dung = sandbox.create_user("Dung")
    async with Bot(sandbox.token, base_url=sandbox.base_url) as bot:
        await sandbox.send_text(dung.id, "/start")
        prompt = await bot.send_message(dung.id, "Loại sự việc?", reply_markup=(
            InlineKeyboardMarkup([[InlineKeyboardButton("Trộm cắp", callback_data="c:theft")]])))
        first = await sandbox.press_button(dung.id, dung.id, prompt.message_id, "c:theft")
        await bot.answer_callback_query(first, "Đã chọn: Trộm cắp")

        async def answer_the_next_press() -> None:
            while True:
                waiting = [q.id for q in sandbox.world.callbacks.values()
                           if q.answer is None and q.id != first]
                if waiting:
                    await bot.answer_callback_query(waiting[0], "Đã chọn lại")
                    return
                await asyncio.sleep(0.05)

        answering = asyncio.create_task(answer_the_next_press())
        seen = await open_page(sandbox, f"#chat={dung.id}&me={dung.id}", "press-again")
        await asyncio.wait_for(answering, 5)
    assert seen["opened"]["toast"] is None  # the old answer is not shown again
    assert seen["after"]["toast"] == "Đã chọn lại"  # a new one is
