"""batches: bulk requests and the frozen set of targets each one acts on

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("verb", sa.String(16), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("glob", sa.String(255), nullable=False),
        sa.Column("pause_options", sa.JSON(), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("card_ts", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("expires_at", nullable=True),
        _ts("ends_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("source_batch_id", sa.String(32), nullable=True),
        sa.Column("votes", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        _ts("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
    )
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("state_before", sa.Text(), nullable=False),
        sa.Column("act", sa.Boolean(), nullable=False),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("state_after", sa.Text(), nullable=True),
        sa.Column("holds_pause", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_targets_batch_id_batches"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_batch_targets"),
        sa.UniqueConstraint("batch_id", "kind", "key", name="uq_batch_targets_batch_id_kind_key"),
    )
    op.create_index("ix_batch_targets_batch_id", "batch_targets", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_targets_batch_id", table_name="batch_targets")
    op.drop_table("batch_targets")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_table("batches")
