"""Keyword-only data-access functions taking the session, for the outbox and routing (the
other services have their own modules in storage/). No business rules here."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import GroupLink, RelayMessage, Tip, TipCard


async def link_by_chat(session: AsyncSession, *, chat_id: int) -> GroupLink | None:
    return (await session.exec(select(GroupLink).where(GroupLink.chat_id == chat_id))).first()


_LINKS_FOR_TARGETS = select(GroupLink).where(or_(
    (col(GroupLink.scope) == "commune")
    & col(GroupLink.code).in_(bindparam("communes", expanding=True)),
    (col(GroupLink.scope) == "province")
    & col(GroupLink.code).in_(bindparam("provinces", expanding=True)),
))  # built once: routing runs for every tip


async def links_for_targets(
    session: AsyncSession, *, commune_codes: Collection[int], province_codes: Collection[int]
) -> list[GroupLink]:
    """The links of these communes and provinces, in one query."""
    return list((await session.exec(_LINKS_FOR_TARGETS, params={
        "communes": list(commune_codes), "provinces": list(province_codes),
    })).all())


async def move_link_chat(session: AsyncSession, *, old_chat_id: int, new_chat_id: int) -> int:
    """A group became a supergroup: everything that points at its chat id follows it
    (its link, its live cards, its open prompts, its tips' queue). Returns links moved."""
    result = await session.exec(
        update(GroupLink).where(GroupLink.chat_id == old_chat_id).values(chat_id=new_chat_id)  # type: ignore[arg-type]
    )
    await session.exec(
        update(TipCard).where(TipCard.chat_id == old_chat_id).values(chat_id=new_chat_id)  # type: ignore[arg-type]
    )
    await session.exec(
        update(RelayMessage)
        .where(RelayMessage.side == "group", RelayMessage.key == str(old_chat_id))  # type: ignore[arg-type]
        .values(key=str(new_chat_id))
    )
    await session.exec(
        update(Tip).where(Tip.queue_chat_id == old_chat_id).values(queue_chat_id=new_chat_id)  # type: ignore[arg-type]
    )
    return int(result.rowcount or 0)
