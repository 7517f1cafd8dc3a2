"""Keyword-only data-access functions taking the session. No business rules here."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import GroupLink, RelayMessage, Resident, Tip, TipCard, utcnow


async def link_by_chat(session: AsyncSession, *, chat_id: int) -> GroupLink | None:
    return (await session.exec(select(GroupLink).where(GroupLink.chat_id == chat_id))).first()


async def link_by_target(session: AsyncSession, *, scope: str, code: int) -> GroupLink | None:
    query = select(GroupLink).where(GroupLink.scope == scope, GroupLink.code == code)
    return (await session.exec(query)).first()


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


async def delete_link(session: AsyncSession, *, link_id: int) -> None:
    await session.exec(delete(GroupLink).where(GroupLink.id == link_id))  # type: ignore[arg-type]


async def add_link(session: AsyncSession, link: GroupLink) -> GroupLink:
    session.add(link)
    await session.flush()
    return link


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


async def resident(session: AsyncSession, *, pseudonym: str) -> Resident | None:
    return await session.get(Resident, pseudonym)


async def upsert_resident(
    session: AsyncSession, *, pseudonym: str, language: str | None = None,
    subscribed: bool | None = None,
) -> Resident:
    """Create the resident's row if needed and set the given fields."""
    row = await session.get(Resident, pseudonym)
    if row is None:
        row = Resident(pseudonym=pseudonym)
        session.add(row)
    if language is not None:
        row.language = language
    if subscribed is not None:
        row.subscribed = subscribed
    row.updated_at = utcnow()
    await session.flush()
    return row
