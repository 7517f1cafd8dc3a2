"""Routing: which chat owns a tip. Commune group, else the province group, else the admins'
ops chat (flagged "unrouted"). A tip is never dropped: with no chat at all it stays queued
in the outbox until a group is linked, and the failure is logged loudly. This is the rule
alone; the linked groups are read by storage (``storage/outbox_store.destinations_for``,
``storage/intake``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

QueueScope = Literal["commune", "province", "ops", "none"]


@dataclass(frozen=True, slots=True)
class Destination:
    scope: QueueScope
    chat_id: int | None


class Router:
    def __init__(self, ops_chat_id: int | None) -> None:
        self.ops_chat_id = ops_chat_id

    def choose(
        self, places: Sequence[tuple[int, int]], links: Iterable[tuple[str, int, int]], *,
        skip_chat_ids: frozenset[int] = frozenset(), province_only: bool = False,
    ) -> list[Destination]:
        """The rule alone: for each (commune code, province code), given the linked groups
        as (scope, code, chat id), its commune group, else its province group, else ops."""
        chat_of = {
            (scope, code): chat_id for scope, code, chat_id in links
            if chat_id not in skip_chat_ids
        }
        ops = self.ops_chat_id if self.ops_chat_id not in skip_chat_ids else None
        found: list[Destination] = []
        for commune_code, province_code in places:
            commune_chat = None if province_only else chat_of.get(("commune", commune_code))
            province_chat = chat_of.get(("province", province_code))
            if commune_chat is not None:
                found.append(Destination("commune", commune_chat))
            elif province_chat is not None:
                found.append(Destination("province", province_chat))
            elif ops is not None:
                found.append(Destination("ops", ops))
            else:
                found.append(Destination("none", None))
        return found
