"""Our aiohttp web server: health check and the Telegram webhook route (dashboard later)."""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings
from bot.webhook import WebhookInbox

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)


class WebServer:
    def __init__(self, settings: Settings, *, inbox: WebhookInbox | None) -> None:
        self._settings = settings
        self._inbox = inbox
        self._runner: web.AppRunner | None = None
        self.port = settings.web_port
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._health)
        if inbox is not None:
            self.app.router.add_post(WEBHOOK_PATH, self._webhook)

    @property
    def url(self) -> str:
        return f"http://{self._settings.web_host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.web_host, self._settings.web_port)
        await site.start()
        server = site._server  # the bound port, when 0 asked the OS to pick one
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("web server listening", extra={"url": self.url})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _webhook(self, request: web.Request) -> web.Response:
        assert self._inbox is not None and self._settings.webhook_secret is not None
        expected = self._settings.webhook_secret.get_secret_value()
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.Response(status=403, text="wrong secret token")
        try:
            payload = await request.json()
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except (json.JSONDecodeError, ValueError):
            return web.Response(status=400, text="bad update")
        try:
            await self._inbox.receive(payload)
        except ValueError:
            return web.Response(status=400, text="bad update")
        except (SQLAlchemyError, OSError) as error:
            # not stored (a lock timeout, the database restarting): Telegram retries on 5xx.
            # The error's text may quote the update (names, ids): only its type is logged.
            log.error("webhook update not stored", extra={
                "update_id": payload.get("update_id"), "error_type": type(error).__name__,
            })
            return web.Response(status=503, text="try again")
        return web.Response(text="ok")
