"""PTB's HTTP layer on aiohttp: what a bot call becomes on the wire, and how failures map to
PTB's errors (which the outbox turns into retries)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram_http import AiohttpRequest


async def serve(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_form_fields_and_files_reach_the_server() -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        seen.update(method=request.match_info["method"], agent=request.headers["User-Agent"],
                    chat_id=form["chat_id"], photo=form["photo"].file.read(),  # type: ignore[union-attr]
                    filename=form["photo"].filename)  # type: ignore[union-attr]
        return web.json_response({"ok": True, "result": True})

    runner, url = await serve(handler)
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = RequestData([
            RequestParameter.from_input("chat_id", 42),
            RequestParameter.from_input(
                "photo", InputFile(b"\xff\xd8jpeg-bytes", filename="p.jpg")
            ),
        ])
        status, body = await request.do_request(f"{url}/sendPhoto", "POST", data)
    finally:
        await request.shutdown()
        await runner.cleanup()
    assert status == 200 and body == b'{"ok": true, "result": true}'
    assert seen["method"] == "sendPhoto" and seen["chat_id"] == "42"
    assert seen["photo"] == b"\xff\xd8jpeg-bytes" and seen["filename"] == "p.jpg"
    assert "python-telegram-bot" in str(seen["agent"])


async def test_a_slow_server_is_a_timeout_and_a_closed_port_a_network_error() -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    runner, url = await serve(slow)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"{url}/getMe", "POST", read_timeout=0.2, write_timeout=0.1)
        with pytest.raises(NetworkError):
            await request.do_request(f"{closed}/getMe", "POST")
    finally:
        await request.shutdown()
        await runner.cleanup()
