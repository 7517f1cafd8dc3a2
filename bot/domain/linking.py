"""Group onboarding: which police chat group is the queue of which commune or province."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.communes import Commune, CommuneDirectory, Province
from storage import repositories as repo
from storage.db import Database
from storage.models import GroupLink

Scope = Literal["commune", "province"]


class LinkingError(Exception):
    """A link request that cannot be honoured; ``reason`` picks the sentence shown."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a group is (or becomes) linked to, resolved against the directory."""

    scope: Scope
    province: Province
    commune: Commune | None = None

    @property
    def code(self) -> int:
        return self.commune.code if self.commune else self.province.code


@dataclass(frozen=True, slots=True)
class LinkResult:
    target: LinkTarget
    replaced_chat_id: int | None  # the group that served this target before, if any
    previous_target: LinkTarget | None  # what this group served before, if anything else


class GroupLinking:
    """Link, unlink and describe police groups; survive group-to-supergroup migration."""

    def __init__(self, db: Database, directory: CommuneDirectory) -> None:
        self._db = db
        self._directory = directory

    def resolve(self, scope: Scope, code: int) -> LinkTarget:
        if scope == "commune":
            commune = self._directory.commune(code)
            province = self._directory.province(commune.province_code) if commune else None
            if commune is None or province is None:
                raise LinkingError("unknown_commune", code)
            return LinkTarget("commune", province, commune)
        province = self._directory.province(code)
        if province is None:
            raise LinkingError("unknown_province", code)
        return LinkTarget("province", province)

    async def link(self, *, chat_id: int, scope: Scope, code: int, linked_by: int) -> LinkResult:
        """Make ``chat_id`` the group of the target; a previous group of the target is let go."""
        target = self.resolve(scope, code)
        async with self._db.transaction() as session:
            previous = await repo.link_by_chat(session, chat_id=chat_id)
            holder = await repo.link_by_target(session, scope=scope, code=target.code)
            replaced = holder.chat_id if holder and holder.chat_id != chat_id else None
            for row in {id(r): r for r in (previous, holder) if r is not None}.values():
                assert row.id is not None
                await repo.delete_link(session, link_id=row.id)
            await repo.add_link(
                session,
                GroupLink(
                    chat_id=chat_id,
                    scope=scope,
                    code=target.code,
                    province_code=target.province.code,
                    linked_by=linked_by,
                ),
            )
        previous_target = None
        if previous is not None and (previous.scope, previous.code) != (scope, target.code):
            previous_target = self._target_of(previous)
        return LinkResult(target, replaced, previous_target)

    async def unlink(self, *, chat_id: int) -> LinkTarget | None:
        async with self._db.transaction() as session:
            link = await repo.link_by_chat(session, chat_id=chat_id)
            if link is None or link.id is None:
                return None
            await repo.delete_link(session, link_id=link.id)
        return self._target_of(link)

    async def where(self, *, chat_id: int) -> LinkTarget | None:
        async with self._db.session() as session:
            link = await repo.link_by_chat(session, chat_id=chat_id)
        return self._target_of(link) if link else None

    async def group_migrated(self, *, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup with a new id: keep its link."""
        async with self._db.transaction() as session:
            if await repo.link_by_chat(session, chat_id=new_chat_id) is not None:
                return False  # already moved (both service messages arrive)
            return await repo.move_link_chat(
                session, old_chat_id=old_chat_id, new_chat_id=new_chat_id
            ) > 0

    def _target_of(self, link: GroupLink) -> LinkTarget:
        scope: Scope = "commune" if link.scope == "commune" else "province"
        return self.resolve(scope, link.code)
