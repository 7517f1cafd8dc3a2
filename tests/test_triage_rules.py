"""Triage's and the read side's rules on plain data, no database: which group sees a tip,
whose members may act, what a status change writes, lookup throttling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.limits import SlidingWindowLimiter
from bot.domain.records import TipRecord
from bot.domain.status import Action
from bot.domain.triage import (
    Officer,
    TriageError,
    change_values,
    groups_that_may_act,
    may_see,
)

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
OFFICER = Officer(42, "Bình Lê Thị")
TIP = TipRecord(
    id=7, code="7K3Q-9MXD", channel="telegram", commune_code=2998, province_code=15,
    category="drugs", urgent=False, description="…", content_hash="h", latitude=None,
    longitude=None, photo_count=0, status="new", queue_scope="commune", queue_chat_id=-1,
    created_at=NOW, ack_due_at=NOW + timedelta(days=1), settle_due_at=NOW + timedelta(days=7),
    delivered_at=None, updated_at=NOW, owner_id=None, owner_name=None, acknowledged_at=None,
    closed_at=None, outcome=None, transfers=0,
)


def test_a_group_sees_the_tips_of_its_commune_or_province_only() -> None:
    assert may_see(("commune", 2998), TIP)
    assert may_see(("province", 15), TIP)
    assert not may_see(("commune", 2999), TIP)
    assert not may_see(("province", 2998), TIP)  # a commune code is not a province code
    assert not may_see(None, TIP)  # an unlinked group sees nothing
    moved = replace(TIP, commune_code=3001, province_code=16)
    assert not may_see(("commune", 2998), moved)  # after a transfer, the old group no more


def test_members_of_the_commune_and_province_groups_may_act() -> None:
    assert groups_that_may_act(TIP) == [("commune", 2998), ("province", 15)]


def test_what_each_change_writes() -> None:
    ack = change_values(Action.ACK, OFFICER, None, NOW)
    assert ack == {"status": "acknowledged", "updated_at": NOW, "owner_id": 42,
                   "owner_name": "Bình Lê Thị", "acknowledged_at": NOW}
    done = change_values(Action.DONE, OFFICER, "agency", NOW)
    assert done == {"status": "processed", "updated_at": NOW, "closed_at": NOW,
                    "outcome": "agency"}
    assert change_values(Action.INVALID, OFFICER, "spam", NOW)["status"] == "invalid"
    assert change_values(Action.VERIFY, OFFICER, None, NOW) == {
        "status": "verifying", "updated_at": NOW}


def test_a_choice_must_fit_its_action() -> None:
    for action, choice in ((Action.DONE, None), (Action.DONE, "spam"),
                           (Action.INVALID, "agency")):
        with pytest.raises(TriageError) as caught:
            change_values(action, OFFICER, choice, NOW)
        assert caught.value.reason == "bad_choice"
    with pytest.raises(ValueError, match="transfer"):
        change_values(Action.TRANSFER, OFFICER, None, NOW)


def test_wrong_codes_are_throttled_per_person_in_a_sliding_hour() -> None:
    clock = [0.0]
    limiter = SlidingWindowLimiter(3, 3600, clock=lambda: clock[0])
    for _ in range(3):
        assert not limiter.blocked("p")
        limiter.hit("p")
    assert limiter.blocked("p") and not limiter.blocked("q")  # per person
    clock[0] = 3600.5  # the first wrong code is an hour old
    assert not limiter.blocked("p")
