"""Execution leases in one process: renewed while the provider call is slow, so no other
process may take the request over however long it takes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import config_from_mapping
from bot.console import ConsoleNotifier
from bot.domain.commands import PauseCommand, TargetRef
from bot.domain.models import PauseOptions, TargetKind
from bot.domain.requests import ExecutionPhase, RequestStatus, Via
from bot.runtime import Runtime, build_runtime
from bot.store import Store, upgrade
from tests.conftest import Sandbox
from tests.db import DATABASE_PARAMS, isolated_database

LEASE = timedelta(seconds=0.3)


@pytest.fixture(params=DATABASE_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture
async def runtime(sandbox: Sandbox, database_url: str) -> AsyncIterator[Runtime]:
    mapping = dict(sandbox.mapping)
    mapping["database_url"] = database_url
    config = config_from_mapping(mapping)
    built = build_runtime(
        config, store=Store.from_url(database_url), notifier=ConsoleNotifier(lambda _: None)
    )
    built.requests.lease = LEASE  # renewed every 0.1 s
    try:
        yield built
    finally:
        await built.aclose()


async def test_a_slow_call_keeps_its_lease_and_is_never_taken_over(
    runtime: Runtime, sandbox: Sandbox
) -> None:
    sandbox.sfmc.hold_answers(soap_action="Schedule")
    command = PauseCommand(
        target=TargetRef(kind=TargetKind.AUTOMATION, name="hourly-lead-sync"),
        options=PauseOptions(),
    )
    running = asyncio.create_task(
        runtime.requests.submit(command, requester="U0ALICE", via=Via.COMMAND, channel="C0OPS")
    )
    try:
        store = runtime.store
        deadline = asyncio.get_running_loop().time() + 15
        while not any(c.soap_action == "Schedule" for c in list(sandbox.sfmc.calls)):
            assert asyncio.get_running_loop().time() < deadline, "no pause call"
            await asyncio.sleep(0.02)
        [request] = await store.unfinished_requests()
        assert request.execution_phase is ExecutionPhase.MAYBE_SENT
        first_lease = request.lease_until
        # five leases long: renewed all along, so nobody may take it over
        for _ in range(15):
            await asyncio.sleep(LEASE.total_seconds() / 3)
            now = datetime.now(UTC)
            assert await store.take_over(request.id, owner="other", now=now, until=now) is None
        current = await store.get_request(request.id)
        assert current is not None
        assert current.owner == runtime.requests.owner
        assert current.lease_until is not None
        assert first_lease is not None
        assert current.lease_until > first_lease
    finally:
        sandbox.sfmc.release_answers()
    done = await asyncio.wait_for(running, 30)
    assert done.status is RequestStatus.SUCCEEDED
