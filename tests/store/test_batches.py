"""The store of bulk requests: a batch and its frozen set, conditional transitions, votes
that do not overwrite each other, holds, and a timed end that runs once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.domain.approvals import Decision, Vote
from bot.domain.bulk import Batch, BatchStatus, BatchTarget, BulkPattern, TargetStatus
from bot.domain.errors import TargetBusy
from bot.domain.jobs import JobKind, job_key
from bot.domain.models import PauseOptions, TargetKind, Verb
from bot.domain.requests import RequestStatus, Via
from bot.store import Store
from bot.store.batches import BatchStore
from bot.store.repository import target_lock_key
from tests.store.conftest import FakeClock, waiting_on_a_lock
from tests.store.test_repository import new_request, spec

A, J = TargetKind.AUTOMATION, TargetKind.JOURNEY


def _targets() -> list[BatchTarget]:
    return [
        BatchTarget(position=0, kind=A, key="bf-1", name="BF 1", target_id="1",
                    state_before="active", act=True),
        BatchTarget(position=1, kind=J, key="bf-2", name="BF 2", target_id="2", version=3,
                    state_before="paused", act=False, skip_reason="already paused",
                    status=TargetStatus.SKIPPED),
    ]  # fmt: skip


async def _create(batches: BatchStore, status: BatchStatus = BatchStatus.PREVIEWED) -> Batch:
    return await batches.create(
        verb=Verb.PAUSE,
        pattern=BulkPattern(environment="prod", kind=None, glob="bf-*"),
        options=PauseOptions(duration=timedelta(days=2)),
        digest="d" * 64,
        status=status,
        requested_by="U0ALICE",
        via=Via.CLI,
        channel="C0OPS",
        targets=_targets(),
    )


async def test_a_batch_keeps_its_frozen_set(store: Store) -> None:
    batches = BatchStore(store)
    batch = await _create(batches)
    again = await batches.get(batch.id)
    assert again == batch
    assert [t.key for t in batch.targets] == ["bf-1", "bf-2"]
    assert batch.targets[1].version == 3
    assert batch.targets[1].skip_reason == "already paused"
    assert batch.options == PauseOptions(duration=timedelta(days=2))
    assert batch.pattern.label() == "prod/*:bf-*"
    assert await batches.get("nosuchbatch") is None


async def test_transitions_are_conditional(store: Store) -> None:
    batches = BatchStore(store)
    batch = await _create(batches)
    assert await batches.transition(batch.id, to=BatchStatus.DONE) is None  # not from previewed
    moved = await asyncio.gather(
        batches.transition(batch.id, to=BatchStatus.EXECUTING),
        batches.transition(batch.id, to=BatchStatus.EXECUTING),
    )
    assert sum(m is not None for m in moved) == 1  # two confirmations: one execution
    done = await batches.transition(batch.id, to=BatchStatus.DONE)
    assert done is not None
    assert done.status is BatchStatus.DONE


async def test_a_vote_on_a_stale_copy_is_not_lost(store: Store, clock: FakeClock) -> None:
    batches = BatchStore(store)
    batch = await _create(batches, BatchStatus.PREVIEWED)
    waiting = await batches.transition(batch.id, to=BatchStatus.AWAITING_APPROVAL)
    assert waiting is not None
    clock.advance()
    first = Vote(voter="U0ADMIN", decision=Decision.APPROVE, via=Via.BUTTON, at=clock())
    voted = await batches.add_vote(waiting, first)
    assert voted is not None
    second = Vote(voter="U0LEAD", decision=Decision.APPROVE, via=Via.BUTTON, at=clock())
    assert await batches.add_vote(waiting, second) is None  # read before the first vote
    both = await batches.add_vote(voted, second)
    assert both is not None
    assert [v.voter for v in both.votes] == ["U0ADMIN", "U0LEAD"]


async def test_holds_and_a_timed_end_that_runs_once(store: Store, clock: FakeClock) -> None:
    batches = BatchStore(store)
    older, newer = await _create(batches), await _create(batches)
    await batches.settle_target(older.id, A, "bf-1", status=TargetStatus.DONE, holds_pause=True)
    await batches.settle_target(newer.id, A, "bf-1", status=TargetStatus.DONE, holds_pause=True)
    await batches.release_holds("prod", [(A, "bf-1")], but=newer.id)
    held_old, held_new = await batches.get(older.id), await batches.get(newer.id)
    assert held_old is not None
    assert held_new is not None
    assert not held_old.targets[0].holds_pause
    assert held_new.targets[0].holds_pause
    assert held_new.targets[0].status is TargetStatus.DONE

    executing = await batches.transition(
        newer.id, to=BatchStatus.EXECUTING, ends_at=clock() + timedelta(days=2)
    )
    assert executing is not None
    await batches.schedule_end(executing)
    job = await store.job(job_key(JobKind.BATCH_END, newer.id))
    assert job is not None
    assert job.due_at == executing.ends_at
    assert await batches.mark_ended(newer.id)
    assert not await batches.mark_ended(newer.id)


async def test_a_running_batch_and_a_single_request_never_share_a_target(store: Store) -> None:
    batches = BatchStore(store)
    batch = await _create(batches)
    waiting = await store.create_request(  # approval asked before the batch ran: allowed
        spec=spec("bf-1", kind=A),
        requested_by="U1",
        via=Via.COMMAND,
        reason=None,
        channel="C1",
        status=RequestStatus.AWAITING_APPROVAL,
    )
    assert await batches.transition(batch.id, to=BatchStatus.EXECUTING) is not None
    # bf-1 is still to be acted on by the batch: a request in flight on it is refused
    with pytest.raises(TargetBusy, match=f"Batch {batch.id} is changing"):
        await new_request(store, "bf-1", kind=A)
    approved = await store.transition(waiting.id, to=RequestStatus.APPROVED)
    assert approved is not None
    with pytest.raises(TargetBusy, match=batch.id):
        await store.transition(waiting.id, to=RequestStatus.EXECUTING)
    # bf-2 the batch skips; another target is free
    await new_request(store, "bf-2", kind=J)
    await new_request(store, "other", kind=A)
    # once the batch has acted on bf-1, single requests may change it again
    await batches.settle_target(batch.id, A, "bf-1", status=TargetStatus.DONE)
    await store.transition(waiting.id, to=RequestStatus.EXECUTING)
    assert (await store.request_changing("prod", A, "bf-1")) is not None


async def test_targets_a_bulk_pause_holds_are_among_the_active_pauses(
    store: Store, clock: FakeClock
) -> None:
    batches = BatchStore(store)
    batch = await _create(batches)
    assert await store.active_pauses() == []
    running = await batches.transition(
        batch.id, to=BatchStatus.EXECUTING, ends_at=clock() + timedelta(days=2)
    )
    assert running is not None
    await batches.settle_target(batch.id, A, "bf-1", status=TargetStatus.DONE, holds_pause=True)
    [held] = await store.active_pauses()
    assert (held.batch_id, held.kind, held.key, held.paused_by) == (batch.id, A, "bf-1", "U0ALICE")
    assert held.ends_at == clock() + timedelta(days=2)
    assert held.request_id == ""
    assert await store.active_pauses(environment="staging") == []
    await batches.drop_holds(batch.id, [(A, "bf-1")])
    assert await store.active_pauses() == []


async def test_skip_reasons_are_stored_as_codes_and_old_sentences_still_read(
    store: Store,
) -> None:
    from sqlalchemy import select

    from bot.domain.bulk import Skip, SkipCode
    from bot.render_bulk import skip_text
    from bot.store.models import BatchTargetRow

    batches = BatchStore(store)
    too_long = Skip(
        code=SkipCode.PAUSE_TOO_LONG, product="Journey Builder", noun="journey", days=14
    )
    targets = [t.model_copy(update={"skip_reason": too_long}) for t in _targets()]
    batch = await batches.create(
        verb=Verb.PAUSE,
        pattern=BulkPattern(environment="prod", kind=None, glob="bf-*"),
        options=None,
        digest="d" * 64,
        status=BatchStatus.PREVIEWED,
        requested_by="U0ALICE",
        via=Via.CLI,
        channel=None,
        targets=targets,
    )
    assert batch.targets[1].skip_reason == too_long
    busy = Skip(code=SkipCode.BUSY, request_id="req1")
    await batches.settle_target(batch.id, A, "bf-1", status=TargetStatus.SKIPPED, skip_reason=busy)
    again = await batches.get(batch.id)
    assert again is not None
    assert again.targets[0].skip_reason == busy
    async with store.transaction() as session:
        stored = (await session.execute(select(BatchTargetRow.skip_reason))).scalars().all()
    assert sorted(json.loads(s or "{}")["code"] for s in stored) == ["busy", "pause_too_long"]
    assert skip_text(again.targets[1].skip_reason) == (
        "Journey Builder pauses a journey for at most 14d"
    )
    old = await _create(batches)  # a sentence, as batches before codes stored it
    assert old.targets[1].skip_reason == "already paused"
    assert skip_text(old.targets[1].skip_reason) == "already paused"


async def test_the_expiry_queries_share_one_shape(store: Store, clock: FakeClock) -> None:
    batches = BatchStore(store)
    preview = await _create(batches)
    waiting = await _create(batches)
    await batches.transition(
        waiting.id, to=BatchStatus.AWAITING_APPROVAL, expires_at=clock() + timedelta(minutes=5)
    )
    now = clock()
    assert await batches.stale_previews(now) == []
    assert await batches.stale_previews(now + timedelta(seconds=1)) == [preview.id]
    assert await batches.overdue_approvals(now) == []
    assert await batches.overdue_approvals(now + timedelta(minutes=6)) == [waiting.id]
    assert await batches.stalled(now + timedelta(days=1)) == []


async def test_on_postgresql_a_batch_check_and_a_request_take_turns_on_one_target(
    store: Store,
) -> None:
    """READ COMMITTED would let a request's "no batch holds it" and a batch's "no request
    changes it" both pass at once: each takes the target's advisory lock first, so one
    waits for the other (held here by another connection)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one transaction at a time (BEGIN IMMEDIATE)")
    key = f"bf-{uuid.uuid4().hex[:8]}"  # advisory locks span schemas: a key of its own
    lock = target_lock_key("prod", A.value, key)

    async def create() -> object:
        return await new_request(store, key, kind=A)

    async def check() -> object:
        return await store.request_changing("prod", A, key)

    works: list[Callable[[], Awaitable[object]]] = [create, check]
    for work in works:
        async with store.engine.connect() as holder:
            await holder.execute(
                text("SELECT pg_advisory_lock(hashtextextended(:t, 0))"), {"t": lock}
            )
            task = await waiting_on_a_lock(store, work(), query="%pg_advisory_xact_lock%")
            await holder.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:t, 0))"), {"t": lock}
            )
        await asyncio.wait_for(task, timeout=10)
