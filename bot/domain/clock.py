"""The time, injectable: the composition root gives the system clock; tests give a clock
they move forward instead of sleeping (deadlines, reminder rounds, KPIs "now")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
