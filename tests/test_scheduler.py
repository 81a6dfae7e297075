"""The scheduler on SQLite and (when configured) PostgreSQL: bounded concurrency, retries,
catching up after downtime, several schedulers (and processes) on one database, and a
process killed while it holds a lease."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.domain.jobs import Job, JobKind, job_key
from bot.scheduler import Scheduler
from bot.store.db import upgrade
from bot.store.repository import Store
from tests.db import DATABASE_PARAMS, isolated_database
from tests.processes import reap, sigkill
from tests.store.conftest import FakeClock

K = JobKind
LEASE = timedelta(seconds=60)


@pytest.fixture(params=DATABASE_PARAMS)
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path) as url:
        upgrade(url)
        yield url


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


async def add(store: Store, ident: object, due_at: datetime, kind: JobKind = K.PAUSE_END) -> Job:
    return await store.schedule(
        kind=kind, key=job_key(kind, ident), due_at=due_at, payload={"id": str(ident)}
    )


async def until(condition: Callable[[], bool], *, what: str) -> None:
    """Poll ``condition`` (half a minute at most; the scheduler runs in this loop meanwhile)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def renewed_past(store: Store, key: str, moment: datetime) -> None:
    """Wait (half a minute at most) until the job's lease, renewed by its heartbeat, runs
    past ``moment``."""
    for _ in range(3000):
        job = await store.job(key)
        assert job is not None
        if job.locked_until is not None and job.locked_until > moment:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the lease of {key} was not renewed past {moment}")


async def drained(store: Store) -> None:
    """Wait (a minute at most) until no job is pending."""
    for _ in range(6000):
        if not await store.pending_jobs():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{await store.pending_jobs()} jobs still pending after a minute")


async def test_runs_due_jobs_with_bounded_concurrency(store: Store, clock: FakeClock) -> None:
    for i in range(30):
        await add(store, i, clock.now)
    active = 0
    peak = 0
    ran: list[str] = []

    async def handler(job: Job) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        ran.append(job.payload["id"])
        active -= 1

    scheduler = Scheduler(
        store, owner="a", handlers={K.PAUSE_END: handler}, clock=clock, concurrency=4
    )
    assert await scheduler.run_once() == 30
    assert peak == 4
    assert sorted(ran, key=int) == [str(i) for i in range(30)]
    assert await store.pending_jobs() == 0
    done = await store.job(job_key(K.PAUSE_END, 7))
    assert done is not None
    assert done.done
    assert done.owner == "a"
    assert done.attempts == 1
    assert await scheduler.run_once() == 0


async def test_runs_only_due_jobs_of_handled_kinds(store: Store, clock: FakeClock) -> None:
    await add(store, "now", clock.now)
    await add(store, "later", clock.now + timedelta(minutes=5))
    await add(store, "drift", clock.now, K.DRIFT_CHECK)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.key)

    scheduler = Scheduler(store, owner="a", handlers={K.PAUSE_END: handler}, clock=clock)
    assert await scheduler.run_once() == 1
    assert ran == ["pause_end:now"]
    drift = await store.job("drift_check:drift")
    assert drift is not None
    assert drift.attempts == 0
    clock.advance(timedelta(minutes=5))
    assert await scheduler.run_once() == 1
    assert ran == ["pause_end:now", "pause_end:later"]
    assert await Scheduler(store, owner="b", handlers={}, clock=clock).run_once() == 0


async def test_catches_up_after_downtime_oldest_first_with_lateness(
    store: Store, clock: FakeClock
) -> None:
    """Ends missed while the bot was down run at start, and know how late they are."""
    start = clock.now
    await add(store, "recent", start - timedelta(minutes=5))
    await add(store, "old", start - timedelta(hours=2))
    await add(store, "future", start + timedelta(hours=1))
    seen: list[tuple[str, timedelta]] = []

    async def handler(job: Job) -> None:
        seen.append((job.payload["id"], job.late_by(clock())))

    scheduler = Scheduler(
        store, owner="a", handlers={K.PAUSE_END: handler}, clock=clock, concurrency=1
    )
    assert await scheduler.run_once() == 2
    assert seen == [("old", timedelta(hours=2)), ("recent", timedelta(minutes=5))]
    clock.advance(timedelta(hours=1))
    await scheduler.run_once()
    assert seen[-1] == ("future", timedelta(0))


