"""Outgoing rate limits, by design rather than by 429.

PTB's ``AIORateLimiter`` paces 20 msg/min per group (Bot FAQ) but has no per-private-chat
limit (~1 msg/s, short bursts allowed), and its overall 30/s is a leaky bucket: a burst of
30 on top of a steady 30/s, which Telegram answers with 429s. ``TiplineRateLimiter``:

- a window per private chat for the methods that post messages: at most ``private_burst``
  messages in any ``private_window_seconds`` (default 4 in 5 s);
- instead of the leaky bucket, one budget of ``overall_max_rate`` messages in any second for
  everything that posts or edits a message (``BUDGETED_ENDPOINTS``; not the answers to
  button presses), taken right before the request goes out (after the chat's and the
  group's waits). The broadcast engine takes its slots from the same budget, behind
  everyone else (``budget_of``); its requests come here holding their slot already.

Both are ``SendBudget``s (bot/domain/sendbudget.py): a send counts from when it starts until
the window's length after its answer, so requests bunched on the way (a loaded machine, the
network) never put more than the limit into any window of the server's.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot
from telegram.ext import AIORateLimiter, ExtBot

from bot.domain.sendbudget import SendBudget

SENDING_ENDPOINTS = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendLocation",
    "sendVideo", "sendAudio", "sendVoice", "sendSticker", "copyMessage", "forwardMessage",
})
# counted in the overall 30/s: what posts a message, and edits (PTB's limiter counts them
# too). Not the answers to button presses: they post nothing, PTB never paced them, and one
# held behind a burst of cards leaves the resident's button spinning until Telegram drops
# the query (~15 s)
BUDGETED_ENDPOINTS = SENDING_ENDPOINTS | frozenset({
    "sendContact", "sendVenue", "sendAnimation", "sendVideoNote", "sendPoll", "sendDice",
    "editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",
    "editMessageLiveLocation", "stopMessageLiveLocation", "stopPoll",
})
# private chats whose window is kept; past this, the idle ones (nothing sent within their
# window) are dropped: a broadcast touches 100,000 chats once each, and 50,000 windows kept
# cost ~50 MB of RSS
MAX_TRACKED_CHATS = 5_000


class TiplineRateLimiter(AIORateLimiter):
    """``overall_max_rate``: messages per second, all chats together (0: no overall limit)."""

    def __init__(
        self, *, private_burst: int = 4, private_window_seconds: float = 5.0, max_retries: int = 1,
        overall_max_rate: float = 30,
    ) -> None:
        super().__init__(max_retries=max_retries, overall_max_rate=0)  # the budget instead
        self.budget: SendBudget | None = (
            SendBudget(int(overall_max_rate)) if overall_max_rate else None)
        self._private_burst = private_burst
        self._private_window = private_window_seconds
        self._private_pacers: dict[int, SendBudget] = {}

    def _private_pacer(self, chat_id: int) -> SendBudget:
        """The chat's window: ``private_burst`` sends, each counted until
        ``private_window_seconds`` after its answer (as the overall budget counts)."""
        pacer = self._private_pacers.get(chat_id)
        if pacer is None:
            if len(self._private_pacers) >= MAX_TRACKED_CHATS:
                for key in [k for k, p in self._private_pacers.items() if p.idle()]:
                    del self._private_pacers[key]
            pacer = SendBudget(self._private_burst, self._private_window)
            self._private_pacers[chat_id] = pacer
        return pacer

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        budget = self.budget
        if budget is not None and endpoint in BUDGETED_ENDPOINTS:
            callback = _within_budget(budget, callback)
        chat_id = data.get("chat_id")
        if isinstance(chat_id, int) and chat_id > 0 and endpoint in SENDING_ENDPOINTS:
            # the chat's window first (outermost): a send waiting for it holds no slot of
            # the whole bot's second
            callback = _within_budget(self._private_pacer(chat_id), callback)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


def _within_budget(budget: SendBudget, callback: Callback) -> Callback:
    """The request (each attempt of it) goes out on a slot of ``budget``: the one the
    caller holds (a broadcast's), else one taken now, ahead of bulk takers."""

    async def send(*args: Any, **kwargs: Any) -> bool | dict[str, Any] | list[dict[str, Any]]:
        slot = budget.take_held() or await budget.acquire()
        try:
            return await callback(*args, **kwargs)
        finally:
            slot.release()

    return send


def budget_of(bot: Bot) -> SendBudget | None:
    """The send budget of ``bot``'s rate limiter, for the broadcast engine to share."""
    limiter = bot.rate_limiter if isinstance(bot, ExtBot) else None
    return limiter.budget if isinstance(limiter, TiplineRateLimiter) else None
