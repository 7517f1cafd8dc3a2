"""Shared fixtures: real databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotEndpoint, TiplineRuntime
from bot.context import Services
from bot.domain.clock import Clock
from bot.sandbox import BotApiSandbox, RateLimits, SandboxUser
from bot.sandbox_mode import DemoWorld, link_demo_groups, seed_demo
from bot.settings import Settings
from storage import migrate
from storage.db import Database

POSTGRES_ENV = "TIPLINE_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = f"{POSTGRES_ENV} is not set (PostgreSQL tests run in .ci/run)"


def _postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(admin_url)
    name = f"tipline_{uuid.uuid4().hex[:12]}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tipline.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL (skipped without it)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend."""
    db = Database(database_url)
    await migrate.upgrade(db)
    try:
        yield db
    finally:
        await db.close()


# ---------------------------------------------------------------------------------------------
# End to end: the real python-telegram-bot, our runtime, the local Bot API sandbox over HTTP.
# ---------------------------------------------------------------------------------------------

TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"


@dataclass
class World:
    """A running bot against a sandbox seeded with the demo people and groups."""

    sandbox: BotApiSandbox
    runtime: TiplineRuntime
    demo: DemoWorld

    @property
    def services(self) -> Services:
        assert self.runtime.services is not None
        return self.runtime.services

    async def exchange(
        self, user: SandboxUser, text: str, *, chat_id: int | None = None, replies: int = 1,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Send ``text`` as ``user`` and return the bot's next ``replies`` messages there."""
        chat = user.id if chat_id is None else chat_id
        before = len(self.sandbox.bot_messages(chat))
        await self.sandbox.send_text(user.id, text, chat_id=chat_id)
        messages = await self.sandbox.wait_for_bot_messages(chat, before + replies, timeout)
        return messages[before:]

    async def press(
        self, user: SandboxUser, message: dict[str, Any], data: str, *, check: bool = True
    ) -> dict[str, Any]:
        """Press an inline button and return the bot's answer to the callback query."""
        query_id = await self.sandbox.press_button(
            user.id, message["chat"]["id"], message["message_id"], data, check=check
        )
        for _ in range(200):
            answer = self.sandbox.callback_answer(query_id)
            if answer is not None:
                return answer
            await asyncio.sleep(0.025)
        raise TimeoutError(f"the bot never answered callback {data!r}")


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "web_port": 0,
        "secret_key": TEST_SECRET_KEY,
        "log_format": "text",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


FAST_PRIVATE_BURST = 25  # tests press buttons faster than people; limits are tested apart


class MovableClock:
    """A clock tests move forward instead of sleeping (``bot.domain.clock.Clock``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        assert moment.tzinfo is not None
        self._now = moment

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


@pytest.fixture
async def sandbox() -> AsyncIterator[BotApiSandbox]:
    box = BotApiSandbox(limits=RateLimits(private_burst=FAST_PRIVATE_BURST + 5))
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


@contextlib.asynccontextmanager
async def running_world(
    sandbox: BotApiSandbox, database_url: str, tmp_path: Path, *, clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """The demo people and groups, the bot running against the sandbox, groups linked.
    ``clock``: the bot's clock (a :class:`MovableClock` to move time forward)."""
    demo = seed_demo(sandbox)
    values: dict[str, Any] = {
        "admin_ids": [demo.admin.id], "ops_chat_id": demo.ops_group.id,
        "telegram_private_burst": FAST_PRIVATE_BURST, "membership_cache_seconds": 0,
    }
    settings = make_settings(database_url, tmp_path, **(values | overrides))
    runtime = TiplineRuntime(
        settings, BotEndpoint(sandbox.token, sandbox.url), TEST_SECRET_KEY.encode(), clock
    )
    try:
        await runtime.start()
        assert runtime.services is not None
        await link_demo_groups(runtime.services.linking, demo)
        yield World(sandbox, runtime, demo)
    finally:
        await runtime.stop()


@pytest.fixture
async def world(sandbox: BotApiSandbox, sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(sandbox, sqlite_url, tmp_path) as started:
        yield started