async def test_failures_retry_with_exponential_backoff_then_give_up(
    store: Store, clock: FakeClock
) -> None:
    job = await add(store, 1, clock.now)
    calls = 0

    async def broken(_job: Job) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError(f"provider down ({calls})")

    scheduler = Scheduler(
        store,
        owner="a",
        handlers={K.PAUSE_END: broken},
        clock=clock,
        max_attempts=3,
        retry_base=timedelta(seconds=10),
        retry_cap=timedelta(hours=1),
    )
    assert await scheduler.run_once() == 1
    first = await store.job(job.key)
    assert first is not None
    assert not first.done
    assert first.due_at == clock.now + timedelta(seconds=10)
    assert (first.attempts, first.owner, first.locked_until) == (1, None, None)
    assert first.last_error == "RuntimeError: provider down (1)"
    assert await scheduler.run_once() == 0  # not before the backoff
    clock.advance(timedelta(seconds=10))
    assert await scheduler.run_once() == 1
    second = await store.job(job.key)
    assert second is not None
    assert second.due_at == clock.now + timedelta(seconds=20)
    clock.advance(timedelta(seconds=20))
    assert await scheduler.run_once() == 1  # the third and last attempt
    final = await store.job(job.key)
    assert final is not None
    assert final.done
    assert final.attempts == 3
    assert final.last_error == "RuntimeError: provider down (3)"
    clock.advance(timedelta(days=1))
    assert await scheduler.run_once() == 0
    assert calls == 3


async def test_a_retry_that_succeeds_completes(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    calls = 0

    async def flaky(_job: Job) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError("slow provider")

    scheduler = Scheduler(
        store,
        owner="a",
        handlers={K.PAUSE_END: flaky},
        clock=clock,
        retry_base=timedelta(seconds=5),
    )
    await scheduler.run_once()
    clock.advance(timedelta(seconds=5))
    await scheduler.run_once()
    final = await store.job(job.key)
    assert final is not None
    assert final.done
    assert final.attempts == 2
    assert final.last_error == "TimeoutError: slow provider"  # kept: it happened


async def test_a_handler_may_re_arm_its_own_key(store: Store, clock: FakeClock) -> None:
    """E.g. a reminder that schedules the next reminder under the same key."""
    job = await add(store, 1, clock.now, K.PAUSE_REMINDER)

    async def remind(job: Job) -> None:
        await store.schedule(
            kind=job.kind, key=job.key, due_at=clock() + timedelta(hours=1), payload=job.payload
        )

    scheduler = Scheduler(store, owner="a", handlers={K.PAUSE_REMINDER: remind}, clock=clock)
    with capture_logs() as logs:
        assert await scheduler.run_once() == 1
    again = await store.job(job.key)
    assert again is not None
    assert not again.done
    assert again.due_at == clock.now + timedelta(hours=1)
    assert again.owner is None
    # re-arming is expected: logged as such, not as a lost lease
    [event] = [e for e in logs if e["key"] == job.key]
    assert event["event"] == "job done, scheduled again"
    assert event["log_level"] == "info"
    assert event["next_due_in_s"] == 3600


async def test_a_run_whose_lease_went_to_another_is_warned_about(
    store: Store, clock: FakeClock
) -> None:
    job = await add(store, 1, clock.now)
    other = Scheduler(store, owner="b", handlers={K.PAUSE_END: _noop}, clock=clock)

    async def stalled(_job: Job) -> None:
        clock.advance(2 * LEASE)  # stalled past its lease (the heartbeat has not run)
        assert await other.run_once() == 1  # so the other scheduler takes the job over

    scheduler = Scheduler(
        store, owner="a", handlers={K.PAUSE_END: stalled}, clock=clock, lease=LEASE
    )
    with capture_logs() as logs:
        assert await scheduler.run_once() == 1
    events = [(e["event"], e.get("attempt")) for e in logs if e.get("key") == job.key]
    assert ("job done", 2) in events  # the other scheduler's run counts
    assert ("job ran but its lease was lost (taken over, rescheduled or cancelled)", 1) in events
    final = await store.job(job.key)
    assert final is not None
    assert final.done
    assert final.owner == "b"


async def _noop(_job: Job) -> None:
    return None


async def test_leases_are_renewed_while_a_handler_runs(
    store: Store, migrated_url: str, clock: FakeClock
) -> None:
    await add(store, 1, clock.now)
    other_store = Store.from_url(migrated_url, clock=clock)
    stolen: list[str] = []

    async def thief(job: Job) -> None:
        stolen.append(job.key)

    other = Scheduler(other_store, owner="b", handlers={K.PAUSE_END: thief}, clock=clock)
    taken_over: list[int] = []

    async def slow(job: Job) -> None:
        clock.advance(2 * LEASE)  # far past the first lease...
        await renewed_past(store, job.key, clock.now)  # ...but the heartbeat renews it
        taken_over.append(await other.run_once())

    scheduler = Scheduler(
        store, owner="a", handlers={K.PAUSE_END: slow}, clock=clock, lease=LEASE, heartbeat=0.05
    )
    try:
        assert await scheduler.run_once() == 1
    finally:
        await other_store.close()
    assert taken_over == [0]
    assert stolen == []
    assert await store.pending_jobs() == 0


async def test_run_forever_until_stopped(store: Store, clock: FakeClock) -> None:
    for i in range(12):
        await add(store, i, clock.now - timedelta(seconds=i))
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.key)

    scheduler = Scheduler(
        store, owner="a", handlers={K.PAUSE_END: handler}, clock=clock, batch=5, idle_sleep=0.01
    )
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop))
    await drained(store)
    await add(store, "new", clock.now)  # picked up on a later pass
    await drained(store)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(ran) == 13
    assert len(set(ran)) == 13


