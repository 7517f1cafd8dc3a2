"""Fixtures shared by the Bot API sandbox's own tests.

The ``sandbox`` here deliberately shadows the one in ``tests/conftest.py``: the sandbox's own
tests run it with its DEFAULT rate limits, the end-to-end tests with a faster private burst.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.sandbox import BotApiSandbox, RateLimits, SandboxUser


async def started_sandbox(limits: RateLimits | None = None) -> BotApiSandbox:
    """A running sandbox; the caller stops it."""
    sb = BotApiSandbox(limits=limits)
    await sb.start()
    return sb


@pytest.fixture
async def sandbox() -> AsyncIterator[BotApiSandbox]:
    """A sandbox with the default rate limits."""
    sb = await started_sandbox()
    yield sb
    await sb.stop()


@pytest.fixture
async def bot(sandbox: BotApiSandbox) -> AsyncIterator[Bot]:
    """The real PTB bot, talking to the sandbox over HTTP."""
    async with Bot(
        sandbox.token, base_url=sandbox.base_url, base_file_url=sandbox.base_file_url
    ) as client:
        yield client


@pytest.fixture
async def lan(sandbox: BotApiSandbox) -> SandboxUser:
    """Lan, first name only, a resident who has started the bot."""
    user = sandbox.create_user("Lan")
    await sandbox.send_text(user.id, "/start")
    return user


@pytest.fixture
async def fresh_lan_nguyen(sandbox: BotApiSandbox) -> SandboxUser:
    """Lan Nguyễn (@lan_nguyen), a resident who has not written to the bot yet (no /start)."""
    return sandbox.create_user("Lan", last_name="Nguyễn", username="lan_nguyen")


@pytest.fixture
async def lan_nguyen(sandbox: BotApiSandbox, fresh_lan_nguyen: SandboxUser) -> SandboxUser:
    """Lan Nguyễn (@lan_nguyen), a resident who has started the bot."""
    await sandbox.send_text(fresh_lan_nguyen.id, "/start")
    return fresh_lan_nguyen
