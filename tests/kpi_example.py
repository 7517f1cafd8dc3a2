"""The worked example of docs/kpi.md, built tip by tip in a real database (used by
tests/test_kpi.py and tests/test_kpi_bot.py). Times are ICT; the figures it must give are
in docs/kpi.md and asserted by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.domain.deadlines import DeadlinePolicy
from storage.db import Database
from storage.tables import tips as tips_table

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
PHUC_KHANH = 2998  # "A" in docs/kpi.md
KHAO_MANG = 4465  # "B": another commune of Lào Cai
LAO_CAI = 15
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ICT)  # "now" of the example
POLICY = DeadlinePolicy()


def ict(day: int, month: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ICT)


@dataclass(frozen=True)
class ExampleTip:
    code: str
    commune: int
    category: str
    received: datetime
    status: str
    acknowledged: datetime | None = None
    closed: datetime | None = None
    urgent: bool = False
    outcome: str | None = None
    owner: str | None = None
    transfers: int = 0


EXAMPLE = [
    ExampleTip("KPI1-AAAA", PHUC_KHANH, "theft", ict(3, 11, 8), "processed",
               acknowledged=ict(3, 11, 10), closed=ict(10, 11, 9), outcome="admin",
               owner="Bình Lê Thị"),
    ExampleTip("KPI2-AAAA", PHUC_KHANH, "drugs", ict(5, 11, 20), "processed", urgent=True,
               acknowledged=ict(5, 11, 21, 30), closed=ict(20, 11, 15), outcome="agency",
               owner="Bình Lê Thị"),
    ExampleTip("KPI3-AAAA", PHUC_KHANH, "theft", ict(10, 11, 9), "processed",
               acknowledged=ict(12, 11, 9), closed=ict(30, 11, 10), outcome="admin",
               owner="An Nguyễn Văn"),
    ExampleTip("KPI4-AAAA", PHUC_KHANH, "other", ict(12, 11, 7), "invalid",
               closed=ict(12, 11, 15), outcome="spam"),
    ExampleTip("KPI5-AAAA", PHUC_KHANH, "fraud", ict(15, 11, 10), "verifying",
               acknowledged=ict(15, 11, 11), owner="Bình Lê Thị"),
    ExampleTip("KPI6-AAAA", PHUC_KHANH, "gambling", ict(8, 11, 16), "acknowledged",
               acknowledged=ict(9, 11, 9), owner="An Nguyễn Văn"),
    # received by B, taken up there, transferred to A on 30/11 10:00: new again in A
    ExampleTip("KPI7-AAAA", PHUC_KHANH, "drugs", ict(29, 11, 22), "new", transfers=1),
    ExampleTip("KPI8-AAAA", PHUC_KHANH, "disorder", ict(30, 11, 18), "new"),
    # outside November: received in October, still being verified
    ExampleTip("KPI0-AAAA", PHUC_KHANH, "traffic", ict(20, 10, 9), "verifying",
               acknowledged=ict(20, 10, 10), owner="Bình Lê Thị"),
    # received by A, transferred to B at once; B took it up and processed it
    ExampleTip("KPI9-BBBB", KHAO_MANG, "theft", ict(18, 11, 10), "processed",
               acknowledged=ict(18, 11, 12), closed=ict(19, 11, 10), outcome="admin",
               owner="Cường Trần Quốc", transfers=1),
]


async def build_example(db: Database) -> None:
    rows = []
    for tip in EXAMPLE:
        rows.append({
            "code": tip.code, "channel": "telegram", "commune_code": tip.commune,
            "province_code": LAO_CAI, "category": tip.category, "urgent": tip.urgent,
            "description": "Ví dụ trong docs/kpi.md", "content_hash": tip.code,
            "status": tip.status, "queue_scope": "commune", "queue_chat_id": None,
            "created_at": tip.received, "updated_at": tip.closed or tip.received,
            "ack_due_at": POLICY.ack_due(tip.received, urgent=tip.urgent),
            "settle_due_at": POLICY.settle_due(tip.received),
            "acknowledged_at": tip.acknowledged, "closed_at": tip.closed,
            "outcome": tip.outcome, "owner_id": 7100000002 if tip.owner else None,
            "owner_name": tip.owner, "transfers": tip.transfers, "photo_count": 0,
        })
    async with db.transaction() as session:
        conn = await session.connection()
        await conn.execute(sa.insert(tips_table), rows)


HOURS = timedelta(hours=1)
