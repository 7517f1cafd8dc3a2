"""The 100% target: complex cases and extensions on tips (BLTTHS 2015 Art. 147), the card's
overdue mark, and the scheduled rounds that were sent (reminders, escalations, summaries),
one row per (job, scope, round) so a round is never sent twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("complex_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("complex_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("extended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("extension_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("extension_reason", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("overdue_marked_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("round_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("job", "scope", "round_key", name="uq_job_runs_round"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    with op.batch_alter_table("tips") as batch:
        for column in ("overdue_marked_at", "extension_reason", "extension_days", "extended_at",
                       "complex_reason", "complex_at"):
            batch.drop_column(column)