async def test_two_schedulers_handle_each_job_exactly_once(store: Store, migrated_url: str) -> None:
    """Two replicas (separate engines, real clock) on one database: 100 due ends, each
    handled once."""
    now = store.now()
    for i in range(100):
        await add(store, i, now - timedelta(seconds=i % 13))
    handled: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    stores = [Store.from_url(migrated_url) for _ in range(2)]

    def handler_for(owner: str) -> Any:
        async def handler(job: Job) -> None:
            handled[job.key] += 1
            by_owner[owner] += 1
            await asyncio.sleep(0.002)

        return handler

    schedulers = [
        Scheduler(
            s,
            owner=owner,
            handlers={K.PAUSE_END: handler_for(owner)},
            batch=10,
            concurrency=5,
            idle_sleep=0.01,
        )
        for s, owner in zip(stores, ("one", "two"), strict=True)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run_forever(stop)) for s in schedulers]
    try:
        await drained(store)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for s in stores:
            await s.close()
    assert len(handled) == 100
    assert set(handled.values()) == {1}
    assert by_owner["one"]
    assert by_owner["two"]
    assert by_owner["one"] + by_owner["two"] == 100


# -- separate processes ----------------------------------------------------------------------


def scheduler_process(url: str, owner: str, barrier: Any) -> list[str]:
    """Run in another process: a scheduler that runs until no job is pending; the keys it
    handled."""

    async def go() -> list[str]:
        store = Store.from_url(url)
        handled: list[str] = []

        async def handler(job: Job) -> None:
            handled.append(job.key)
            await asyncio.sleep(0.002)

        scheduler = Scheduler(
            store, owner=owner, handlers={K.PAUSE_END: handler}, batch=10, concurrency=5
        )
        try:
            await store.pending_jobs()  # connect before the race starts
            await asyncio.to_thread(barrier.wait)
            while await store.pending_jobs():
                if not await scheduler.run_once():
                    await asyncio.sleep(0.01)
            return handled
        finally:
            await store.close()

    return asyncio.run(go())


async def test_two_scheduler_processes_handle_each_end_exactly_once(
    store: Store, migrated_url: str
) -> None:
    now = store.now()
    for i in range(100):
        await add(store, i, now - timedelta(seconds=i % 13))
    ctx = multiprocessing.get_context("spawn")
    owners = ("proc-1", "proc-2")
    with ctx.Manager() as manager, ProcessPoolExecutor(2, mp_context=ctx) as pool:
        barrier = manager.Barrier(2)
        futures = [pool.submit(scheduler_process, migrated_url, o, barrier) for o in owners]
        results = [f.result(timeout=120) for f in futures]
    handled = Counter(key for keys in results for key in keys)
    assert len(handled) == 100
    assert set(handled.values()) == {1}
    assert all(results), "both processes took part"
    for owner, keys in zip(owners, results, strict=True):
        for key in keys[:5]:
            job = await store.job(key)
            assert job is not None
            assert job.done
            assert job.owner == owner
            assert job.attempts == 1


