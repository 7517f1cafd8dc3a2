"""What each outbox row carries: its kind and a typed payload.

A row's payload is JSON in the ``outbox.payload`` column: what the writer asked for (a
notice's text, where a transferred card goes) plus the progress of a multi-part send (which
parts went out, to which chat), recorded step by step so a retry sends only what is missing.
Each kind has one frozen dataclass here; ``to_json``/``from_json`` keep the column's JSON
exactly as it was before the payloads were typed (rows written by an older version still
read), and ``from_json`` refuses what no writer produces (unknown keys, wrong types): a
forged or corrupt row fails its attempt and is given up like any failing row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar, cast


class OutboxKind(StrEnum):
    TIP_CARD = "tip_card"  # the tip's card (+ photos, location) in its group
    RECEIPT = "receipt"  # the receipt's safety net, sent if the confirm handler could not
    CARD_REFRESH = "card_refresh"  # every live card of the tip edited to its current state
    CARD_RETIRE = "card_retire"  # an old card after a transfer: marked, buttons removed
    REPORTER_NOTICE = "reporter_notice"  # the reporter told of a status change or a question
    GROUP_RELAY = "group_relay"  # the reporter's answer, as a reply to every live card
    DIGEST = "digest"  # a round's digest (reminders, escalations, summary) in one group


class PayloadError(ValueError):
    """A payload no writer produces (forged, corrupt, or of an unknown kind)."""


NoticeKind = Literal["ack", "done", "invalid", "question"]
NOTICE_KINDS: frozenset[str] = frozenset({"ack", "done", "invalid", "question"})
UnreachableWhy = Literal["purged", "gone"]

T = TypeVar("T")


def _object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError as error:
        raise PayloadError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PayloadError("not a JSON object")
    return data


def _only(data: Mapping[str, Any], keys: Iterable[str], *, prefixes: Iterable[str] = ()) -> None:
    allowed, starts = set(keys), tuple(prefixes)
    unknown = [k for k in data if k not in allowed and not (starts and k.startswith(starts))]
    if unknown:
        raise PayloadError(f"unknown keys {sorted(unknown)!r}")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name} is not an integer")
    return value


def _opt_int(value: Any, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _opt_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"{name} is not a string")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(f"{name} is not true/false")
    return value


def _ints(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise PayloadError(f"{name} is not a list")
    return tuple(_int(item, name) for item in value)


def _flag_ids(data: Mapping[str, Any], prefix: str) -> frozenset[int]:
    """Keys ``"<prefix>:<card id>": true`` (one per group card a part went to)."""
    ids = set()
    for key, value in data.items():
        if key.startswith(f"{prefix}:"):
            number = key[len(prefix) + 1:]
            if not number.lstrip("-").isdigit() or value is not True:
                raise PayloadError(f"bad key {key!r}")
            ids.add(int(number))
    return frozenset(ids)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class TipCardPayload:
    """Where the card goes (a transfer's ``route``) and how far its send got."""

    kind: ClassVar[OutboxKind] = OutboxKind.TIP_CARD
    route_commune: int | None = None  # transferred to this commune's queue
    route_province_only: bool = False  # escalated to the province group
    chat_id: int | None = None  # the group chosen for this card
    scope: str | None = None  # that group's queue scope (commune, province, ops)
    card: tuple[int, ...] | None = None  # the card's message ids once posted
    photos: bool = False  # its photos went out
    location: bool = False  # its location went out
    resend: bool = False  # an earlier attempt may have posted the card already
    gone: tuple[int, ...] = ()  # groups found gone: routed around

    @property
    def first_attempt(self) -> bool:
        """Nothing recorded yet: the plain route (commune, province, ops) applies."""
        return self == TipCardPayload()

    def to_json(self) -> str:
        data: dict[str, Any] = {}
        if self.route_commune is not None:
            data["route"] = {"commune": self.route_commune}
        elif self.route_province_only:
            data["route"] = {"province_only": True}
        if self.gone:
            data["gone"] = list(self.gone)
        if self.chat_id is not None:
            data["chat_id"] = self.chat_id
        if self.scope is not None:
            data["scope"] = self.scope
        if self.resend:
            data["resend"] = True
        if self.card is not None:
            data["card"] = list(self.card)
        if self.photos:
            data["photos"] = True
        if self.location:
            data["location"] = True
        return _dump(data)

    @classmethod
    def from_json(cls, text: str) -> TipCardPayload:
        data = _object(text)
        _only(data, ("route", "gone", "chat_id", "scope", "resend", "card", "photos",
                     "location"))
        route = data.get("route") or {}
        if not isinstance(route, dict):
            raise PayloadError("route is not an object")
        _only(route, ("commune", "province_only"))
        card = data.get("card")
        return cls(
            route_commune=_opt_int(route.get("commune"), "route.commune"),
            route_province_only=_flag(route.get("province_only", False), "route.province_only"),
            chat_id=_opt_int(data.get("chat_id"), "chat_id"),
            scope=_opt_str(data.get("scope"), "scope"),
            card=None if card is None else _ints(card, "card"),
            photos=_flag(data.get("photos", False), "photos"),
            location=_flag(data.get("location", False), "location"),
            resend=_flag(data.get("resend", False), "resend"),
            gone=_ints(data.get("gone", []), "gone"),
        )


@dataclass(frozen=True, slots=True)
class ReceiptPayload:
    """The tip's own receipt (``{}``: the row the confirm handler marks sent), or the
    "merged with your earlier tip" answer to a duplicate."""

    kind: ClassVar[OutboxKind] = OutboxKind.RECEIPT
    duplicate: bool = False

    def to_json(self) -> str:
        return _dump({"duplicate": True} if self.duplicate else {})

    @classmethod
    def from_json(cls, text: str) -> ReceiptPayload:
        data = _object(text)
        _only(data, ("duplicate",))
        return cls(duplicate=_flag(data.get("duplicate", False), "duplicate"))


@dataclass(frozen=True, slots=True)
class CardRefreshPayload:
    kind: ClassVar[OutboxKind] = OutboxKind.CARD_REFRESH

    def to_json(self) -> str:
        return "{}"

    @classmethod
    def from_json(cls, text: str) -> CardRefreshPayload:
        _only(_object(text), ())
        return cls()


@dataclass(frozen=True, slots=True)
class CardRetirePayload:
    """The card to retire, and the commune the tip went to (None: up to the province)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CARD_RETIRE
    chat_id: int
    message_id: int
    to: int | None = None

    def to_json(self) -> str:
        return _dump({"chat_id": self.chat_id, "message_id": self.message_id, "to": self.to})

    @classmethod
    def from_json(cls, text: str) -> CardRetirePayload:
        data = _object(text)
        _only(data, ("chat_id", "message_id", "to"))
        if "chat_id" not in data or "message_id" not in data:
            raise PayloadError("chat_id and message_id are required")
        return cls(chat_id=_int(data["chat_id"], "chat_id"),
                   message_id=_int(data["message_id"], "message_id"),
                   to=_opt_int(data.get("to"), "to"))


@dataclass(frozen=True, slots=True)
class ReporterNoticePayload:
    """A status notice (ack, done + outcome, invalid) or a police question; once the
    reporter is found unreachable, why, and which live cards' groups were told."""

    kind: ClassVar[OutboxKind] = OutboxKind.REPORTER_NOTICE
    notice: NoticeKind
    choice: str | None = None  # the outcome of "done" / the reason of "invalid"
    text: str | None = None  # the question
    unreachable: UnreachableWhy | None = None
    warned: frozenset[int] = frozenset()  # card ids whose group was told "unreachable"

    def to_json(self) -> str:
        data: dict[str, Any] = {"notice": self.notice}
        if self.notice != "question" or self.choice is not None:
            data["choice"] = self.choice
        if self.text is not None:
            data["text"] = self.text
        if self.unreachable is not None:
            data["unreachable"] = self.unreachable
        data.update({f"warned:{card}": True for card in sorted(self.warned)})
        return _dump(data)

    @classmethod
    def from_json(cls, text: str) -> ReporterNoticePayload:
        data = _object(text)
        _only(data, ("notice", "choice", "text", "unreachable"), prefixes=("warned:",))
        notice = data.get("notice")
        if notice not in NOTICE_KINDS:
            raise PayloadError(f"unknown notice {notice!r}")
        unreachable = data.get("unreachable")
        if unreachable not in (None, "purged", "gone"):
            raise PayloadError(f"unknown unreachable reason {unreachable!r}")
        return cls(
            notice=cast(NoticeKind, notice), choice=_opt_str(data.get("choice"), "choice"),
            text=_opt_str(data.get("text"), "text"),
            unreachable=cast("UnreachableWhy | None", unreachable),
            warned=_flag_ids(data, "warned"),
        )


@dataclass(frozen=True, slots=True)
class GroupRelayPayload:
    """The reporter's answer (text and/or stored photos) and which cards got which part."""

    kind: ClassVar[OutboxKind] = OutboxKind.GROUP_RELAY
    text: str | None = None
    photo_ids: tuple[int, ...] = ()
    text_sent: frozenset[int] = frozenset()  # card ids the text went under
    photos_sent: frozenset[int] = frozenset()  # card ids the photos went under

    def to_json(self) -> str:
        data: dict[str, Any] = {"text": self.text, "photo_ids": list(self.photo_ids)}
        data.update({f"text:{card}": True for card in sorted(self.text_sent)})
        data.update({f"photos:{card}": True for card in sorted(self.photos_sent)})
        return _dump(data)

    @classmethod
    def from_json(cls, text: str) -> GroupRelayPayload:
        data = _object(text)
        _only(data, ("text", "photo_ids"), prefixes=("text:", "photos:"))
        return cls(
            text=_opt_str(data.get("text"), "text"),
            photo_ids=_ints(data.get("photo_ids", []), "photo_ids"),
            text_sent=_flag_ids(data, "text"), photos_sent=_flag_ids(data, "photos"),
        )


@dataclass(frozen=True, slots=True)
class DigestPayload:
    """A round's digest for one group (no tip): its messages, composed when the round was
    claimed, how many went out already, and the round's ``job_runs`` row (None: none)."""

    kind: ClassVar[OutboxKind] = OutboxKind.DIGEST
    chat_id: int
    parts: tuple[str, ...]
    sent: int = 0  # parts posted so far: a retry posts only the rest
    run: int | None = None  # the job_runs row marked sent once the last part is out

    def to_json(self) -> str:
        data: dict[str, Any] = {"chat_id": self.chat_id, "parts": list(self.parts)}
        if self.sent:
            data["sent"] = self.sent
        if self.run is not None:
            data["run"] = self.run
        return _dump(data)

    @classmethod
    def from_json(cls, text: str) -> DigestPayload:
        data = _object(text)
        _only(data, ("chat_id", "parts", "sent", "run"))
        parts = data.get("parts")
        if "chat_id" not in data or not isinstance(parts, list) or not parts \
                or not all(isinstance(part, str) and part for part in parts):
            raise PayloadError("chat_id and non-empty parts are required")
        sent = _int(data.get("sent", 0), "sent")
        if not 0 <= sent <= len(parts):
            raise PayloadError("sent is out of range")
        return cls(chat_id=_int(data["chat_id"], "chat_id"), parts=tuple(parts), sent=sent,
                   run=_opt_int(data.get("run"), "run"))


Payload: TypeAlias = (TipCardPayload | ReceiptPayload | CardRefreshPayload | CardRetirePayload
                      | ReporterNoticePayload | GroupRelayPayload | DigestPayload)
PAYLOADS: dict[OutboxKind, type[Payload]] = {
    cls.kind: cls for cls in (TipCardPayload, ReceiptPayload, CardRefreshPayload,
                              CardRetirePayload, ReporterNoticePayload, GroupRelayPayload,
                              DigestPayload)
}


def parse_payload(kind: str, text: str) -> Payload:
    """The typed payload of a row; ``PayloadError`` for an unknown kind or a payload no
    writer of that kind produces."""
    try:
        outbox_kind = OutboxKind(kind)
    except ValueError:
        raise PayloadError(f"unknown outbox kind {kind!r}") from None
    return PAYLOADS[outbox_kind].from_json(text)


def payload_as(kind: type[T], payload: Payload) -> T:
    if not isinstance(payload, kind):
        raise PayloadError(f"expected {kind.__name__}, got {type(payload).__name__}")
    return payload
