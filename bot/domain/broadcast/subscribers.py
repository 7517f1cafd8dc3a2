"""Residents who opted in to announcements: under their pseudonym, the chat sealed as for
tips (``ChatSealer``), with the area whose announcements they want.

Scopes: ``commune`` (the announcements of their commune, of its province and nationwide),
``province`` (of the province, any commune in it, and nationwide), ``all`` (every
announcement). A resident who never opted in never receives one; a 403/400 or an opt-out
makes a subscriber inactive, and only a new opt-in makes it active again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.domain.clock import Clock, SystemClock
from bot.domain.communes import CommuneDirectory
from bot.domain.sealing import ChatSealer, ReplyAddress

Scope = Literal["commune", "province", "all"]
SCOPES: tuple[Scope, ...] = ("commune", "province", "all")


@dataclass(frozen=True, slots=True)
class Subscription:
    scope: Scope
    commune_code: int | None
    province_code: int | None
    active: bool


class SubscriberStorage(Protocol):  # storage/subscribers.py
    async def subscribe(
        self, pseudonym: str, sealed_chat: str, scope: str, commune_code: int | None,
        province_code: int | None, now: datetime, language: str | None = None,
    ) -> None: ...
    async def unsubscribe(self, pseudonym: str, now: datetime) -> bool: ...
    async def subscription(self, pseudonym: str) -> Subscription | None: ...
    async def last_commune(self, pseudonym: str) -> int | None: ...


class SubscriptionError(ValueError):
    """A scope that cannot be stored (unknown commune or province)."""


class Subscriptions:
    def __init__(
        self, store: SubscriberStorage, sealer: ChatSealer, directory: CommuneDirectory,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._directory = directory
        self._clock: Clock = clock or SystemClock()

    async def subscribe(
        self, pseudonym: str, address: ReplyAddress, scope: Scope, code: int | None = None,
        *, language: str | None = None,
    ) -> Subscription:
        """Opt in (again): ``code`` is the commune's code for ``commune``, the province's for
        ``province``, None for ``all``. Re-activates an inactive subscriber."""
        commune_code = province_code = None
        if scope == "commune":
            commune = self._directory.commune(code) if code is not None else None
            if commune is None:
                raise SubscriptionError("unknown commune")
            commune_code, province_code = commune.code, commune.province_code
        elif scope == "province":
            province = self._directory.province(code) if code is not None else None
            if province is None:
                raise SubscriptionError("unknown province")
            province_code = province.code
        elif scope != "all":
            raise SubscriptionError("unknown scope")
        await self._store.subscribe(pseudonym, self._sealer.seal(address), scope,
                                    commune_code, province_code, self._clock.now(), language)
        return Subscription(scope, commune_code, province_code, True)

    async def unsubscribe(self, pseudonym: str) -> bool:
        """Opt out; True if the resident was receiving announcements."""
        return await self._store.unsubscribe(pseudonym, self._clock.now())

    async def subscription(self, pseudonym: str) -> Subscription | None:
        return await self._store.subscription(pseudonym)

    async def last_commune(self, pseudonym: str) -> int | None:
        """The commune the resident used last (the default scope)."""
        return await self._store.last_commune(pseudonym)


def is_stop_word(text: str) -> bool:
    """"Dừng", "dừng", "STOP" in any case (spacing and a trailing "." or "!" aside)."""
    word = " ".join(text.split()).strip(" .!").casefold()
    return word in STOP_WORDS


STOP_WORDS = frozenset({"dừng", "dừng lại", "stop"})
