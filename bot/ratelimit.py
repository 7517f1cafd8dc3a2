"""Outgoing rate limits, by design rather than by 429.

PTB's ``AIORateLimiter`` paces the overall 30 msg/s and 20 msg/min per group (Bot FAQ) but
has no per-private-chat limit (~1 msg/s, short bursts allowed). ``TiplineRateLimiter`` adds
a leaky bucket per private chat for the methods that post messages.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter

SENDING_ENDPOINTS = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendLocation",
    "sendVideo", "sendAudio", "sendVoice", "sendSticker", "copyMessage", "forwardMessage",
})
MAX_TRACKED_CHATS = 50_000


class TiplineRateLimiter(AIORateLimiter):
    def __init__(
        self, *, private_burst: int = 4, private_window_seconds: float = 5.0, max_retries: int = 1
    ) -> None:
        super().__init__(max_retries=max_retries)
        self._private_burst = private_burst
        self._private_window = private_window_seconds
        self._private_limiters: dict[int, AsyncLimiter] = {}

    def _private_limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._private_limiters.get(chat_id)
        if limiter is None:
            if len(self._private_limiters) >= MAX_TRACKED_CHATS:
                self._private_limiters.clear()  # idle buckets: forgetting them is harmless
            limiter = AsyncLimiter(self._private_burst, self._private_window)
            self._private_limiters[chat_id] = limiter
        return limiter

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        chat_id = data.get("chat_id")
        if isinstance(chat_id, int) and chat_id > 0 and endpoint in SENDING_ENDPOINTS:
            async with self._private_limiter(chat_id):
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
