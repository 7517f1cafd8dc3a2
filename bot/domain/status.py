"""The tip status model: the statuses, which action may start from which status and where
it leads, and what each status is called. One table each, read by the triage service
(guards), the card (buttons, status line), the police commands and the resident's /status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.i18n import N_, Gettext


class TipStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    PROCESSED = "processed"
    INVALID = "invalid"


class Action(StrEnum):
    ACK = "ack"
    VERIFY = "verify"
    DONE = "done"
    INVALID = "invalid"
    TRANSFER = "transfer"
    ASK = "ask"
    COMPLEX = "complex"  # the settlement deadline becomes 2 months (bot/domain/deadlines.py)


OPEN_STATUSES: frozenset[str] = frozenset(
    {TipStatus.NEW, TipStatus.ACKNOWLEDGED, TipStatus.VERIFYING}
)
# action -> (statuses it may start from, status it leads to; None = unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[str], str | None]] = {
    Action.ACK: (frozenset({TipStatus.NEW}), TipStatus.ACKNOWLEDGED),
    Action.VERIFY: (frozenset({TipStatus.ACKNOWLEDGED}), TipStatus.VERIFYING),
    Action.DONE: (frozenset({TipStatus.ACKNOWLEDGED, TipStatus.VERIFYING}), TipStatus.PROCESSED),
    Action.INVALID: (OPEN_STATUSES, TipStatus.INVALID),
    Action.TRANSFER: (OPEN_STATUSES, TipStatus.NEW),  # acknowledged again in the new queue
    Action.ASK: (frozenset({TipStatus.ACKNOWLEDGED, TipStatus.VERIFYING}), None),
    Action.COMPLEX: (OPEN_STATUSES, None),  # once (the card shows it once taken up)
}
OUTCOMES = ("agency", "admin", "unfounded", "duplicate")
INVALID_REASONS = ("spam", "no_facts", "not_ours", "other")


@dataclass(frozen=True, slots=True)
class StatusLabel:
    police: str  # a msgid, translated into Vietnamese: cards, police commands
    resident: str  # a msgid, translated into the resident's language


STATUS_LABELS: dict[TipStatus, StatusLabel] = {
    TipStatus.NEW: StatusLabel(
        N_("New – waiting to be taken up"), N_("received, waiting for the police to take it up")),
    TipStatus.ACKNOWLEDGED: StatusLabel(N_("Taken up"), N_("taken up by the police")),
    TipStatus.VERIFYING: StatusLabel(
        N_("Being verified"), N_("being verified by the police")),
    TipStatus.PROCESSED: StatusLabel(N_("Handled"), N_("processed")),
    TipStatus.INVALID: StatusLabel(
        N_("Not valid"), N_("reviewed; not enough grounds to act on it")),
}


def police_label(status: str, _: Gettext) -> str:
    """What police see for a status (``_`` bound to Vietnamese); an unknown status as it is
    stored."""
    label = STATUS_LABELS.get(status)  # type: ignore[call-overload]
    return _(label.police) if label is not None else status


def resident_label(status: str, _: Gettext) -> str:
    """What the resident sees for a status, in their language."""
    label = STATUS_LABELS.get(status)  # type: ignore[call-overload]
    return _(label.resident) if label is not None else status


def allowed_actions(status: str) -> list[Action]:
    """The buttons a card shows, in this order."""
    return [action for action, (sources, _to) in TRANSITIONS.items() if status in sources]
