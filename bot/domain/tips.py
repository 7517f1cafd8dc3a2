"""Reading tips back: status by receipt code (throttled against guessing), a chat's own
tips, and banning the person behind a tip without learning who it is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.domain.limits import SlidingWindowLimiter
from bot.domain.receipts import normalise_code
from storage.db import Database
from storage.models import Ban, Tip, TipEvent, TipReporter

FAILED_LOOKUPS_PER_HOUR = 10
MY_TIPS_LIMIT = 10


class LookupThrottled(Exception):
    """Too many wrong codes from this person recently."""


@dataclass(frozen=True, slots=True)
class TipStatus:
    code: str
    status: str
    created_at: datetime
    commune_code: int


@dataclass(frozen=True, slots=True)
class BanResult:
    found: bool
    already: bool = False


class TipQueries:
    def __init__(self, db: Database, *, lookup_limiter: SlidingWindowLimiter | None = None) -> None:
        self._db = db
        self._failed_lookups = lookup_limiter or SlidingWindowLimiter(FAILED_LOOKUPS_PER_HOUR, 3600)

    async def status(self, typed_code: str, *, asked_by: str) -> TipStatus | None:
        """The tip's public status, or None; wrong codes count against ``asked_by``."""
        if self._failed_lookups.blocked(asked_by):
            raise LookupThrottled
        code = normalise_code(typed_code)
        tip = None
        if code is not None:
            async with self._db.session() as session:
                tip = (await session.exec(select(Tip).where(Tip.code == code))).first()
        if tip is None:
            self._failed_lookups.hit(asked_by)
            return None
        return _status(tip)

    async def mine(self, pseudonym: str) -> list[TipStatus]:
        """Tips this person sent (while the reporter link is retained), newest first."""
        async with self._db.session() as session:
            tips = (await session.exec(
                select(Tip).join(TipReporter, col(TipReporter.tip_id) == col(Tip.id))
                .where(col(TipReporter.pseudonym) == pseudonym)
                .order_by(col(Tip.id).desc()).limit(MY_TIPS_LIMIT)
            )).all()
        return [_status(t) for t in tips]

    async def ban_reporter(self, typed_code: str, *, admin_id: int, admin_name: str) -> BanResult:
        code = normalise_code(typed_code)
        if code is None:
            return BanResult(found=False)
        async with self._db.transaction() as session:
            row = (await session.exec(
                select(Tip, TipReporter).join(TipReporter, col(TipReporter.tip_id) == col(Tip.id))
                .where(col(Tip.code) == code)
            )).first()
            if row is None:
                return BanResult(found=False)
            tip, reporter = row
            assert tip.id is not None
            if await session.get(Ban, reporter.pseudonym) is not None:
                return BanResult(found=True, already=True)
            session.add(Ban(pseudonym=reporter.pseudonym, banned_by=admin_id, tip_code=code))
            session.add(TipEvent(
                tip_id=tip.id, actor_kind="admin", actor_id=admin_id, actor_name=admin_name,
                event="reporter_banned", details=json.dumps({}),
            ))
        return BanResult(found=True)


def _status(tip: Tip) -> TipStatus:
    return TipStatus(tip.code, tip.status, tip.created_at, tip.commune_code)
