"""Deadlines set the moment a tip is committed (promise 3: accounted for from the first
second). Settling follows BLTTHS 2015 Art. 147 (20 days); acknowledgement is our service
level: 24 hours, 1 hour for urgent tips (configurable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    ack_within: timedelta = timedelta(hours=24)
    urgent_ack_within: timedelta = timedelta(hours=1)
    settle_within: timedelta = timedelta(days=20)  # BLTTHS 2015 Art. 147(1)

    def ack_due(self, received_at: datetime, *, urgent: bool) -> datetime:
        return received_at + (self.urgent_ack_within if urgent else self.ack_within)

    def settle_due(self, received_at: datetime) -> datetime:
        return received_at + self.settle_within
