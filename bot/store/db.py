"""Database URLs, engines and migrations.

``database_url`` (DESIGN §5) is either SQLite (``sqlite:///automation-bot.db``, or
``sqlite://`` for a throw-away in-memory database) or PostgreSQL
(``postgresql+psycopg://user@host/db``). The store talks to it asynchronously (aiosqlite,
psycopg 3); migrations run synchronously (pysqlite, psycopg 3) through Alembic, whose
scripts ship inside this package, so no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: How long an SQLite writer waits for another one before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 15_000

_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}


def _parse(database_url: str | URL) -> URL:
    url = make_url(database_url)
    if url.drivername in _SQLITE_DRIVERS or url.drivername in _POSTGRES_DRIVERS:
        return url
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}: "
        "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
    )


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def is_sqlite(database_url: str | URL) -> bool:
    return _parse(database_url).drivername in _SQLITE_DRIVERS


def is_memory(database_url: str | URL) -> bool:
    """True for an in-memory SQLite database (``sqlite://`` or ``sqlite:///:memory:``)."""
    url = _parse(database_url)
    return url.drivername in _SQLITE_DRIVERS and url.database in (None, "", ":memory:")


def sync_url(database_url: str | URL) -> str:
    """The URL for synchronous use (migrations): pysqlite or psycopg 3."""
    url = _parse(database_url)
    driver = "sqlite" if url.drivername in _SQLITE_DRIVERS else "postgresql+psycopg"
    return _render(url.set(drivername=driver))


def async_url(database_url: str | URL) -> str:
    """The URL for the store: aiosqlite or psycopg 3 (which is async too)."""
    url = _parse(database_url)
    driver = "sqlite+aiosqlite" if url.drivername in _SQLITE_DRIVERS else "postgresql+psycopg"
    return _render(url.set(drivername=driver))


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    """WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction.

    The driver's own implicit ``BEGIN`` is switched off so that each transaction takes the
    write lock at its start: a read-then-write transaction can then never fail half-way
    with "database is locked"; concurrent writers (other processes too) queue up within the
    busy timeout instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine_for(database_url: str | URL, **kwargs: Any) -> AsyncEngine:
    """The store's async engine. An in-memory SQLite database is one shared connection."""
    url = async_url(database_url)
    if is_sqlite(url):
        memory = is_memory(url)
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine.sync_engine, memory=memory)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def create_sync_engine_for(database_url: str | URL, **kwargs: Any) -> Engine:
    """A synchronous engine (migrations, admin commands)."""
    url = sync_url(database_url)
    if is_sqlite(url):
        memory = is_memory(url)
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, memory=memory)
        return engine
    return create_engine(url, **kwargs)


# -- migrations -------------------------------------------------------------------------


def alembic_config(database_url: str | URL | None = None) -> Config:
    """An Alembic configuration built in code: the packaged scripts, this database.

    The URL travels in ``config.attributes`` (not the ini options, whose ``%``
    interpolation would mangle passwords). ``migrations/env.py`` reads it, or uses a
    ``connection`` put in ``config.attributes`` by :func:`upgrade_connection`.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = sync_url(database_url)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the latest by default). Idempotent."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | URL, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (everything by default)."""
    command.downgrade(alembic_config(database_url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate through an open synchronous connection (e.g. ``AsyncConnection.run_sync``).

    Used for an in-memory database, which exists only inside its own connection.
    """
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind an async engine, through one of its connections."""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_connection, revision)


def current_revision(database_url: str | URL) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    engine = create_sync_engine_for(database_url)
    try:
        with engine.connect() as connection:
            return connection_revision(connection)
    finally:
        engine.dispose()


def connection_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(database_url: str | URL) -> bool:
    """True when the database is migrated to the latest revision."""
    return current_revision(database_url) == head_revision()
