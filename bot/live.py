"""Running against real Telegram (or any Bot API server at TIPLINE_BOT_API_URL)."""

from __future__ import annotations

import asyncio

from bot.app import BotEndpoint, TiplineRuntime
from bot.heap import settle_after_start
from bot.settings import Settings


async def run_live(settings: Settings, stop: asyncio.Event) -> None:
    assert settings.telegram_token is not None and settings.secret_key is not None
    endpoint = BotEndpoint(settings.telegram_token.get_secret_value(), settings.bot_api_url)
    runtime = TiplineRuntime(settings, endpoint, settings.secret_key.get_secret_value().encode())
    await runtime.start()
    settle_after_start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
