"""PTB's HTTP layer on aiohttp: what a bot call becomes on the wire, and how failures map to
PTB's errors (which the outbox turns into retries)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

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


@contextlib.asynccontextmanager
async def bot_api_and_proxy() -> AsyncIterator[tuple[str, str, list[tuple[str, str, str | None]]]]:
    """A tiny Bot API (getMe, files) and a forward HTTP proxy in front of it: yields the API's
    URL, the proxy's URL (with credentials) and what the proxy relayed."""
    from aiohttp import ClientSession

    async def bot_api(request: web.Request) -> web.Response:
        if request.path.startswith("/file/"):
            return web.Response(body=b"\xff\xd8picture-bytes")
        if request.path.endswith("/getUpdates"):
            return web.json_response({"ok": True, "result": []})
        return web.json_response({"ok": True, "result": {
            "id": 42, "is_bot": True, "first_name": "Tipline", "username": "tipline_bot"}})

    target = web.Application()
    target.router.add_route("*", "/{tail:.*}", bot_api)
    target_runner = web.AppRunner(target)
    await target_runner.setup()
    await web.TCPSite(target_runner, "127.0.0.1", 0).start()
    api = f"http://127.0.0.1:{target_runner.addresses[0][1]}"
    relayed: list[tuple[str, str, str | None]] = []

    async def forward(request: web.BaseRequest) -> web.Response:
        # a forward proxy gets the absolute URL as the request target
        relayed.append((request.method, request.raw_path,
                        request.headers.get("Proxy-Authorization")))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in {"host", "proxy-authorization", "proxy-connection",
                                        "content-length", "transfer-encoding"}}
        async with ClientSession() as session, session.request(
            request.method, request.raw_path, data=await request.read(), headers=headers
        ) as answer:
            return web.Response(body=await answer.read(), status=answer.status,
                                content_type=answer.content_type)

    proxy_runner = web.ServerRunner(web.Server(forward))
    await proxy_runner.setup()
    await web.TCPSite(proxy_runner, "127.0.0.1", 0).start()
    proxy = f"http://officer:s3cret@127.0.0.1:{proxy_runner.addresses[0][1]}"
    try:
        yield api, proxy, relayed
    finally:
        await proxy_runner.cleanup()
        await target_runner.cleanup()


CREDENTIALS = "Basic " + base64.b64encode(b"officer:s3cret").decode()


async def test_calls_and_downloads_go_through_the_configured_proxy() -> None:
    """``proxy_url``: a Bot API call made by PTB and a file download both go through a
    forward HTTP proxy (a local aiohttp one here), with the URL's credentials as
    Proxy-Authorization; without it the proxy sees nothing."""
    from telegram import Bot

    async def use(api: str, request: AiohttpRequest) -> tuple[str | None, bytes]:
        bot = Bot("123:abc", base_url=f"{api}/bot", request=request,
                  get_updates_request=AiohttpRequest(connection_pool_size=1))
        async with bot:
            me = await bot.get_me()
            picture = await request.download(f"{api}/file/bot123:abc/photos/1.jpg", 10_000)
        return me.username, picture

    async with bot_api_and_proxy() as (api, proxy, relayed):
        assert await use(api, AiohttpRequest()) == ("tipline_bot", b"\xff\xd8picture-bytes")
        assert relayed == []  # no proxy configured: straight to the server
        assert await use(api, AiohttpRequest(proxy_url=proxy)) == (
            "tipline_bot", b"\xff\xd8picture-bytes")
    assert relayed == [  # getMe: Bot.initialize(), then ours
        ("POST", f"{api}/bot123:abc/getMe", CREDENTIALS),
        ("POST", f"{api}/bot123:abc/getMe", CREDENTIALS),
        ("GET", f"{api}/file/bot123:abc/photos/1.jpg", CREDENTIALS),
    ]


async def test_the_bot_uses_tipline_proxy_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """``TIPLINE_PROXY_URL`` reaches the application the runtime builds: its Bot API calls,
    long polling included, go through the proxy."""
    from bot.app import BotEndpoint, build_application
    from bot.settings import load_settings

    monkeypatch.chdir(Path(__file__).parent)  # no stray .env
    async with bot_api_and_proxy() as (api, proxy, relayed):
        settings = load_settings(
            telegram_token="123:abc", secret_key="k3Jx9-QpL2mZ7vB4nR8tW1yE6uA0sD5fG",
            bot_api_url=api, proxy_url=proxy,
        )
        application = build_application(settings, BotEndpoint("123:abc", settings.bot_api_url))
        async with application.bot:
            await application.bot.get_updates(timeout=0)
    assert [(method, path) for method, path, _ in relayed] == [
        ("POST", f"{api}/bot123:abc/getMe"), ("POST", f"{api}/bot123:abc/getUpdates")]
    assert {credentials for _, _, credentials in relayed} == {CREDENTIALS}


def test_only_the_public_request_api_of_ptb_is_used() -> None:
    """No ``telegram._…`` (private) module is imported: PTB may change those any release."""
    import ast

    import bot.telegram_http

    tree = ast.parse(Path(bot.telegram_http.__file__).read_text())
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    assert [m for m in modules if m.startswith("telegram")] == ["telegram.error",
                                                                "telegram.request"]


async def test_a_trickling_download_gives_up_after_its_total_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server sending a byte now and then never trips the gap between reads: the whole
    download has a time limit of its own, so a picture turn is not held for ever."""
    monkeypatch.setattr("bot.telegram_http.DOWNLOAD_TOTAL_TIMEOUT", 0.5)

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"x")
            await asyncio.sleep(0.05)
        return response

    app = web.Application()
    app.router.add_get("/file", trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(TimedOut):  # without the limit: 100 bytes after 5 s, no error
            await request.download(f"http://127.0.0.1:{port}/file", 10_000)
    finally:
        await request.shutdown()
        await runner.cleanup()
