"""Identities never leak: not into the logs when the database fails (in the webhook route or
in a handler), not into the database files once an update is handled (SQLite's WAL and free
pages keep what a row held), and a ban does not keep the tip ↔ pseudonym link the retention
purge removes.

A resident with a distinctive id, names and username sends a tip; the logs (through the
production ``JsonFormatter``, every level) and the raw bytes of ``tipline.db``, ``-wal`` and
``-shm`` are searched for them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.domain.categories import Categories
from bot.domain.communes import CommuneDirectory
from bot.domain.intake import IntakeError, IntakeService
from bot.domain.routing import Router
from bot.domain.sealing import ChatSealer, ReplyAddress
from bot.domain.tips import TipQueries
from bot.logs import JsonFormatter
from bot.sandbox import SandboxUser
from bot.web import SECRET_HEADER
from storage.db import Database
from storage.intake import IntakeStore
from storage.models import Ban, InboundUpdate, TipReporter, utcnow
from storage.retention import purge_reporter_links
from storage.tips import TipsStore
from tests.conftest import World
from tests.test_webhook import SECRET, hooked  # noqa: F401  (the webhook-mode fixture)

USER_ID = 7391528406
FIRST_NAME = "Ngọc Xuyến"
LAST_NAME = "Tạ Lệ"
USERNAME = "xuyen_ta_1987"
PHONE = "+84987650321"
TIP_TEXT = "Ông Khải ở xóm Bờ Sông giấu pháo nổ trong kho lúa nhà bên cạnh."
PHUC_KHANH = 2998


def the_resident(world: World) -> SandboxUser:
    return world.sandbox.create_user(
        FIRST_NAME, last_name=LAST_NAME, username=USERNAME, phone_number=PHONE,
        user_id=USER_ID,
    )


def identity_strings(*, with_text: bool) -> list[str]:
    """The resident's identity as it could appear in text: plain and JSON-escaped."""
    values = [str(USER_ID), USERNAME, FIRST_NAME, LAST_NAME, PHONE, PHONE.lstrip("+")]
    if with_text:
        values += [TIP_TEXT, "xóm Bờ Sông"]
    escaped = [json.dumps(v)[1:-1] for v in values]  # "Ng\u1ecdc Xuy\u1ebfn"
    return list(dict.fromkeys(values + escaped))


