"""The update queue: long polling with `getUpdates` or delivery to a webhook.

Updates stay pending until confirmed: by a later `getUpdates` whose `offset` is past them, or
by a 2xx answer of the webhook. Webhook delivery is strictly in order and retried with a short
back-off until it succeeds, as Telegram does (with shorter pauses, for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from .errors import ApiError
from .models import JSON
from .signals import Signal

_LOG = logging.getLogger(__name__)

FIRST_UPDATE_ID = 810_000_001
DEFAULT_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


@dataclass
class Webhook:
    """The webhook settings of the bot and the state of its delivery."""

    url: str
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class UpdateHub:
    """Pending updates of the bot and the two ways to hand them out."""

    def __init__(self) -> None:
        self._queue: list[JSON] = []
        self._next_id = FIRST_UPDATE_ID
        self._allowed: frozenset[str] | None = None
        self._poll_generation = 0
        self.changed = Signal()
        self.webhook: Webhook | None = None
        self.emitted: list[JSON] = []
        self.allow_remote_webhooks = False
        self.retry_delay = 0.05
        self.max_retry_delay = 1.0

    # ---- producing -------------------------------------------------------------------------

    def _accepts(self, kind: str) -> bool:
        allowed = self.webhook.allowed_updates if self.webhook else None
        chosen = frozenset(allowed) if allowed else self._allowed
        if chosen:
            return kind in chosen
        return kind not in DEFAULT_EXCLUDED

    def emit(self, kind: str, payload: JSON) -> JSON | None:
        """Queue an update of that kind; None if the bot's allowed_updates exclude it."""
        if not self._accepts(kind):
            return None
        update: JSON = {"update_id": self._next_id, kind: payload}
        self._next_id += 1
        self._queue.append(update)
        self.emitted.append(update)
        self.changed.notify()
        return update

    @property
    def pending(self) -> list[JSON]:
        """Updates not yet confirmed, oldest first."""
        return list(self._queue)

    def drop_pending(self) -> None:
        """Forget every unconfirmed update."""
        self._queue.clear()
        self.changed.notify()

    # ---- long polling ----------------------------------------------------------------------

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]
        self.changed.notify()

    async def get_updates(
        self, *, offset: int, limit: int, wait: float, allowed: list[str] | None
    ) -> list[JSON]:
        """`getUpdates`: confirm, then wait up to `wait` s for something to hand out."""
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        if allowed is not None:
            self._allowed = frozenset(allowed) or None
        self._confirm(offset)
        deadline = time.monotonic() + wait
        limit = min(max(limit, 1), 100)
        while True:
            if self._queue or time.monotonic() >= deadline:
                return [dict(update) for update in self._queue[:limit]]
            await self.changed.wait(deadline - time.monotonic())
            if generation != self._poll_generation:
                raise ApiError(409, POLL_CONFLICT)

    # ---- webhook ---------------------------------------------------------------------------

    async def set_webhook(self, hook: Webhook, drop_pending: bool) -> None:
        """Install a webhook (replacing any previous one) and start delivering to it."""
        await self.delete_webhook(drop_pending)
        self.webhook = hook
        self._poll_generation += 1
        hook.task = asyncio.create_task(self._deliver(hook), name="sandbox-webhook")
        self.changed.notify()

    async def delete_webhook(self, drop_pending: bool) -> None:
        """Remove the webhook; pending updates wait for `getUpdates` unless dropped."""
        hook, self.webhook = self.webhook, None
        if hook is not None and hook.task is not None:
            hook.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hook.task
        if drop_pending:
            self.drop_pending()

    def webhook_info(self) -> JSON:
        """The `WebhookInfo` object."""
        hook = self.webhook
        info: JSON = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if hook is None:
            return info
        info["max_connections"] = hook.max_connections
        info["ip_address"] = "127.0.0.1"
        if hook.allowed_updates:
            info["allowed_updates"] = hook.allowed_updates
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        return info

    async def _deliver(self, hook: Webhook) -> None:
        delay = self.retry_delay
        async with aiohttp.ClientSession() as session:
            while self.webhook is hook:
                if not self._queue:
                    await self.changed.wait(1.0)
                    continue
                update = self._queue[0]
                error = await self._post(session, hook, update)
                if error is None:
                    if self._queue and self._queue[0] is update:
                        self._queue.pop(0)
                    hook.delivered += 1
                    delay = self.retry_delay
                    self.changed.notify()
                    continue
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)

    @staticmethod
    async def _post(session: aiohttp.ClientSession, hook: Webhook, update: JSON) -> str | None:
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with session.post(
                hook.url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            _LOG.debug("webhook delivery failed: %r", exc)
            return f"Connection failed: {exc.__class__.__name__}"

    async def close(self) -> None:
        """Stop webhook delivery and wake every long poll."""
        await self.delete_webhook(drop_pending=False)
        self._poll_generation += 1
        self.changed.notify()
