"""Indexes for the KPIs (/stats, /overdue, the morning summary): a period of one commune or
one province by receipt time, and the open tips of an area (a partial index: open tips are
a small share of all tips, so it stays small and an overdue count reads only the index).
Query plans and timings: docs/benchmarks.md, "KPIs and /stats".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'acknowledged', 'verifying')"


def upgrade() -> None:
    op.create_index("ix_tips_commune_created", "tips", ["commune_code", "created_at"])
    op.create_index("ix_tips_province_created", "tips", ["province_code", "created_at"])
    op.create_index(
        "ix_tips_open_area", "tips",
        ["province_code", "commune_code", "status", "ack_due_at", "settle_due_at"],
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_tips_open_area", table_name="tips")
    op.drop_index("ix_tips_province_created", table_name="tips")
    op.drop_index("ix_tips_commune_created", table_name="tips")
