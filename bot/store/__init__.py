"""Persistence: SQLAlchemy 2 models, the async :class:`Store`, Alembic migrations."""

from bot.store.db import (
    async_url,
    create_engine_for,
    current_revision,
    head_revision,
    is_up_to_date,
    sync_url,
    upgrade,
)
from bot.store.repository import Store

__all__ = [
    "Store",
    "async_url",
    "create_engine_for",
    "current_revision",
    "head_revision",
    "is_up_to_date",
    "sync_url",
    "upgrade",
]
