"""Routing: which chat owns a tip. Commune group, else the province group, else the admins'
ops chat (flagged "unrouted"). A tip is never dropped: with no chat at all it stays queued
in the outbox until a group is linked, and the failure is logged loudly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from storage import repositories as repo

QueueScope = Literal["commune", "province", "ops", "none"]


@dataclass(frozen=True, slots=True)
class Destination:
    scope: QueueScope
    chat_id: int | None


class Router:
    def __init__(self, ops_chat_id: int | None) -> None:
        self.ops_chat_id = ops_chat_id

    async def destination(
        self, session: AsyncSession, *, commune_code: int, province_code: int,
        skip_chat_ids: frozenset[int] = frozenset(), province_only: bool = False,
    ) -> Destination:
        """The first reachable destination; ``skip_chat_ids`` are chats known to be gone;
        ``province_only`` for tips escalated to the province."""
        if not province_only:
            commune = await repo.link_by_target(session, scope="commune", code=commune_code)
            if commune is not None and commune.chat_id not in skip_chat_ids:
                return Destination("commune", commune.chat_id)
        province = await repo.link_by_target(session, scope="province", code=province_code)
        if province is not None and province.chat_id not in skip_chat_ids:
            return Destination("province", province.chat_id)
        if self.ops_chat_id is not None and self.ops_chat_id not in skip_chat_ids:
            return Destination("ops", self.ops_chat_id)
        return Destination("none", None)