def hanging_process(url: str, now_iso: str, started: Any) -> None:
    """Run in another process: claim the due job, signal, then hang in the handler until
    killed (SIGKILL: no cleanup, the lease stays)."""

    async def go() -> None:
        now = datetime.fromisoformat(now_iso)
        store = Store.from_url(url, clock=lambda: now)

        async def handler(_job: Job) -> None:
            started.set()
            await asyncio.sleep(3600)

        scheduler = Scheduler(
            store, owner="victim", handlers={K.PAUSE_END: handler}, clock=lambda: now, lease=LEASE
        )
        await scheduler.run_once()

    asyncio.run(go())


async def test_a_killed_lease_holder_is_taken_over_after_the_lease(
    store: Store, migrated_url: str, clock: FakeClock
) -> None:
    """A process killed with SIGKILL while running a job: its lease expires and another
    scheduler runs the job (again: the victim may have done part of the work, which is
    why handlers must be idempotent); completion is recorded exactly once."""
    job = await add(store, 42, clock.now - timedelta(minutes=1))
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    victim = ctx.Process(
        target=hanging_process, args=(migrated_url, clock.now.isoformat(), started)
    )
    victim.start()
    try:
        assert await asyncio.to_thread(started.wait, 60), "the victim never ran the job"
        leased = await store.job(job.key)
        assert leased is not None
        assert leased.owner == "victim"
        assert leased.attempts == 1
        await sigkill(victim)
    finally:
        reap(victim)

    seen: list[tuple[str, int, timedelta]] = []

    async def handler(job: Job) -> None:
        seen.append((job.key, job.attempts, job.late_by(clock())))

    survivor = Scheduler(store, owner="survivor", handlers={K.PAUSE_END: handler}, clock=clock)
    assert await survivor.run_once() == 0  # the dead process's lease still holds
    clock.advance(LEASE + timedelta(seconds=1))
    assert await survivor.run_once() == 1
    assert await survivor.run_once() == 0
    assert seen == [(job.key, 2, timedelta(minutes=2, seconds=1))]
    final = await store.job(job.key)
    assert final is not None
    assert final.done
    assert final.owner == "survivor"
    assert final.done_at == clock.now
    assert final.attempts == 2
    assert await store.complete(job.id, owner="victim") is False


async def test_batch_handler_gets_due_jobs_together_and_outcomes_are_recorded(
    store: Store, clock: FakeClock
) -> None:
    for i in range(6):
        await add(store, i, clock.now)
    await add(store, "r", clock.now, K.PAUSE_REMINDER)
    batches: list[list[str]] = []
    singles: list[str] = []

    async def ends(jobs: Sequence[Job]) -> dict[int, BaseException | None]:
        batches.append(sorted(job.payload["id"] for job in jobs))
        outcomes: dict[int, BaseException | None] = {}
        for job in jobs:
            outcomes[job.id] = RuntimeError("SFMC said no") if job.payload["id"] == "3" else None
        return outcomes

    async def remind(job: Job) -> None:
        singles.append(job.key)

    scheduler = Scheduler(
        store,
        owner="a",
        handlers={K.PAUSE_REMINDER: remind},
        batch_handlers={K.PAUSE_END: ends},
        clock=clock,
    )
    assert await scheduler.run_once() == 7
    assert batches == [[str(i) for i in range(6)]]  # one call with every due end
    assert singles == ["pause_reminder:r"]
    failed = await store.job(job_key(K.PAUSE_END, 3))
    assert failed is not None
    assert not failed.done
    assert failed.last_error == "RuntimeError: SFMC said no"
    assert failed.due_at > clock.now  # retried later, with backoff
    for i in (0, 1, 2, 4, 5):
        done = await store.job(job_key(K.PAUSE_END, i))
        assert done is not None
        assert done.done
        assert done.last_error is None
    clock.advance(timedelta(minutes=10))
    assert await scheduler.run_once() == 1
    assert batches[-1] == ["3"]  # the failed one comes back alone


