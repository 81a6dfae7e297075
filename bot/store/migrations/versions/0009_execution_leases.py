"""execution leases: requests.owner, requests.lease_until, requests.execution_phase

A request being carried out names the process that runs it (``owner``) and how long that
process holds it (``lease_until``, renewed while it runs): recovery takes over only a
request whose lease has run out. ``execution_phase`` says whether its provider call was not
sent yet (``not_sent``: recovery sends it, once) or may have been (``maybe_sent``: recovery
reads the target back and says what it sees). Requests executing before this migration have
neither: recovery treats them as "may have been sent".

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("owner", sa.String(length=255), nullable=True))
    op.add_column("requests", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("requests", sa.Column("execution_phase", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("requests", "execution_phase")
    op.drop_column("requests", "lease_until")
    op.drop_column("requests", "owner")
