"""What a delivery is given: the claimed row with its typed payload, and the worker's desk
(store, transport, renderers, bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from bot.domain.cards import CardRenderer, TipView
from bot.domain.notices import ReporterNotices
from bot.domain.outbox.payloads import OutboxKind, Payload
from bot.domain.outbox.store import CardPosted, OutboxRow, OutboxStore
from bot.domain.outbox.transport import Transport
from bot.domain.routing import Destination, Router

P = TypeVar("P", bound=Payload)


@dataclass(slots=True)
class Job(Generic[P]):
    """One attempt at one row. ``payload`` is replaced as parts go out (``Desk.save``)."""

    row: OutboxRow
    payload: P
    tip: TipView | None = None  # read when the row was claimed
    destination: Destination | None = None  # new cards: the plain route, read with the claim
    resend: bool = False  # an earlier attempt never finished: its send may have gone out
    more: bool = False  # the tip has later rows waiting for this one


class Desk(Protocol):
    """The worker, as its deliveries see it."""

    store: OutboxStore
    renderer: CardRenderer
    notices: ReporterNotices
    router: Router

    @property
    def transport(self) -> Transport: ...

    async def save(self, job: Job[P], payload: P) -> None:
        """Record the progress of a multi-part send (``job.payload`` becomes ``payload``)."""

    async def mark(self, row: OutboxRow, status: str) -> None: ...

    async def card_posted(self, posted: CardPosted) -> None: ...

    async def chat_moved(self, old_chat_id: int, new_chat_id: int) -> None: ...


class Delivery(Generic[P]):
    """One kind of outbox row: how it is sent."""

    kind: ClassVar[OutboxKind]

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def deliver(self, job: Job[P]) -> None:
        raise NotImplementedError

    async def given_up(self, row: OutboxRow, payload: P) -> None:
        """The worker gave the row up (too many failed attempts): what this kind records
        besides the row's "failed" (nothing by default)."""