async def test_a_batch_handler_that_raises_fails_every_job_of_the_batch(
    store: Store, clock: FakeClock
) -> None:
    for i in range(3):
        await add(store, i, clock.now)

    async def broken(jobs: Sequence[Job]) -> dict[int, BaseException | None]:
        raise ConnectionError("database away")

    async def partial(jobs: Sequence[Job]) -> dict[int, BaseException | None]:
        return {jobs[0].id: None}  # forgets the others: they are not lost, they are retried

    scheduler = Scheduler(
        store, owner="a", handlers={}, batch_handlers={K.PAUSE_END: broken}, clock=clock
    )
    assert await scheduler.run_once() == 3
    assert await store.pending_jobs() == 3
    job = await store.job(job_key(K.PAUSE_END, 0))
    assert job is not None
    assert job.last_error == "ConnectionError: database away"
    clock.advance(timedelta(minutes=10))
    scheduler.batch_handlers[K.PAUSE_END] = partial
    assert await scheduler.run_once() == 3
    assert await store.pending_jobs() == 2


async def test_workers_claim_side_by_side(store: Store, clock: FakeClock) -> None:
    """While one pass waits on a slow job, another worker claims what has come due."""
    await add(store, "slow", clock.now)
    for i in range(5):
        await add(store, i, clock.now)
    release = asyncio.Event()
    ran: list[str] = []

    async def handler(job: Job) -> None:
        if job.payload["id"] == "slow":
            await release.wait()
        ran.append(job.payload["id"])

    scheduler = Scheduler(
        store,
        owner="a",
        handlers={K.PAUSE_END: handler},
        clock=clock,
        batch=1,
        workers=2,
        idle_sleep=0.01,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop))
    await until(lambda: len(ran) == 5, what="five jobs run")
    assert sorted(ran) == [str(i) for i in range(5)]  # done while "slow" still runs
    release.set()
    await drained(store)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert ran[-1] == "slow"


async def test_housekeeping_forgets_old_slack_delivery_keys(store: Store, clock: FakeClock) -> None:
    """The scheduler runs the runtime's housekeeping at start and then periodically: Slack
    delivery keys past their retention are forgotten (the table of processed events does not
    grow for ever) while recent ones still dedupe."""
    from bot.runtime import SLACK_KEY_RETENTION, Runtime

    assert await store.claim_event("old-event")
    clock.advance(SLACK_KEY_RETENTION + timedelta(minutes=1))
    assert await store.claim_event("new-event")
    runtime = Runtime.__new__(Runtime)  # only its store is used by housekeeping
    runtime.store = store
    scheduler = Scheduler(
        store, owner="t", handlers={}, clock=clock, housekeeping=runtime.housekeeping
    )
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop))
    try:
        for _ in range(500):
            if await store.claim_event("old-event"):  # forgotten: claimable again
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the old delivery key was never forgotten")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert await store.claim_event("new-event") is False  # still remembered


async def test_housekeeping_forgets_sent_outbox_rows_after_a_day(
    store: Store, clock: FakeClock
) -> None:
    """Sent Slack messages are kept a day (what a takeover may look for), then forgotten;
    unsent ones are never pruned."""
    from bot.domain.outbox import OUTBOX_LEASE, OUTBOX_RETENTION, OutboxKind, OutboxMessage
    from bot.runtime import Runtime

    def reply(ts: str) -> OutboxMessage:
        return OutboxMessage(kind=OutboxKind.REPLY, channel="C0OPS", thread_ts=ts)

    sent = await store.enqueue_outbox(reply("1.1"))
    waiting = await store.enqueue_outbox(reply("1.2"))
    await store.claim_outbox(owner="t", now=clock(), lease=OUTBOX_LEASE, limit=1)
    assert await store.outbox_sent({sent: 1}, owner="t", ts="2.1") == {sent}
    runtime = Runtime.__new__(Runtime)  # only its store is used by housekeeping
    runtime.store = store
    await runtime.housekeeping(clock())
    assert [i.id for i in await store.outbox_items()] == [sent, waiting]
    clock.advance(OUTBOX_RETENTION + timedelta(minutes=1))
    await runtime.housekeeping(clock())
    assert [i.id for i in await store.outbox_items()] == [waiting]
