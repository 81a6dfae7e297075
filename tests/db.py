"""Database helpers for tests: SQLite always, PostgreSQL when one is configured.

The suite runs on a fresh SQLite file per test. When ``AUTOMATION_BOT_TEST_DATABASE_URL``
is set (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), tests parametrized
with :data:`DATABASE_PARAMS` also run against it, each in its own schema that is dropped
afterwards, so concurrent runs never collide. Use::

    @pytest.fixture(params=DATABASE_PARAMS)
    def database_url(request, tmp_path):
        with isolated_database(request.param, tmp_path) as url:
            yield url
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.store.db import is_memory, is_sqlite, sync_url, upgrade
from bot.store.repository import Store, utcnow

TEST_DATABASE_URL_ENV = "AUTOMATION_BOT_TEST_DATABASE_URL"

_NO_POSTGRES = (
    f"PostgreSQL tests need {TEST_DATABASE_URL_ENV} "
    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); scripts/test sets it "
    "when a server is reachable"
)


def postgres_test_url() -> str | None:
    """The PostgreSQL server to test against, if one is configured."""
    return os.environ.get(TEST_DATABASE_URL_ENV) or None


def test_database_urls(tmp_path: Path) -> dict[str, str | None]:
    """Base URLs by database kind: a SQLite file in ``tmp_path``; PostgreSQL or None."""
    return {
        "sqlite": f"sqlite:///{tmp_path / 'automation-bot.db'}",
        "postgresql": postgres_test_url(),
    }


test_database_urls.__test__ = False  # type: ignore[attr-defined]  # not a test itself

#: pytest params over the databases; the PostgreSQL one is marked ``postgres`` and skipped
#: (with the reason) when no server is configured.
DATABASE_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(postgres_test_url() is None, reason=_NO_POSTGRES),
        ],
    ),
]


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A new, empty schema on the server at ``url``; yields a URL whose connections use it
    (``search_path``); drops the schema and everything in it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield scoped.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def isolated_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of ``kind`` ("sqlite" or "postgresql") for one test: its URL."""
    url = test_database_urls(tmp_path)[kind]
    if url is None:
        pytest.skip(_NO_POSTGRES)
    if is_sqlite(url):
        yield url
        return
    with postgres_schema(url) as scoped:
        yield scoped


@contextlib.contextmanager
def isolated_url(url: str) -> Iterator[str]:
    """``url`` itself for SQLite (give a fresh file), a fresh schema on it for PostgreSQL."""
    if is_sqlite(url):
        yield url
        return
    with postgres_schema(url) as scoped:
        yield scoped


@contextlib.asynccontextmanager
async def fresh_store(url: str, *, clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Store]:
    """A :class:`Store` on a freshly migrated database at ``url`` (a new PostgreSQL schema,
    dropped afterwards; for SQLite pass a new file or ``sqlite://``)."""
    with isolated_url(url) as scoped:
        if not is_memory(scoped):
            upgrade(scoped)
        store = Store.from_url(scoped, clock=clock)
        try:
            yield store
        finally:
            await store.close()


def transition_worker(url: str, request_id: str, barrier: Any) -> bool:
    """Run in another process: wait for the others, then try RECEIVED -> EXECUTING."""
    import asyncio

    from bot.domain.requests import RequestStatus

    async def go() -> bool:
        store = Store.from_url(url)
        try:
            await store.get_request(request_id)  # connect before the race starts
            await asyncio.to_thread(barrier.wait)
            won = await store.transition(request_id, to=RequestStatus.EXECUTING)
            return won is not None
        finally:
            await store.close()

    return asyncio.run(go())


def claim_worker(url: str, key: str, barrier: Any) -> bool:
    """Run in another process: wait for the others, then claim ``key``."""
    import asyncio

    async def go() -> bool:
        store = Store.from_url(url)
        try:
            await store.get_request("warm-up")
            await asyncio.to_thread(barrier.wait)
            return await store.claim_event(key)
        finally:
            await store.close()

    return asyncio.run(go())
