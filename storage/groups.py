"""Police groups' links to communes and provinces: plain SQL built once, rows as
``bot.domain.records.LinkRecord``. (The outbox's routing reads links through
storage/repositories.py.)"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.domain.records import LinkRecord
from storage.db import Database
from storage.models import utcnow
from storage.tables import cards as _cards
from storage.tables import links as _links
from storage.tables import relay as _relay
from storage.tables import tips as _tips

_FIELDS = LinkRecord.__dataclass_fields__
_COLUMNS = [_links.c[name] for name in _FIELDS]
_BY_CHAT = sa.select(*_COLUMNS).where(_links.c.chat_id == sa.bindparam("chat_id"))
_BY_TARGET = sa.select(*_COLUMNS).where(
    _links.c.scope == sa.bindparam("scope"), _links.c.code == sa.bindparam("code"))
_DELETE = sa.delete(_links).where(_links.c.id == sa.bindparam("link_id"))
_INSERT = sa.insert(_links)
_MOVES = (  # a group became a supergroup: everything that points at its chat id follows it
    sa.update(_links).where(_links.c.chat_id == sa.bindparam("old"))
    .values(chat_id=sa.bindparam("new")),
    sa.update(_cards).where(_cards.c.chat_id == sa.bindparam("old"))
    .values(chat_id=sa.bindparam("new")),
    sa.update(_relay).where(_relay.c.side == "group", _relay.c.key == sa.bindparam("old_key"))
    .values(key=sa.bindparam("new_key")),
    sa.update(_tips).where(_tips.c.queue_chat_id == sa.bindparam("old"))
    .values(queue_chat_id=sa.bindparam("new")),
)


def _link(row: Any) -> LinkRecord:
    return LinkRecord(**{name: getattr(row, name) for name in _FIELDS})


class GroupStore:
    """For ``bot.domain.linking.GroupLinking``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def link_of_chat(self, chat_id: int) -> LinkRecord | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(_BY_CHAT, {"chat_id": chat_id})).first()
        return _link(row) if row is not None else None

    async def relink(
        self, *, chat_id: int, scope: str, code: int, province_code: int, linked_by: int
    ) -> tuple[LinkRecord | None, LinkRecord | None]:
        """Make this chat the group of (scope, code), letting go of what it served and of
        the target's previous group, in one transaction. Returns (what the chat served
        before, the link the target had before), each None if none."""
        async with self._db.transaction() as session:
            conn = await session.connection()
            found = (await conn.execute(_BY_CHAT, {"chat_id": chat_id})).first()
            held = (await conn.execute(_BY_TARGET, {"scope": scope, "code": code})).first()
            previous = _link(found) if found is not None else None
            holder = _link(held) if held is not None else None
            for link_id in {link.id for link in (previous, holder) if link is not None}:
                await conn.execute(_DELETE, {"link_id": link_id})
            await conn.execute(_INSERT, {
                "chat_id": chat_id, "scope": scope, "code": code,
                "province_code": province_code, "linked_by": linked_by,
                "linked_at": utcnow()})
        return previous, holder

    async def unlink(self, chat_id: int) -> LinkRecord | None:
        """Remove the chat's link; returns it (None if it had none)."""
        async with self._db.transaction() as session:
            conn = await session.connection()
            row = (await conn.execute(_BY_CHAT, {"chat_id": chat_id})).first()
            if row is None:
                return None
            await conn.execute(_DELETE, {"link_id": row.id})
        return _link(row)

    async def move_chat(self, *, old_chat_id: int, new_chat_id: int) -> bool:
        """The group's new id (supergroup) takes over its link, cards, prompts and queue;
        False if it has a link already (both service messages arrive) or had none."""
        async with self._db.transaction() as session:
            conn = await session.connection()
            if (await conn.execute(_BY_CHAT, {"chat_id": new_chat_id})).first() is not None:
                return False
            params = {"old": old_chat_id, "new": new_chat_id, "old_key": str(old_chat_id),
                      "new_key": str(new_chat_id)}
            moved = 0
            for index, statement in enumerate(_MOVES):
                result = await conn.execute(statement, params)
                if index == 0:
                    moved = int(result.rowcount or 0)
        return moved > 0
