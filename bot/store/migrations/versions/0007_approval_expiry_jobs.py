"""approval expiries are scheduler jobs: one for every request still awaiting approval

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

requests = sa.table(
    "requests",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)
jobs = sa.table(
    "jobs",
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("payload", sa.JSON),
    sa.column("attempts", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # One INSERT ... SELECT (it renders in offline --sql mode too); the payload is built
    # by the database's own JSON function.
    dialect = op.get_context().dialect.name
    build = sa.func.json_build_object if dialect == "postgresql" else sa.func.json_object
    key = sa.literal("approval_expiry:") + requests.c.id
    existing = sa.select(jobs.c.key).where(jobs.c.key == key)
    pending = sa.select(
        sa.literal("approval_expiry"),
        key,
        requests.c.expires_at,
        sa.type_coerce(build(sa.literal("request_id"), requests.c.id), sa.JSON),
        sa.literal(0),
        sa.func.current_timestamp(),
    ).where(
        requests.c.status == "awaiting_approval",
        requests.c.expires_at.is_not(None),
        ~sa.exists(existing),
    )
    op.execute(
        jobs.insert().from_select(
            ["kind", "key", "due_at", "payload", "attempts", "created_at"], pending
        )
    )


def downgrade() -> None:
    op.execute(jobs.delete().where(jobs.c.kind == "approval_expiry"))
