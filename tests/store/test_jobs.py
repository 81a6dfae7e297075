"""Scheduled jobs in the store (SQLite and PostgreSQL): upserts, leases, races, the plan."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ClauseElement, Executable, insert, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bot.domain.jobs import Job, JobKind, job_key, retry_delay
from bot.store.models import JobRow
from bot.store.repository import Store, due_select
from tests.store.conftest import FakeClock

K = JobKind
LEASE = timedelta(seconds=60)


async def add(store: Store, ident: object, due_at: datetime, kind: JobKind = K.PAUSE_END) -> Job:
    return await store.schedule(
        kind=kind, key=job_key(kind, ident), due_at=due_at, payload={"id": str(ident)}
    )


# -- the domain bits -----------------------------------------------------------------------------


def test_job_key_late_by_and_backoff() -> None:
    assert job_key(K.PAUSE_END, 42) == "pause_end:42"
    due = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    job = Job(id=1, kind=K.PAUSE_END, key="pause_end:42", due_at=due)
    assert job.late_by(due + timedelta(minutes=90)) == timedelta(minutes=90)
    assert job.late_by(due - timedelta(seconds=5)) == timedelta(0)
    base = timedelta(seconds=10)
    cap = timedelta(minutes=1)
    delays = [retry_delay(n, base=base, cap=cap) for n in range(1, 6)]
    assert delays == [base, 2 * base, 4 * base, cap, cap]
    assert retry_delay(1000, base=base, cap=cap) == cap
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(0)


# -- schedule / cancel / count -------------------------------------------------------------------


async def test_schedule_upserts_by_key(store: Store, clock: FakeClock) -> None:
    due = clock.now + timedelta(hours=1)
    first = await store.schedule(kind=K.PAUSE_END, key="pause_end:1", due_at=due, payload={"a": 1})
    assert (first.kind, first.due_at, first.payload, first.attempts) == (
        K.PAUSE_END,
        due,
        {"a": 1},
        0,
    )
    assert first.owner is None
    assert first.locked_until is None
    assert not first.done
    later = due + timedelta(hours=2)
    moved = await store.schedule(
        kind=K.PAUSE_END, key="pause_end:1", due_at=later, payload={"a": 2}
    )
    assert moved.id == first.id
    assert (moved.due_at, moved.payload) == (later, {"a": 2})
    assert await store.pending_jobs() == 1
    assert await store.job("pause_end:1") == moved
    assert await store.job("pause_end:2") is None


async def test_rescheduling_a_done_job_reopens_it(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    [claimed] = await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    assert await store.complete(claimed.id, owner="a")
    done = await store.job(job.key)
    assert done is not None
    assert done.done
    assert done.done_at == clock.now
    assert await store.pending_jobs() == 0
    again = await add(store, 1, clock.now + timedelta(minutes=5))
    assert again.id == job.id
    assert (again.done_at, again.attempts, again.owner, again.last_error) == (None, 0, None, None)
    assert await store.pending_jobs() == 1


async def test_rescheduling_a_leased_job_releases_the_lease(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    # e.g. a handler re-arming its own key, or someone extending the pause meanwhile
    moved = await add(store, 1, clock.now + timedelta(minutes=10))
    assert moved.owner is None
    assert moved.locked_until is None
    assert await store.complete(job.id, owner="a") is False  # stays pending at the new time
    assert await store.pending_jobs() == 1
    assert await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10) == []
    clock.advance(timedelta(minutes=10))
    [claimed] = await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10)
    assert claimed.id == job.id


async def test_cancel(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    assert await store.cancel_job(job.key) is True
    assert await store.cancel_job(job.key) is False
    assert await store.cancel_job("pause_end:nope") is False
    cancelled = await store.job(job.key)
    assert cancelled is not None
    assert cancelled.done
    assert cancelled.last_error == "cancelled"
    assert await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10) == []
    assert await store.pending_jobs() == 0


async def test_cancel_during_a_run_wins_over_complete(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    assert await store.cancel_job(job.key) is True
    assert await store.complete(job.id, owner="a") is False
    final = await store.job(job.key)
    assert final is not None
    assert final.last_error == "cancelled"


async def test_pending_count_by_kind(store: Store, clock: FakeClock) -> None:
    await add(store, 1, clock.now, K.PAUSE_END)
    await add(store, 2, clock.now, K.PAUSE_END)
    await add(store, 1, clock.now, K.APPROVAL_EXPIRY)
    await add(store, 3, clock.now, K.PAUSE_END)
    await store.cancel_job(job_key(K.PAUSE_END, 3))
    assert await store.pending_jobs() == 3
    assert await store.pending_jobs(K.PAUSE_END) == 2
    assert await store.pending_jobs(K.APPROVAL_EXPIRY) == 1
    assert await store.pending_jobs(K.DRIFT_CHECK) == 0


async def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await add(store, 1, datetime(2026, 5, 1, 9, 0))


# -- claiming ------------------------------------------------------------------------------------


async def test_claim_takes_due_jobs_oldest_first_up_to_limit(
    store: Store, clock: FakeClock
) -> None:
    now = clock.now
    # scheduled out of order; two share a due time (then the id decides)
    for ident, minutes in [("c", -1), ("a", -30), ("future", 5), ("b", -10), ("b2", -10)]:
        await add(store, ident, now + timedelta(minutes=minutes))
    first = await store.claim_due(owner="a", now=now, lease=LEASE, limit=3)
    assert [j.payload["id"] for j in first] == ["a", "b", "b2"]
    for job in first:
        assert (job.owner, job.locked_until, job.attempts) == ("a", now + LEASE, 1)
    rest = await store.claim_due(owner="a", now=now, lease=LEASE, limit=3)
    assert [j.payload["id"] for j in rest] == ["c"]  # not the future one
    assert await store.claim_due(owner="a", now=now, lease=LEASE, limit=3) == []
    with pytest.raises(ValueError, match="at least 1"):
        await store.claim_due(owner="a", now=now, lease=LEASE, limit=0)


async def test_claim_filters_kinds(store: Store, clock: FakeClock) -> None:
    await add(store, 1, clock.now, K.PAUSE_END)
    await add(store, 1, clock.now, K.DRIFT_CHECK)
    got = await store.claim_due(
        owner="a", now=clock.now, lease=LEASE, limit=10, kinds=[K.DRIFT_CHECK]
    )
    assert [j.kind for j in got] == [K.DRIFT_CHECK]
    assert await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10, kinds=[]) == []


async def test_a_lease_excludes_others_until_it_expires(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    [mine] = await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    clock.advance(LEASE - timedelta(seconds=1))
    assert await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10) == []
    # "a" died holding it: once the lease has run out, "b" takes over
    clock.advance(timedelta(seconds=2))
    [theirs] = await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10)
    assert theirs.id == job.id == mine.id
    assert (theirs.owner, theirs.attempts, theirs.locked_until) == ("b", 2, clock.now + LEASE)
    assert await store.complete(job.id, owner="a") is False  # too late: no longer its job
    assert await store.extend_lease(job.id, owner="a", until=clock.now + LEASE) is False
    assert await store.complete(job.id, owner="b") is True
    assert await store.complete(job.id, owner="b") is False  # once
    final = await store.job(job.key)
    assert final is not None
    assert final.owner == "b"
    assert final.done_at == clock.now


async def test_extend_lease(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    until = clock.now + 3 * LEASE
    assert await store.extend_lease(job.id, owner="a", until=until) is True
    assert await store.extend_lease(job.id, owner="b", until=until) is False
    clock.advance(2 * LEASE)  # past the first lease, inside the extended one
    assert await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10) == []
    leased = await store.job(job.key)
    assert leased is not None
    assert leased.locked_until == until


async def test_fail_retries_later_or_gives_up(store: Store, clock: FakeClock) -> None:
    job = await add(store, 1, clock.now)
    await store.claim_due(owner="a", now=clock.now, lease=LEASE, limit=10)
    retry_at = clock.now + timedelta(seconds=30)
    assert await store.fail(job.id, owner="b", error="x", retry_at=retry_at) is False
    assert await store.fail(job.id, owner="a", error="boom", retry_at=retry_at) is True
    failed = await store.job(job.key)
    assert failed is not None
    assert (failed.due_at, failed.owner, failed.locked_until) == (retry_at, None, None)
    assert (failed.last_error, failed.attempts, failed.done) == ("boom", 1, False)
    # released, but not due before retry_at
    assert await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10) == []
    clock.advance(timedelta(seconds=30))
    [again] = await store.claim_due(owner="b", now=clock.now, lease=LEASE, limit=10)
    assert again.attempts == 2
    assert await store.fail(job.id, owner="b", error="still broken", retry_at=None) is True
    given_up = await store.job(job.key)
    assert given_up is not None
    assert given_up.done
    assert given_up.last_error == "still broken"
    assert await store.pending_jobs() == 0


async def test_two_claimers_never_share_a_job(migrated_url: str, clock: FakeClock) -> None:
    """Two stores (two engines, two connection pools) claim 200 due jobs concurrently:
    every job is leased to exactly one of them and completed exactly once."""
    seeder = Store.from_url(migrated_url, clock=clock)
    one = Store.from_url(migrated_url, clock=clock)
    two = Store.from_url(migrated_url, clock=clock)
    try:
        for i in range(200):
            await add(seeder, i, clock.now - timedelta(seconds=i % 17))
        claimed: Counter[int] = Counter()
        completed: Counter[int] = Counter()
        by_owner: dict[str, list[int]] = {"one": [], "two": []}

        async def claimer(store: Store, owner: str) -> None:
            while True:
                jobs = await store.claim_due(owner=owner, now=clock.now, lease=LEASE, limit=7)
                if not jobs:
                    return
                for job in jobs:
                    claimed[job.id] += 1
                    by_owner[owner].append(job.id)
                    await asyncio.sleep(0)
                    if await store.complete(job.id, owner=owner):
                        completed[job.id] += 1

        await asyncio.gather(claimer(one, "one"), claimer(two, "two"))
        assert len(claimed) == 200
        assert set(claimed.values()) == {1}
        assert set(completed.values()) == {1}
        assert len(completed) == 200
        assert by_owner["one"]
        assert by_owner["two"]
        assert await seeder.pending_jobs() == 0
    finally:
        for store in (seeder, one, two):
            await store.close()


# -- the due query's plan ------------------------------------------------------------------------


class Explain(Executable, ClauseElement):
    """``EXPLAIN <statement>`` with the statement's parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: Any, prefix: str) -> None:
        self.statement = statement
        self.prefix = prefix