@contextmanager
def production_logs() -> Iterator[io.StringIO]:
    """Every record of the bot, at every level, as the production handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda record: not record.name.startswith("bot.sandbox"))  # "Telegram"
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_no_identity(text: str, *, with_text: bool = True) -> None:
    found = [value for value in identity_strings(with_text=with_text) if value in text]
    assert not found, f"{found} in the logs:\n{text}"


def database_file(world: World) -> Path:
    return Path(str(make_url(world.runtime.settings.database_url).database))


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


async def press_and_wait(
    world: World, user: SandboxUser, message: dict[str, Any], data: str
) -> dict[str, Any]:
    before = len(world.sandbox.bot_messages(user.id))
    await world.press(user, message, data)
    messages = await world.sandbox.wait_for_bot_messages(user.id, before + 1)
    return messages[before]


async def up_to_the_description(world: World, resident: SandboxUser) -> dict[str, Any]:
    [prompt] = await world.exchange(resident, f"/start c{PHUC_KHANH}")
    prompt = await press_and_wait(world, resident, prompt, "d:k:drugs")
    return await press_and_wait(world, resident, prompt, "d:u:0")


async def post_update(url: str, payload: dict[str, Any]) -> int:
    """Deliver an update as Telegram does; the HTTP status of our answer."""
    async with aiohttp.ClientSession() as http, http.post(
        url, json=payload, headers={SECRET_HEADER: SECRET}
    ) as response:
        return response.status


async def all_handled(world: World) -> list[InboundUpdate]:
    """Once every webhook update has been through all handler groups (and was wiped)."""
    for _ in range(200):
        async with world.services.db.session() as session:
            rows = list((await session.exec(select(InboundUpdate))).all())
        if all(row.handled_at is not None for row in rows):
            break
        await asyncio.sleep(0.05)
    return rows


# --- logs ------------------------------------------------------------------------------------


async def test_a_database_error_in_a_handler_logs_no_identity(world: World) -> None:
    """The draft's write fails (the disk is full, say) while the resident's text is saved:
    the failure is logged with its type and traceback, the resident gets the apology, and
    the log holds neither who they are nor what they wrote."""
    resident = the_resident(world)
    await up_to_the_description(world, resident)
    with sqlite3.connect(database_file(world), isolation_level=None) as other:
        other.execute(
            "CREATE TRIGGER disk_full BEFORE UPDATE OF description ON drafts "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    other.close()
    with production_logs() as logs:
        [reply] = await world.exchange(resident, TIP_TEXT)
    assert reply["text"].startswith("Xin lỗi, hệ thống đang gặp sự cố.")
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    [failure] = [r for r in records if r["message"] == "handler failed"]
    assert failure["error_type"] == "IntegrityError"
    assert "database or disk is full" in failure["exception"]  # the cause stays readable
    assert "add_text" in failure["exception"]  # and where it happened
    assert_no_identity(logs.getvalue())


async def test_a_failed_webhook_insert_answers_5xx_and_logs_no_identity(
    hooked: tuple[World, str],  # noqa: F811
) -> None:
    """The INSERT into inbound_updates fails: Telegram is told to retry (503), the log
    names the update id only; the retry, once the database is back, is handled."""
    world, url = hooked
    resident = the_resident(world)
    await world.exchange(resident, "/start")  # the private chat exists
    await all_handled(world)
    update_id = 31337
    payload = {
        "update_id": update_id,
        "message": {
            "message_id": 999, "date": 1_790_000_000, "text": TIP_TEXT,
            "chat": {"id": USER_ID, "type": "private", "first_name": FIRST_NAME,
                     "last_name": LAST_NAME, "username": USERNAME},
            "from": {"id": USER_ID, "is_bot": False, "first_name": FIRST_NAME,
                     "last_name": LAST_NAME, "username": USERNAME, "language_code": "vi"},
        },
    }
    path = database_file(world)
    with sqlite3.connect(path, isolation_level=None) as other:  # the table is gone a while
        other.execute("ALTER TABLE inbound_updates RENAME TO inbound_updates_away")
    other.close()
    with production_logs() as logs:
        status = await post_update(url, payload)
    assert_no_identity(logs.getvalue())
    assert status == 503
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert {"message": "webhook update not stored", "update_id": update_id,
            "error_type": "OperationalError"}.items() <= next(
        r for r in records if r["message"] == "webhook update not stored").items()

    with sqlite3.connect(path, isolation_level=None) as other:
        other.execute("ALTER TABLE inbound_updates_away RENAME TO inbound_updates")
    other.close()
    before = len(world.sandbox.bot_messages(USER_ID))
    assert await post_update(url, payload) == 200  # Telegram's retry
    await world.sandbox.wait_for_bot_messages(USER_ID, before + 1)


async def test_a_malformed_request_to_our_web_server_logs_no_identity(world: World) -> None:
    """aiohttp logs a request it cannot parse with the offending bytes quoted (a header,
    the URL): from our server's loggers only the exception types and frames are kept."""
    assert world.runtime.web is not None
    port = world.runtime.web.port
    with production_logs() as logs:
        for raw in (
            f"POST /telegram/webhook HTTP/1.1\r\nHost: x\r\nX-From: {USERNAME}\x01\r\n\r\n",
            f"GET /{USERNAME}/{USER_ID}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw.encode())
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.0 400")
            writer.close()
            await writer.wait_closed()
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    failures = [r for r in records if r["logger"] == "aiohttp.server"]
    assert len(failures) == 2
    assert "BadHttpMessage" in failures[0]["exception"]
    assert "InvalidURLError" in failures[1]["exception"]
    assert_no_identity(logs.getvalue())


def test_configure_logging_redacts_sql_values_and_value_quoting_lines(
    sqlite_url: str,
) -> None:
    """The production set-up (``configure_logging``): an SQL error from an engine that does
    not hide its parameters (a tool's own, say) and a PostgreSQL ``DETAIL`` line reach the
    log without the values they quote; the rest of the message stays."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from bot.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogRecordFactory())
    logging.setLogRecordFactory(logging.LogRecord)  # as in a fresh process
    stream = io.StringIO()
    try:
        configure_logging("INFO", "json")
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        engine = create_engine(sqlite_url.replace("+aiosqlite", ""))
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO nowhere VALUES (:who, :what)"),
                                   {"who": USERNAME, "what": TIP_TEXT})
        except OperationalError as error:
            logging.getLogger("bot.tools").error("import failed", exc_info=error)
        finally:
            engine.dispose()
        detail = RuntimeError('duplicate key value violates unique constraint "x"\n'
                              f"DETAIL:  Key (name)=({FIRST_NAME}) already exists.")
        logging.getLogger("bot.tools").error("write failed: %s", detail)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.setLogRecordFactory(saved[2])
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["message"].splitlines()[0] for r in records] == [
        "import failed", 'write failed: duplicate key value violates unique constraint "x"',
    ]
    assert "no such table: nowhere" in records[0]["exception"]
    assert "DETAIL: withheld" in records[1]["message"]
    assert_no_identity(stream.getvalue())


# --- the database files ----------------------------------------------------------------------


def identity_bytes() -> list[bytes]:
    """The identity as it could sit in SQLite's files: UTF-8 text, JSON-escaped text, and
    the id as a big-endian integer (SQLite stores integers in 1-8 bytes; this id needs 6)."""
    texts = [value.encode() for value in identity_strings(with_text=False)]
    return [*texts, USER_ID.to_bytes(6, "big"), USER_ID.to_bytes(8, "big")]


def carve(files: list[Path]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in files:
        if path.exists():
            data = path.read_bytes()
            hits = [needle for needle in identity_bytes() if needle in data]
            if hits:
                found[path.name] = hits
    return found


async def test_handled_webhook_updates_leave_no_identity_in_the_database_files(
    hooked: tuple[World, str],  # noqa: F811
) -> None:
    """A whole tip arrives by webhook (each update stored before the 200, then wiped): the
    database, its WAL and shared-memory files hold no id, name or username, neither while
    the bot runs nor after it stopped (the WAL checkpointed into the database)."""
    world, _url = hooked
    resident = the_resident(world)
    prompt = await up_to_the_description(world, resident)
    [prompt] = await world.exchange(resident, TIP_TEXT)
    review = await press_and_wait(world, resident, prompt, "d:done")
    receipt = await press_and_wait(world, resident, review, "d:ok")
    assert receipt["text"].startswith("✅ Đã nhận tin báo của bạn.")
    await world.sandbox.wait_for_bot_messages(world.demo.commune_group.id, 1, timeout=10)
    rows = await all_handled(world)
    assert rows and all(row.payload is None for row in rows)

    path = database_file(world)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    assert files[1].exists() and files[1].stat().st_size > 0  # the WAL is there to carve
    assert carve(files) == {}
    await world.runtime.stop()
    assert carve(files) == {}


# --- bans after the retention purge ----------------------------------------------------------


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return CommuneDirectory.load()


async def test_a_ban_keeps_no_tip_code_after_the_reporter_link_is_purged(
    database: Database, directory: CommuneDirectory
) -> None:
    """Once the tip's link to its reporter is purged, the ban made through it no longer
    names the tip (nor pairs with its audit event by time or admin); it still bans."""
    secret = b"leak-test-secret-0123456789-abcdef"
    intake = IntakeService(
        IntakeStore(database), directory, Categories.load(), ChatSealer(secret),
        Router(ops_chat_id=None),
    )

    async def send(who: str, text: str) -> str:
        await intake.begin(who, "vi", commune_code=PHUC_KHANH)
        await intake.choose_category(who, "theft")
        await intake.set_urgency(who, False)
        await intake.add_text(who, text)
        await intake.finish_attachments(who)
        return (await intake.submit(who, ReplyAddress("tg", "1"), channel="telegram")).code

    banned_code = await send("troll", "Tin báo sai sự thật số một")
    kept_code = await send("other", "Một tin báo khác")
    tips = TipQueries(TipsStore(database))
    assert (await tips.ban_reporter(banned_code, admin_id=7100000001, admin_name="An")).found
    assert (await tips.ban_reporter(kept_code, admin_id=7100000001, admin_name="An")).found
    async with database.session() as session:
        banned = await session.get(Ban, "troll")
    assert banned is not None and banned.tip_code == banned_code  # while the link exists

    async with database.transaction() as session:  # retention is over for the first tip
        await session.exec(
            update(TipReporter).where(col(TipReporter.pseudonym) == "troll")  # type: ignore[call-overload]
            .values(purge_after=utcnow() - timedelta(seconds=1))
        )
    assert await purge_reporter_links(database) == 1
    async with database.session() as session:
        bans = {ban.pseudonym: ban for ban in (await session.exec(select(Ban))).all()}
    assert set(bans) == {"troll", "other"}
    assert bans["troll"].tip_code == "" and bans["troll"].banned_by == 0
    assert bans["troll"].banned_at < utcnow() - timedelta(days=365)
    assert banned_code not in {ban.tip_code for ban in bans.values()}
    assert bans["other"].tip_code == kept_code  # its tip is still linked: untouched
    with pytest.raises(IntakeError) as refused:
        await intake.begin("troll", "vi", commune_code=PHUC_KHANH)
    assert refused.value.reason == "banned"
