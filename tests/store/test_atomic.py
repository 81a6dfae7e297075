"""``Store.atomic``: several store calls as one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.requests import RequestStatus
from bot.store.repository import Store
from tests.store.test_repository import new_request


class Boom(Exception):
    pass


async def status_of(store: Store, request_id: str) -> RequestStatus:
    request = await store.get_request(request_id)
    assert request is not None
    return request.status


async def test_a_failure_in_the_block_keeps_none_of_its_changes(store: Store) -> None:
    request = await new_request(store)

    async def block() -> None:
        async with store.atomic():
            await store.transition(request.id, to=RequestStatus.AWAITING_APPROVAL)
            assert await store.claim_event("key-1")
            raise Boom

    with pytest.raises(Boom):
        await block()
    assert await status_of(store, request.id) is RequestStatus.RECEIVED
    assert await store.claim_event("key-1")  # the claim was rolled back too


async def test_the_block_commits_all_of_its_changes(store: Store) -> None:
    request = await new_request(store)
    async with store.atomic():
        await store.transition(request.id, to=RequestStatus.AWAITING_APPROVAL)
        assert await store.claim_event("key-2")
        assert not await store.claim_event("key-2")  # a conflict rolls back its own part
        # reads inside see the block's own writes
        assert await status_of(store, request.id) is RequestStatus.AWAITING_APPROVAL
    assert await status_of(store, request.id) is RequestStatus.AWAITING_APPROVAL
    assert not await store.claim_event("key-2")


async def test_nested_blocks_join_the_outer_one(store: Store) -> None:
    request = await new_request(store)

    async def block() -> None:
        async with store.atomic():
            async with store.atomic():
                await store.transition(request.id, to=RequestStatus.AWAITING_APPROVAL)
            raise Boom

    with pytest.raises(Boom):
        await block()
    assert await status_of(store, request.id) is RequestStatus.RECEIVED


async def test_a_task_started_elsewhere_commits_on_its_own(store: Store) -> None:
    request = await new_request(store)
    other = await new_request(store, key="other")
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def outside() -> None:
        started.set()
        await go_on.wait()
        await store.transition(other.id, to=RequestStatus.AWAITING_APPROVAL)

    task = asyncio.create_task(outside())  # its context holds no transaction
    await started.wait()

    async def block() -> None:
        async with store.atomic():
            await store.transition(request.id, to=RequestStatus.AWAITING_APPROVAL)
            raise Boom

    with pytest.raises(Boom):
        await block()
    go_on.set()
    await task
    assert await status_of(store, request.id) is RequestStatus.RECEIVED
    assert await status_of(store, other.id) is RequestStatus.AWAITING_APPROVAL


async def test_what_waits_for_the_commit_runs_after_it_and_not_after_a_rollback(
    store: Store,
) -> None:
    ran: list[str] = []

    async def hook(name: str) -> None:
        ran.append(name)

    await store.when_committed(lambda: hook("outside"))
    assert ran == ["outside"]

    async def committed() -> None:
        async with store.atomic():
            await store.when_committed(lambda: hook("committed"))
            assert ran == ["outside"]  # not before the commit

    async def rolled_back() -> None:
        async with store.atomic():
            await store.when_committed(lambda: hook("rolled back"))
            raise Boom

    await committed()
    with pytest.raises(Boom):
        await rolled_back()
    assert ran == ["outside", "committed"]
