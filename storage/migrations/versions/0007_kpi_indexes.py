"""Indexes for the KPIs (/stats, /overdue, the morning summary):

- a period of one commune by receipt time (commune_code, created_at);
- a period of one province, covering: every column the counts read is in the index, so a
  province's month (thousands of tips) is read from the index alone, in order, without a
  table lookup per tip;
- the open tips of a province (then of a commune): a partial index (open tips are a small
  share of all tips: it stays small, and a backlog or overdue count reads only the index).

The two period indexes start with commune_code / province_code: they replace the
single-column indexes on those columns. Query plans and timings: docs/benchmarks.md,
"KPIs and /stats".

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
KPI_COLUMNS = ["province_code", "created_at", "status", "category", "commune_code",
               "acknowledged_at", "closed_at", "ack_due_at", "settle_due_at"]


def upgrade() -> None:
    op.create_index("ix_tips_commune_created", "tips", ["commune_code", "created_at"])
    op.create_index("ix_tips_province_kpi", "tips", KPI_COLUMNS)
    op.drop_index("ix_tips_commune_code", table_name="tips")
    op.drop_index("ix_tips_province_code", table_name="tips")
    op.create_index(
        "ix_tips_open_area", "tips",
        ["province_code", "status", "commune_code", "ack_due_at", "settle_due_at"],
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_tips_open_area", table_name="tips")
    op.create_index("ix_tips_province_code", "tips", ["province_code"])
    op.create_index("ix_tips_commune_code", "tips", ["commune_code"])
    op.drop_index("ix_tips_province_kpi", table_name="tips")
    op.drop_index("ix_tips_commune_created", table_name="tips")
