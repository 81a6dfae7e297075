"""one request at a time per target: a partial unique index on in-flight requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_FLIGHT = sa.text("status IN ('received', 'executing')")


def upgrade() -> None:
    op.create_index(
        "uq_requests_in_flight_target",
        "requests",
        ["environment", "kind", "target_key"],
        unique=True,
        sqlite_where=_IN_FLIGHT,
        postgresql_where=_IN_FLIGHT,
    )


def downgrade() -> None:
    op.drop_index("uq_requests_in_flight_target", table_name="requests")
