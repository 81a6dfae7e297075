"""Store fixtures: every test here runs on SQLite, and on PostgreSQL when configured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text

from bot.store.db import upgrade
from bot.store.repository import Store
from tests.db import DATABASE_PARAMS, isolated_database

T = TypeVar("T")


class FakeClock:
    """A controllable clock: starts at a fixed instant, moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = timedelta(seconds=1)) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture(params=DATABASE_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty (unmigrated) database: a SQLite file, or a fresh PostgreSQL schema."""
    with isolated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(migrated_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    store = Store.from_url(migrated_url, clock=clock)
    try:
        yield store
    finally:
        await store.close()


async def waiting_on_a_lock(store: Store, work: Awaitable[T], *, query: str) -> asyncio.Task[T]:
    """Start ``work`` and return (its task) once PostgreSQL shows a statement like ``query``
    (a ``LIKE`` pattern) waiting on a lock: another connection holds what it needs. Fails
    when ``work`` ends without waiting, or nothing waits within 10 s."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    probe = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :q"
    )
    for _ in range(500):
        async with store.engine.connect() as conn:
            if (await conn.execute(probe, {"q": query})).scalar_one():
                break
        assert not task.done(), f"{query!r} did not wait for the lock"
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"nothing like {query!r} waited on a lock")
    assert not task.done()
    return task