@compiles(Explain)
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.prefix} {compiler.process(element.statement, **kw)}"


async def test_due_query_is_a_range_scan_of_the_partial_index(
    store: Store, clock: FakeClock
) -> None:
    now = clock.now
    rows: list[dict[str, Any]] = []
    for i in range(3000):  # many finished, many pending later, a few due
        if i % 2:
            due, done = now - timedelta(hours=1, seconds=i), now
        elif i % 500:
            due, done = now + timedelta(minutes=1 + i), None
        else:
            due, done = now - timedelta(seconds=i), None
        rows.append(
            {
                "kind": "pause_end",
                "key": f"k{i}",
                "due_at": due,
                "payload": {},
                "attempts": 0,
                "done_at": done,
                "created_at": now,
            }
        )
    dialect = store.engine.dialect.name
    async with store.engine.begin() as conn:
        await conn.execute(insert(JobRow), rows)
    async with store.engine.connect() as conn:
        if dialect == "postgresql":
            await conn.execute(text("ANALYZE jobs"))
        stmt = due_select(dialect=dialect, now=now, limit=50)  # the claim's inner query
        prefix = "EXPLAIN" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
        result = await conn.execute(Explain(stmt, prefix))
        plan = "\n".join(" ".join(str(col) for col in row) for row in result)
        await conn.rollback()
    if dialect == "postgresql":
        assert "Index Scan using ix_jobs_pending_due_at on jobs" in plan, plan
        assert "Index Cond: (due_at <=" in plan, plan
        assert "Limit" in plan, plan
    else:
        assert "SEARCH jobs USING INDEX ix_jobs_pending_due_at (due_at<?)" in plan, plan
    got = await store.claim_due(owner="a", now=now, lease=LEASE, limit=50)
    assert [j.key for j in got] == [f"k{i}" for i in (2500, 2000, 1500, 1000, 500, 0)]
