"""The tip status model: which action may start from which status, and where it leads.
One table, read by the triage service (guards) and the card (buttons)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ACK = "ack"
    VERIFY = "verify"
    DONE = "done"
    INVALID = "invalid"
    TRANSFER = "transfer"
    ASK = "ask"


OPEN_STATUSES = frozenset({"new", "acknowledged", "verifying"})
# action -> (statuses it may start from, status it leads to; None = unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[str], str | None]] = {
    Action.ACK: (frozenset({"new"}), "acknowledged"),
    Action.VERIFY: (frozenset({"acknowledged"}), "verifying"),
    Action.DONE: (frozenset({"acknowledged", "verifying"}), "processed"),
    Action.INVALID: (OPEN_STATUSES, "invalid"),
    Action.TRANSFER: (OPEN_STATUSES, "new"),
    Action.ASK: (frozenset({"acknowledged", "verifying"}), None),
}
OUTCOMES = ("agency", "admin", "unfounded", "duplicate")
INVALID_REASONS = ("spam", "no_facts", "not_ours", "other")


def allowed_actions(status: str) -> list[Action]:
    """The buttons a card shows, in this order."""
    return [action for action, (sources, _to) in TRANSITIONS.items() if status in sources]
