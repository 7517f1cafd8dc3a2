"""Group onboarding: which police chat group is the queue of which commune or province.
The links are stored by ``storage.groups.GroupStore``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.domain.communes import Commune, CommuneDirectory, Province
from bot.domain.records import LinkRecord

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


class GroupStorage(Protocol):
    async def link_of_chat(self, chat_id: int) -> LinkRecord | None: ...
    async def relink(
        self, *, chat_id: int, scope: str, code: int, province_code: int, linked_by: int
    ) -> tuple[LinkRecord | None, LinkRecord | None]: ...
    async def unlink(self, chat_id: int) -> LinkRecord | None: ...
    async def move_chat(self, *, old_chat_id: int, new_chat_id: int) -> bool: ...


class GroupLinking:
    """Link, unlink and describe police groups; survive group-to-supergroup migration."""

    def __init__(self, store: GroupStorage, directory: CommuneDirectory) -> None:
        self._store = store
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
        previous, holder = await self._store.relink(
            chat_id=chat_id, scope=scope, code=target.code, province_code=target.province.code,
            linked_by=linked_by)
        replaced = holder.chat_id if holder and holder.chat_id != chat_id else None
        previous_target = None
        if previous is not None and (previous.scope, previous.code) != (scope, target.code):
            previous_target = self._target_of(previous)
        return LinkResult(target, replaced, previous_target)

    async def unlink(self, *, chat_id: int) -> LinkTarget | None:
        link = await self._store.unlink(chat_id)
        return self._target_of(link) if link is not None else None

    async def where(self, *, chat_id: int) -> LinkTarget | None:
        link = await self._store.link_of_chat(chat_id)
        return self._target_of(link) if link else None

    async def group_migrated(self, *, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup with a new id: keep its link."""
        return await self._store.move_chat(old_chat_id=old_chat_id, new_chat_id=new_chat_id)

    def _target_of(self, link: LinkRecord) -> LinkTarget:
        scope: Scope = "commune" if link.scope == "commune" else "province"
        return self.resolve(scope, link.code)
