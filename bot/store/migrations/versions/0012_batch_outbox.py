"""batch cards through the outbox: outbox rows may name a batch; batches found by card

A batch's card post, its edits and its thread notes are outbox rows of the batch's stream
(``batch_id`` says which batch, so the card is drawn from the store when it is sent).
Reactions on a card that is no request's look the batch up by (channel, card_ts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(length=32), nullable=True))
    op.create_index("ix_batches_channel_card_ts", "batches", ["channel", "card_ts"])


def downgrade() -> None:
    op.drop_index("ix_batches_channel_card_ts", table_name="batches")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("batch_id")
