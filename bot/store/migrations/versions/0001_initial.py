"""initial schema: requests, audit_events, processed_slack_events, pauses

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CARD_SET = sa.text("card_ts IS NOT NULL")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("verb", sa.String(16), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target_key", sa.String(255), nullable=False),
        sa.Column("target_name", sa.String(255), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("all_versions", sa.Boolean(), nullable=False),
        sa.Column("pause_options", sa.JSON(), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("card_ts", sa.String(64), nullable=True),
        sa.Column("state_before", sa.Text(), nullable=True),
        sa.Column("state_after", sa.Text(), nullable=True),
        sa.Column("provider_request_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("pause_ends_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_status", "requests", ["status"])
    op.create_index(
        "uq_requests_card",
        "requests",
        ["channel", "card_ts"],
        unique=True,
        sqlite_where=_CARD_SET,
        postgresql_where=_CARD_SET,
    )
    op.create_index(
        "ix_requests_history", "requests", ["environment", "kind", "target_key", "created_at"]
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True),
        _ts("at"),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("target_key", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_audit_events_request_id_requests"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_request_id", "audit_events", ["request_id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index(
        "ix_audit_events_history", "audit_events", ["environment", "kind", "target_key", "at"]
    )

    op.create_table(
        "processed_slack_events",
        sa.Column("key", sa.String(255), nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("key", name="pk_processed_slack_events"),
    )
    op.create_index(
        "ix_processed_slack_events_received_at", "processed_slack_events", ["received_at"]
    )

    op.create_table(
        "pauses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("all_versions", sa.Boolean(), nullable=False),
        sa.Column("paused_by", sa.String(64), nullable=False),
        _ts("started_at"),
        _ts("ends_at", nullable=True),
        sa.Column("then_action", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("card_ts", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("closed_at", nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_pauses_request_id_requests"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pauses"),
        sa.UniqueConstraint("request_id", name="uq_pauses_request_id"),
    )
    op.create_index("ix_pauses_ends_at", "pauses", ["ends_at"])
    op.create_index("ix_pauses_active", "pauses", ["active"])
    op.create_index("ix_pauses_active_ends_at", "pauses", ["active", "ends_at"])
    op.create_index("ix_pauses_target", "pauses", ["environment", "kind", "key", "active"])


def downgrade() -> None:
    op.drop_table("pauses")
    op.drop_table("processed_slack_events")
    op.drop_table("audit_events")
    op.drop_table("requests")
