"""What the outbox needs from storage, as plain records and one protocol.

The outbox modules import neither SQLAlchemy nor ``storage``: they are given an
``OutboxStore`` (``storage/outbox_store.py`` implements it on the database). Tips come back
as objects the card renderer can read (``TipView``); everything else as the records below.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.domain.cards import TipView
from bot.domain.routing import Destination, Router


@dataclass(slots=True)
class OutboxRow:
    """A claimed row: what the worker reads and updates while it sends it."""

    id: int
    kind: str
    tip_id: int | None
    payload: str
    attempts: int
    status: str = "pending"


@dataclass(frozen=True, slots=True)
class DueHead:
    """A due row first in its tip's line (receipts: always)."""

    row_id: int
    later_waiting: bool  # the tip has later rows waiting for this one
    urgent: bool
    lease_owner: str | None  # still set: an earlier attempt never finished


@dataclass(frozen=True, slots=True)
class Claimed:
    row: OutboxRow
    tip: TipView | None
    destination: Destination | None  # new cards: where the plain route leads


@dataclass(frozen=True, slots=True)
class LiveCard:
    id: int
    chat_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class PhotoData:
    data: bytes
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Reporter:
    pseudonym: str
    sealed_chat: str
    language: str | None  # the resident's chosen language, if known


@dataclass(frozen=True, slots=True)
class Mark:
    row_id: int
    status: str


@dataclass(frozen=True, slots=True)
class CardPosted:
    row_id: int
    tip_id: int
    chat_id: int
    message_id: int
    scope: str
    payload: str
    finished: bool  # the row's last step: marked sent in the same write


# the router's batch look-up, run by the store inside its own read: (session, places)


class OutboxStore(Protocol):
    """Every read and write of the outbox. ``receipts`` arguments: tips whose receipt row
    the confirm handler delivered, marked sent in the same write transaction."""

    async def due_heads(self, now: datetime, limit: int) -> list[DueHead]: ...

    async def claim(
        self, ids: Sequence[int], *, now: datetime, owner: str, lease_until: datetime,
        urgent_ids: Collection[int], urgent_lease_until: datetime, receipts: Sequence[int],
        needs_route: Callable[[OutboxRow], bool], router: Router,
    ) -> list[Claimed]: ...

    async def take_back_leases(self, *, node: str, owner: str, now: datetime) -> int: ...

    async def reschedule(
        self, row_id: int, *, due: datetime, error: str, payload: str | None
    ) -> None: ...

    async def save_payload(self, row_id: int, payload: str) -> None: ...

    async def write_marks(
        self, marks: Sequence[Mark], *, now: datetime, receipts: Sequence[int]
    ) -> None: ...

    async def write_cards_posted(
        self, posted: Sequence[CardPosted], *, now: datetime, receipts: Sequence[int]
    ) -> None: ...

    async def mark_receipts(self, receipts: Sequence[int], *, now: datetime) -> None: ...

    async def receipt_due(self, tip_id: int, *, due: datetime) -> None: ...

    async def add_row(self, kind: str, tip_id: int, payload: str, *, due: datetime) -> None: ...

    async def add_event(self, tip_id: int, event: str, details: dict[str, Any]) -> None: ...

    async def tip(self, tip_id: int) -> TipView | None: ...

    async def transfer_origin(self, tip_id: int) -> int | None:
        """The commune the tip was last transferred from (None: never transferred)."""
        ...

    async def card_material(
        self, tip_id: int, *, router: Router | None, skip_chat_ids: frozenset[int],
        province_only: bool,
    ) -> tuple[TipView, Destination | None, list[PhotoData]]: ...

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> None: ...

    async def rerouted(self, tip_id: int, gone_chat_id: int | None) -> None: ...

    async def live_cards(self, tip_id: int) -> list[LiveCard]: ...

    async def reporter(self, tip_id: int) -> tuple[TipView | None, Reporter | None]: ...

    async def reporter_notified(
        self, tip_id: int, *, notice: str, question_to: tuple[str, int] | None
    ) -> None: ...

    async def reporter_unreachable(
        self, tip_id: int, row_id: int, *, why: str, payload: str
    ) -> None: ...

    async def relay_material(
        self, tip_id: int, photo_ids: Sequence[int]
    ) -> tuple[TipView | None, list[PhotoData]]: ...

    async def round_delivered(self, run_id: int, *, status: str, at: datetime) -> None:
        """A round's digest went out ("sent") or could not ("failed"): its job_runs row."""
