"""Tips: when the province was last told the tip is overdue (escalations go by the tip's
state, not by the round its deadline fell in: a tip overdue after a transfer, or whose
deadline passed while the bot was down for longer than the rounds' grace, is escalated
at the next round).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    # tips already marked overdue were escalated by the rounds of the earlier version
    op.execute("UPDATE tips SET escalated_at = overdue_marked_at")


def downgrade() -> None:
    with op.batch_alter_table("tips") as batch:
        batch.drop_column("escalated_at")
