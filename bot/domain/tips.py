"""Reading tips back: status by receipt code (throttled against guessing), a chat's own
tips, and banning the person behind a tip without learning who it is. The reads and writes
are ``storage.tips.TipsStore``'s; the throttle is ``bot.domain.limits``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.domain.limits import SlidingWindowLimiter
from bot.domain.receipts import normalise_code

FAILED_LOOKUPS_PER_HOUR = 10
MY_TIPS_LIMIT = 10


class LookupThrottled(Exception):
    """Too many wrong codes from this person recently."""


@dataclass(frozen=True, slots=True)
class TipProgress:
    """What a resident is shown of one of their tips (/status, /mytips)."""

    code: str
    status: str
    created_at: datetime
    commune_code: int


@dataclass(frozen=True, slots=True)
class BanResult:
    found: bool
    already: bool = False


class TipsStorage(Protocol):
    async def status(self, code: str) -> tuple[str, str, datetime, int] | None: ...
    async def of_reporter(
        self, pseudonym: str, limit: int) -> list[tuple[str, str, datetime, int]]: ...
    async def ban_reporter_of(
        self, code: str, *, admin_id: int, admin_name: str, now: datetime
    ) -> tuple[bool, bool]: ...


class TipQueries:
    def __init__(
        self, store: TipsStorage, *, lookup_limiter: SlidingWindowLimiter | None = None
    ) -> None:
        self._store = store
        self._failed_lookups = lookup_limiter or SlidingWindowLimiter(FAILED_LOOKUPS_PER_HOUR, 3600)

    async def status(self, typed_code: str, *, asked_by: str) -> TipProgress | None:
        """The tip's public status, or None; wrong codes count against ``asked_by``."""
        if self._failed_lookups.blocked(asked_by):
            raise LookupThrottled
        code = normalise_code(typed_code)
        found = await self._store.status(code) if code is not None else None
        if found is None:
            self._failed_lookups.hit(asked_by)
            return None
        return TipProgress(*found)

    async def mine(self, pseudonym: str) -> list[TipProgress]:
        """Tips this person sent (while the reporter link is retained), newest first."""
        rows = await self._store.of_reporter(pseudonym, MY_TIPS_LIMIT)
        return [TipProgress(*row) for row in rows]

    async def ban_reporter(self, typed_code: str, *, admin_id: int, admin_name: str) -> BanResult:
        code = normalise_code(typed_code)
        if code is None:
            return BanResult(found=False)
        found, already = await self._store.ban_reporter_of(
            code, admin_id=admin_id, admin_name=admin_name, now=datetime.now(UTC))
        return BanResult(found=found, already=already)
