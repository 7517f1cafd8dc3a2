"""Who is in a police group, asked of Telegram (getChatMember) and cached briefly."""

from __future__ import annotations

import logging
import time

from telegram import Bot, ChatMember
from telegram.error import TelegramError

log = logging.getLogger(__name__)
MEMBER_STATUSES = {ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER}
MAX_CACHED = 20_000


class TelegramMembership:
    def __init__(self, bot: Bot, *, ttl_seconds: float = 60.0) -> None:
        self._bot = bot
        self._ttl = ttl_seconds
        self._cache: dict[tuple[int, int], tuple[float, bool]] = {}

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
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, answer)
        return answer
