"""Alembic environment: runs the packaged migrations against ``config.attributes``.

Either ``connection`` (an open synchronous connection, e.g. from ``run_sync``) or
``database_url`` (a synchronous URL) must be set; :mod:`bot.store.db` does it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.store.db import create_sync_engine_for
from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url")
    if url is None:
        raise RuntimeError("no database_url in the Alembic config attributes")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url")
    if url is None:
        raise RuntimeError("no database_url or connection in the Alembic config attributes")
    engine = create_sync_engine_for(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
