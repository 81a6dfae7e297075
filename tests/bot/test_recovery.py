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
from bot.domain.approvals import Decision
from bot.domain.commands import PauseCommand, TargetRef
from bot.domain.models import PauseOptions, TargetKind
from bot.domain.requests import ExecutionPhase, OperationRequest, RequestStatus, Via
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


# -- votes recorded by a process that died before acting on them ----------------------------


async def record_vote(url: str, request_id: str, decision: Decision, *, ago: timedelta) -> None:
    """A vote as a process that died right after recording it left it, ``ago``."""
    at = datetime.now(UTC) - ago
    store = Store.from_url(url, clock=lambda: at)
    try:
        await store.cast_vote(request_id, voter="U0ADMIN", decision=decision, via=Via.BUTTON)
    finally:
        await store.close()


async def ask_prod(runtime: Runtime) -> OperationRequest:
    command = PauseCommand(
        target=TargetRef(environment="prod", kind=TargetKind.AUTOMATION, name="daily-welcome-send"),
        options=PauseOptions(),
    )
    request = await runtime.requests.submit(
        command, requester="U0ALICE", via=Via.COMMAND, channel="C0OPS"
    )
    assert request.status is RequestStatus.AWAITING_APPROVAL
    return request


def schedules(sandbox: Sandbox) -> int:
    return sum(1 for c in list(sandbox.sfmc.calls) if c.soap_action == "Schedule")


async def test_recovery_carries_out_an_approval_a_dead_process_recorded_once(
    runtime: Runtime, sandbox: Sandbox, database_url: str
) -> None:
    request = await ask_prod(runtime)
    await record_vote(database_url, request.id, Decision.APPROVE, ago=timedelta(seconds=1))
    runtime.requests.lease = timedelta(minutes=1)
    assert await runtime.recovery.run() == []  # a fresh vote: its process may be acting on it
    assert schedules(sandbox) == 0

    runtime.requests.lease = LEASE  # the vote is older than that
    [done] = await runtime.recovery.run()
    assert done.status is RequestStatus.SUCCEEDED
    assert schedules(sandbox) == 1
    assert await runtime.recovery.run() == []
    assert schedules(sandbox) == 1
    events = await runtime.store.history(
        environment="prod", kind=TargetKind.AUTOMATION, target_key="daily-welcome-send"
    )
    actions = [e.action for e in events]
    assert actions.count("approved") == 1
    assert actions.count("verified") == 1


async def test_recovery_closes_a_request_a_dead_process_recorded_a_deny_for(
    runtime: Runtime, sandbox: Sandbox, database_url: str
) -> None:
    request = await ask_prod(runtime)
    await record_vote(database_url, request.id, Decision.DENY, ago=timedelta(minutes=2))
    [denied] = await runtime.recovery.run()
    assert denied.status is RequestStatus.DENIED
    assert schedules(sandbox) == 0
    assert await runtime.recovery.run() == []
