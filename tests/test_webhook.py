"""Webhook mode inside our aiohttp server: the sandbox delivers updates by POST with the
secret header; we persist first, answer 200, dedupe by update_id and reject strangers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlmodel import select

from bot.app import BotEndpoint, TiplineRuntime
from bot.sandbox import BotApiSandbox
from bot.sandbox_mode import DemoWorld, link_demo_groups, seed_demo
from bot.web import SECRET_HEADER, WEBHOOK_PATH
from bot.webhook import WebhookInbox
from storage.db import Database
from storage.models import InboundUpdate
from tests.conftest import TEST_SECRET_KEY, World, make_settings

SECRET = "webhook-secret_123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def hooked(
    sandbox: BotApiSandbox, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[tuple[World, str]]:
    demo: DemoWorld = seed_demo(sandbox)
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    settings = make_settings(
        sqlite_url, tmp_path, admin_ids=[demo.admin.id], web_port=port, webhook_url=url,
        webhook_secret=SECRET, telegram_private_burst=25,
    )
    runtime = TiplineRuntime(
        settings, BotEndpoint(sandbox.token, sandbox.url), TEST_SECRET_KEY.encode()
    )
    try:
        await runtime.start()
        assert runtime.services is not None
        await link_demo_groups(runtime.services.linking, demo)
        yield World(sandbox, runtime, demo), url
    finally:
        await runtime.stop()


async def test_updates_arrive_by_webhook_and_are_answered(hooked: tuple[World, str]) -> None:
    world, _url = hooked
    assert world.sandbox.method_calls("setWebhook")[-1]["params"]["secret_token"] == SECRET
    assert not world.sandbox.method_calls("getUpdates")
    [reply] = await world.exchange(world.demo.residents[0], "/help")
    assert reply["text"].startswith("Bạn có thể:")
    async with world.services.db.session() as session:
        rows = (await session.exec(select(InboundUpdate))).all()
    assert rows and all(r.payload is None for r in rows if r.handled_at is not None)


async def test_wrong_secret_and_bad_json_are_refused(hooked: tuple[World, str]) -> None:
    world, url = hooked
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"update_id": 1}, headers={SECRET_HEADER: "nope"}) as r:
            assert r.status == 403
        async with http.post(url, data=b"{not json", headers={SECRET_HEADER: SECRET}) as r:
            assert r.status == 400
        async with http.post(url, json=[1, 2], headers={SECRET_HEADER: SECRET}) as r:
            assert r.status == 400
    async with world.services.db.session() as session:
        assert await session.get(InboundUpdate, 1) is None


async def test_a_redelivered_update_is_handled_once(hooked: tuple[World, str]) -> None:
    world, url = hooked
    resident = world.demo.residents[1]
    await world.exchange(resident, "/start")  # the private chat exists
    update = {
        "update_id": 987654,
        "message": {
            "message_id": 999, "date": 1_790_000_000, "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": resident.id, "type": "private", "first_name": resident.first_name},
            "from": {"id": resident.id, "is_bot": False, "first_name": resident.first_name,
                     "language_code": "en"},
        },
    }
    before = len(world.sandbox.bot_messages(resident.id))
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as r:
                assert r.status == 200
    await world.sandbox.wait_for_bot_messages(resident.id, before + 1)
    await asyncio.sleep(0.5)
    assert len(world.sandbox.bot_messages(resident.id)) == before + 1


@pytest.mark.parametrize("stored", ["sealed", "in clear by an earlier version"])
async def test_an_update_stored_before_a_crash_is_handled_after_restart(
    hooked: tuple[World, str], stored: str
) -> None:
    """Persist first, then 200: an update stored but never processed (the process died)
    is processed at the next start. It is stored sealed (it names the sender); rows an
    earlier version stored in clear are replayed too."""
    world, _url = hooked
    resident = world.demo.residents[1]
    await world.exchange(resident, "/start")
    await world.runtime.stop()
    update = {
        "update_id": 424242,
        "message": {
            "message_id": 998, "date": 1_790_000_000, "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": resident.id, "type": "private", "first_name": resident.first_name},
            "from": {"id": resident.id, "is_bot": False, "first_name": resident.first_name,
                     "language_code": "en"},
        },
    }
    db = Database(world.runtime.settings.database_url)
    if stored == "sealed":  # as the route stores it (the application is not running)
        assert world.runtime.application is not None
        inbox = WebhookInbox(db, world.runtime.application, TEST_SECRET_KEY.encode())
        assert await inbox.receive(update)
        async with db.session() as session:
            row = await session.get(InboundUpdate, 424242)
        assert row is not None and row.payload is not None
        assert str(resident.id) not in row.payload and resident.first_name not in row.payload
    else:
        async with db.transaction() as session:
            session.add(InboundUpdate(update_id=424242, payload=json.dumps(update)))
    await db.close()
    before = len(world.sandbox.bot_messages(resident.id))
    await world.runtime.start()
    [reply] = (await world.sandbox.wait_for_bot_messages(resident.id, before + 1))[before:]
    assert reply["text"].startswith("What you can do here:")
    for _ in range(100):  # marked handled once every handler group has run
        async with world.services.db.session() as session:
            row = await session.get(InboundUpdate, 424242)
        if row is not None and row.handled_at is not None:
            break
        await asyncio.sleep(0.05)
    assert row is not None and row.handled_at is not None and row.payload is None


async def test_an_update_is_synced_to_disk_before_the_200(hooked: tuple[World, str]) -> None:
    """Telegram does not send an update again once it got its 200: the commit that stores
    it runs with synchronous=FULL (the WAL is synced before COMMIT returns), so a power
    loss right after cannot take it."""
    world, _url = hooked
    engine = world.services.db.engine.sync_engine
    levels: list[int] = []

    def _statement(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO inbound_updates"):
            conn.info["stores_update"] = True

    def _commit(conn: Connection) -> None:
        if conn.info.pop("stores_update", False):
            levels.append(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

    event.listen(engine, "before_cursor_execute", _statement)
    event.listen(engine, "commit", _commit)
    try:
        await world.exchange(world.demo.residents[0], "/help")
    finally:
        event.remove(engine, "before_cursor_execute", _statement)
        event.remove(engine, "commit", _commit)
    assert levels and set(levels) == {2}  # FULL, for every update stored
