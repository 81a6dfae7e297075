"""one pending approval per exact request: a partial unique index on awaiting requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Two requests awaiting approval for the same target and the same parameters (the same
fingerprint) could both be approved and carried out. Where such duplicates exist already,
the oldest stays pending and the later ones are closed as expired (with the reason in
``error``, their expiry jobs dropped) before the index is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'awaiting_approval'")

requests = sa.table(
    "requests",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("environment", sa.String),
    sa.column("kind", sa.String),
    sa.column("target_key", sa.String),
    sa.column("fingerprint", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("error", sa.Text),
)
jobs = sa.table("jobs", sa.column("key", sa.String))


def upgrade() -> None:
    first = requests.alias("first")
    earlier = sa.exists(
        sa.select(first.c.id).where(
            first.c.status == "awaiting_approval",
            first.c.environment == requests.c.environment,
            first.c.kind == requests.c.kind,
            first.c.target_key == requests.c.target_key,
            first.c.fingerprint == requests.c.fingerprint,
            sa.or_(
                first.c.created_at < requests.c.created_at,
                sa.and_(first.c.created_at == requests.c.created_at, first.c.id < requests.c.id),
            ),
        )
    )
    duplicate = sa.and_(requests.c.status == "awaiting_approval", earlier)
    op.execute(
        jobs.delete().where(
            jobs.c.key.in_(
                sa.select(sa.literal("approval_expiry:") + requests.c.id).where(duplicate)
            )
        )
    )
    op.execute(
        requests.update()
        .where(duplicate)
        .values(
            status="expired",
            updated_at=sa.func.current_timestamp(),
            error="Closed as a duplicate of an earlier request awaiting the same approval.",
        )
    )
    op.create_index(
        "uq_requests_pending_approval",
        "requests",
        ["environment", "kind", "target_key", "fingerprint"],
        unique=True,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("uq_requests_pending_approval", table_name="requests")
