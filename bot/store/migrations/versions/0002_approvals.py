"""approvals: requests.expires_at, approval_votes

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("requests", _ts("expires_at", nullable=True))
    op.create_index("ix_requests_status_expires_at", "requests", ["status", "expires_at"])

    op.create_table(
        "approval_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("voter", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        _ts("at"),
        _ts("withdrawn_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_approval_votes_request_id_requests"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval_votes"),
        sa.UniqueConstraint("request_id", "voter", name="uq_approval_votes_request_id_voter"),
    )
    op.create_index("ix_approval_votes_request_id", "approval_votes", ["request_id"])


def downgrade() -> None:
    op.drop_table("approval_votes")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): no table rebuild, which would
    # trip over the foreign keys pointing at requests. The index must go first.
    op.drop_index("ix_requests_status_expires_at", table_name="requests")
    op.drop_column("requests", "expires_at")
