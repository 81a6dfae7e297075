"""pause outcomes on requests; schedule snapshots in the database

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("pause_outcome", sa.JSON(), nullable=True))
    op.create_table(
        "schedule_snapshots",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "object_id", name="pk_schedule_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("schedule_snapshots")
    op.drop_column("requests", "pause_outcome")
