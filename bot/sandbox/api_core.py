"""Bot API methods about the bot itself and its updates: getMe, getUpdates, webhooks."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from .errors import bad_request
from .params import Params
from .registry import method
from .updates import Webhook
from .world import World

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _loopback(url: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 addresses: where a sandbox may POST."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@method("getMe")
async def get_me(world: World, p: Params) -> Any:
    """The bot's own `User` with the bot-only flags."""
    data = world.bot.to_json()
    data.update(
        can_join_groups=True,
        can_read_all_group_messages=not world.privacy_mode,
        supports_inline_queries=False,
        can_connect_to_business=False,
        has_main_web_app=False,
    )
    return data


@method("getUpdates")
async def get_updates(world: World, p: Params) -> Any:
    """Long polling: confirm by `offset`, wait up to `timeout` seconds for updates."""
    allowed = p.json("allowed_updates", "can't parse allowed_updates JSON array")
    if allowed is not None and not isinstance(allowed, list):
        raise bad_request("can't parse allowed_updates JSON array")
    return await world.hub.get_updates(
        offset=p.integer("offset") or 0,
        limit=p.integer("limit") or 100,
        wait=max(p.number("timeout") or 0.0, 0.0),
        allowed=allowed,
    )


@method("setWebhook")
async def set_webhook(world: World, p: Params) -> Any:
    """Install a webhook; updates are then POSTed to it (secret header if given)."""
    url = (p.text("url") or "").strip()
    if not url:
        await world.hub.delete_webhook(p.boolean("drop_pending_updates"))
        return True
    if not url.lower().startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if not world.hub.allow_remote_webhooks and not _loopback(url):
        raise bad_request("bad webhook: the sandbox delivers only to loopback addresses")
    secret = p.text("secret_token")
    if secret is not None and not _SECRET.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = p.json("allowed_updates", "can't parse allowed_updates JSON array")
    hook = Webhook(
        url=url,
        secret_token=secret,
        allowed_updates=allowed if isinstance(allowed, list) else None,
        max_connections=p.integer("max_connections") or 40,
    )
    await world.hub.set_webhook(hook, p.boolean("drop_pending_updates"))
    return True


@method("deleteWebhook")
async def delete_webhook(world: World, p: Params) -> Any:
    """Remove the webhook (optionally dropping pending updates)."""
    await world.hub.delete_webhook(p.boolean("drop_pending_updates"))
    return True


@method("getWebhookInfo")
async def get_webhook_info(world: World, p: Params) -> Any:
    """The `WebhookInfo` object."""
    return world.hub.webhook_info()


@method("logOut")
async def log_out(world: World, p: Params) -> Any:
    """Accepted and ignored: there is no cloud server to log out of."""
    return True


@method("close")
async def close(world: World, p: Params) -> Any:
    """Accepted and ignored."""
    return True
