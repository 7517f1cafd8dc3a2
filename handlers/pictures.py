"""Fetching a resident's picture from Telegram, capped at 20 MB. Everything else about
pictures (checks before the fetch, the sanitising pool, refusals) is the conversation's:
bot/conversation/pictures.py."""

from __future__ import annotations

import urllib.parse

from telegram import Bot

from bot.conversation.model import Fetch
from bot.domain.photos import MAX_INPUT_BYTES, PhotoRejected
from bot.telegram_http import AiohttpRequest, DownloadTooLarge


def fetcher(bot: Bot, file_id: str) -> Fetch:
    """The picture's bytes, fetched when the conversation asks (after its checks)."""
    async def fetch() -> bytes:
        return await _download(bot, file_id)
    return fetch


async def _download(bot: Bot, file_id: str) -> bytes:
    telegram_file = await bot.get_file(file_id)
    if telegram_file.file_size is not None and telegram_file.file_size > MAX_INPUT_BYTES:
        raise PhotoRejected("too_large", f"getFile reports {telegram_file.file_size} bytes")
    request, path = bot.request, str(telegram_file.file_path or "")
    if isinstance(request, AiohttpRequest) and path.startswith(("https://", "http://")):
        try:
            return await request.download(_encoded_url(path), MAX_INPUT_BYTES)
        except DownloadTooLarge as error:
            raise PhotoRejected("too_large", f"download of {error} bytes stopped") from None
    # Another HTTP layer (PTB's default): the whole body is read, then measured.
    data = bytes(await telegram_file.download_as_bytearray())
    if len(data) > MAX_INPUT_BYTES:
        raise PhotoRejected("too_large", f"downloaded {len(data)} bytes")
    return data


def _encoded_url(url: str) -> str:
    # as PTB's File does before downloading: non-ASCII characters of the path quoted
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=urllib.parse.quote(parts.path)))
