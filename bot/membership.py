"""Who is in a police group, asked of Telegram (getChatMember) and cached briefly.

Only "is a member" answers are cached, and they are forgotten as soon as the bot learns the
person left or was removed (a ``left_chat_member`` message, or a ``chat_member`` update when
the bot administers the group): a removed officer cannot act on the strength of a cached
answer. A "not a member" answer is never cached, so someone just added can act at once."""

from __future__ import annotations

import logging
import time

from telegram import Bot, ChatMember
from telegram.error import TelegramError

log = logging.getLogger(__name__)
MEMBER_STATUSES = {ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER}
MAX_CACHED = 20_000
FORGET_HORIZON_SECONDS = 120.0  # longer than any getChatMember call can take


class TelegramMembership:
    def __init__(self, bot: Bot, *, ttl_seconds: float = 60.0) -> None:
        self._bot = bot
        self._ttl = ttl_seconds
        self._cache: dict[tuple[int, int], tuple[float, bool]] = {}  # positives only
        # when each membership was last forgotten: an answer asked for before that moment
        # (a getChatMember in flight while the person was removed) is not cached
        self._forgotten: dict[tuple[int, int], float] = {}

    async def is_member(self, chat_id: int, user_id: int) -> bool:
        key = (chat_id, user_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            member = await self._bot.get_chat_member(chat_id, user_id)
            answer = member.status in MEMBER_STATUSES or (
                member.status == ChatMember.RESTRICTED and bool(getattr(member, "is_member", False))
            )
        except TelegramError as error:
            log.warning("membership check failed", extra={"chat_id": chat_id,
                                                          "error_type": type(error).__name__})
            return False  # fail closed, and do not cache a transient failure
        if answer and self._forgotten.get(key, float("-inf")) < now:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, True)
        return answer

    def forget(self, chat_id: int, user_id: int) -> None:
        """The person's membership of this chat changed: ask Telegram again next time (also
        if a question asked before this moment is still on its way)."""
        key = (chat_id, user_id)
        self._cache.pop(key, None)
        now = time.monotonic()
        if len(self._forgotten) >= MAX_CACHED:  # stamps older than any call in flight go
            horizon = now - FORGET_HORIZON_SECONDS
            self._forgotten = {k: t for k, t in self._forgotten.items() if t > horizon}
        self._forgotten[key] = now
