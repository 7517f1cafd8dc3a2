"""Tip categories: data (categories.json), not code. Keys are short and ASCII so they fit
in callback data; labels are per language. A category may set its own acknowledgement
windows in hours, ``"ack_hours"`` and ``"urgent_ack_hours"`` (optional; otherwise
``TIPLINE_ACK_HOURS`` / ``TIPLINE_URGENT_ACK_HOURS`` apply)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CATEGORIES_FILE = Path(__file__).with_name("categories.json")
DEADLINE_KEYS = ("ack_hours", "urgent_ack_hours")
MAX_ACK_HOURS = 20 * 24.0  # within the 20-day settlement window (bot/domain/deadlines.py)


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    labels: dict[str, str]
    ack_hours: float | None = None  # this category's own acknowledgement window
    urgent_ack_hours: float | None = None

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["vi"]


class Categories:
    def __init__(self, categories: list[Category]) -> None:
        self._by_key = {c.key: c for c in categories}

    @classmethod
    def load(cls, path: Path | None = None) -> Categories:
        path = path or CATEGORIES_FILE
        rows = json.loads(path.read_text(encoding="utf-8"))
        return cls([_category(row, path) for row in rows])

    def all(self) -> list[Category]:
        return list(self._by_key.values())

    def get(self, key: str) -> Category | None:
        return self._by_key.get(key)

    def ack_windows(self) -> dict[str, tuple[float | None, float | None]]:
        """Each category's own acknowledgement hours (normal, urgent), where it sets one."""
        return {c.key: (c.ack_hours, c.urgent_ack_hours) for c in self._by_key.values()
                if c.ack_hours is not None or c.urgent_ack_hours is not None}


def _category(row: dict[str, object], path: Path) -> Category:
    key = row.get("key")
    labels = {k: v for k, v in row.items()
              if k != "key" and k not in DEADLINE_KEYS and isinstance(v, str)}
    if not isinstance(key, str) or not key.isascii() or len(key) > 20 or "vi" not in labels \
            or len(labels) + 1 + sum(k in row for k in DEADLINE_KEYS) != len(row):
        raise ValueError(f"bad category entry {key!r} in {path}")
    hours = {name: _hours(row.get(name), f"{name} of category {key!r} in {path}")
             for name in DEADLINE_KEYS}
    return Category(key, labels, ack_hours=hours["ack_hours"],
                    urgent_ack_hours=hours["urgent_ack_hours"])


def _hours(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 < value <= MAX_ACK_HOURS:
        raise ValueError(f"{what} must be a number of hours above 0 and at most "
                         f"{MAX_ACK_HOURS:g}")
    return float(value)
