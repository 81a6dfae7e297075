"""The store on SQLite and (when configured) PostgreSQL: behaviour and races."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import TargetBusy
from bot.domain.jobs import JobKind
from bot.domain.models import PauseOptions, TargetKind, ThenAction, Verb
from bot.domain.requests import (
    TRANSITIONS,
    ExecutionPhase,
    OperationRequest,
    PauseRecord,
    RequestSpec,
    RequestStatus,
    Via,
    can_transition,
)
from bot.store.repository import Store
from tests.db import claim_worker, fresh_store, transition_worker
from tests.store.conftest import FakeClock

S = RequestStatus
CET = timezone(timedelta(hours=2))


def spec(key: str = "welcome", *, verb: Verb = Verb.PAUSE, **kw: Any) -> RequestSpec:
    values: dict[str, object] = {
        "verb": verb,
        "environment": "prod",
        "kind": TargetKind.JOURNEY,
        "key": key,
        "name": f"{key.title()} Series",
        "target_id": f"id-{key}",
    }
    values.update(kw)
    return RequestSpec.model_validate(values)


async def new_request(store: Store, key: str = "welcome", **kw: Any) -> OperationRequest:
    return await store.create_request(
        spec=spec(key, **kw), requested_by="U1", via=Via.COMMAND, reason=None, channel="C1"
    )


async def at_status(store: Store, status: RequestStatus, key: str = "welcome") -> OperationRequest:
    """A request moved to ``status`` along legal transitions."""
    paths: dict[RequestStatus, list[RequestStatus]] = {
        S.RECEIVED: [],
        S.AWAITING_APPROVAL: [S.AWAITING_APPROVAL],
        S.APPROVED: [S.AWAITING_APPROVAL, S.APPROVED],
        S.DENIED: [S.AWAITING_APPROVAL, S.DENIED],
        S.EXPIRED: [S.AWAITING_APPROVAL, S.EXPIRED],
        S.EXECUTING: [S.EXECUTING],
        S.SUCCEEDED: [S.EXECUTING, S.SUCCEEDED],
        S.UNVERIFIED: [S.EXECUTING, S.UNVERIFIED],
        S.FAILED: [S.FAILED],
    }
    req = await new_request(store, key)
    for step in paths[status]:
        moved = await store.transition(req.id, to=step)
        assert moved is not None
        req = moved
    assert req.status is status
    return req


# -- requests ----------------------------------------------------------------------------


async def test_create_and_get_round_trip(store: Store, clock: FakeClock) -> None:
    pause = PauseOptions(
        duration=timedelta(days=3), then=ThenAction.STOP, extend_waits=True, reason="promo"
    )
    original = spec(version=3, pause=pause)
    created = await store.create_request(
        spec=original, requested_by="U1", via=Via.MODAL, reason="campaign", channel="C9"
    )
    assert len(created.id) == 32
    assert created.status is S.RECEIVED
    assert created.created_at == created.updated_at == clock.now

    got = await store.get_request(created.id)
    assert got == created
    assert got.spec == original
    assert got.spec.fingerprint() == original.fingerprint()
    assert got.via is Via.MODAL
    assert (got.reason, got.channel, got.card_ts) == ("campaign", "C9", None)
    assert await store.get_request("nope") is None


async def test_create_with_initial_status_and_until(store: Store) -> None:
    until = datetime(2026, 6, 1, 12, 0, tzinfo=CET)
    original = spec(all_versions=True, pause=PauseOptions(until=until, then=ThenAction.KEEP))
    created = await store.create_request(
        spec=original,
        requested_by="U2",
        via=Via.CLI,
        reason=None,
        channel=None,
        status=S.AWAITING_APPROVAL,
    )
    got = await store.get_request(created.id)
    assert got is not None
    assert got.status is S.AWAITING_APPROVAL
    assert got.spec == original
    assert got.spec.fingerprint() == original.fingerprint()


ALLOWED = [(src, dst) for src, dsts in TRANSITIONS.items() for dst in dsts]
REFUSED = [
    (src, dst) for src in RequestStatus for dst in RequestStatus if not can_transition(src, dst)
]


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
async def test_every_allowed_transition(
    store: Store, clock: FakeClock, src: RequestStatus, dst: RequestStatus
) -> None:
    req = await at_status(store, src)
    later = clock.advance(timedelta(minutes=5))
    moved = await store.transition(req.id, to=dst, error="boom" if dst is S.FAILED else None)
    assert moved is not None
    assert moved.status is dst
    assert moved.updated_at == later
    assert moved.created_at == req.created_at
    assert await store.get_request(req.id) == moved


async def test_every_refused_transition(store: Store) -> None:
    """Every pair outside TRANSITIONS: None (nothing moves) or ValueError (nothing ever can)."""
    requests = {status: await at_status(store, status, key=status.value) for status in S}
    for src, dst in REFUSED:
        req = requests[src]
        if not any(can_transition(s, dst) for s in S):
            with pytest.raises(ValueError, match="no status may move"):
                await store.transition(req.id, to=dst)
            continue
        assert await store.transition(req.id, to=dst) is None, f"{src} -> {dst}"
        assert await store.get_request(req.id) == req, f"{src} -> {dst} changed the request"


async def test_expected_narrows_the_sources(store: Store) -> None:
    req = await at_status(store, S.APPROVED)
    # APPROVED may move to EXECUTING, but this caller only expects RECEIVED.
    assert await store.transition(req.id, to=S.EXECUTING, expected=[S.RECEIVED]) is None
    moved = await store.transition(req.id, to=S.EXECUTING, expected={S.APPROVED})
    assert moved is not None
    assert moved.status is S.EXECUTING


async def test_expected_outside_the_state_machine_is_refused(store: Store) -> None:
    req = await new_request(store)
    with pytest.raises(ValueError, match="does not allow"):
        await store.transition(req.id, to=S.SUCCEEDED, expected=[S.RECEIVED])
    with pytest.raises(ValueError, match="no status may move"):
        await store.transition(req.id, to=S.EXECUTING, expected=[])


async def test_transition_sets_fields(store: Store) -> None:
    req = await new_request(store)
    ends = datetime(2026, 5, 4, 11, 0, tzinfo=CET)
    running = await store.transition(req.id, to=S.EXECUTING, state_before="active (Running)")
    assert running is not None
    done = await store.transition(
        req.id,
        to=S.SUCCEEDED,
        state_after="paused",
        provider_request_id="req-42",
        pause_ends_at=ends,
        channel="C2",
        card_ts="1700000000.000100",
    )
    assert done is not None
    assert done.state_before == "active (Running)"
    assert done.state_after == "paused"
    assert done.provider_request_id == "req-42"
    assert done.pause_ends_at == ends
    assert done.pause_ends_at is not None
    assert done.pause_ends_at.tzinfo is UTC
    assert (done.channel, done.card_ts) == ("C2", "1700000000.000100")
    assert await store.get_request(req.id) == done


async def test_transition_refuses_unknown_fields(store: Store) -> None:
    req = await new_request(store)
    with pytest.raises(ValueError, match="cannot set status"):
        await store.transition(req.id, to=S.EXECUTING, status="succeeded")
    with pytest.raises(ValueError, match="cannot set requested_by"):
        await store.transition(req.id, to=S.EXECUTING, requested_by="U666")
    assert (await store.get_request(req.id)) == req


async def test_transition_of_unknown_request(store: Store) -> None:
    assert await store.transition("0" * 32, to=S.EXECUTING) is None


async def test_concurrent_transitions_exactly_one_wins(store: Store) -> None:
    req = await new_request(store)
    results = await asyncio.gather(
        *(store.transition(req.id, to=S.EXECUTING, state_before=f"w{i}") for i in range(10))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = await store.get_request(req.id)
    assert final == winners[0]


async def test_concurrent_transitions_from_two_engines(store: Store, migrated_url: str) -> None:
    """Two engines stand for two processes/replicas: still exactly one winner."""
    other = Store.from_url(migrated_url)
    try:
        for n in range(5):
            req = await new_request(store, key=f"t{n}")
            results = await asyncio.gather(
                *((store if i % 2 else other).transition(req.id, to=S.EXECUTING) for i in range(10))
            )
            assert sum(r is not None for r in results) == 1
    finally:
        await other.close()


async def test_concurrent_transitions_from_processes(store: Store, migrated_url: str) -> None:
    req = await new_request(store)
    ctx = multiprocessing.get_context("spawn")
    workers = 4
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        barrier = manager.Barrier(workers)
        futures = [
            pool.submit(transition_worker, migrated_url, req.id, barrier) for _ in range(workers)
        ]
        results = [f.result(timeout=60) for f in futures]
    assert results.count(True) == 1
    final = await store.get_request(req.id)
    assert final is not None
    assert final.status is S.EXECUTING


async def test_set_card_and_find_by_card(store: Store, clock: FakeClock) -> None:
    req = await new_request(store)
    other = await new_request(store, key="other")
    assert await store.find_by_card(channel="C1", card_ts="1.1") is None
    later = clock.advance()
    carded = await store.set_card(req.id, channel="C1", card_ts="1.1")
    assert (carded.channel, carded.card_ts, carded.updated_at) == ("C1", "1.1", later)
    assert await store.find_by_card(channel="C1", card_ts="1.1") == carded
    assert await store.find_by_card(channel="C2", card_ts="1.1") is None
    # Requests without a card do not collide with each other...
    assert (await store.get_request(other.id)) == other
    # ...but one card belongs to one request.
    with pytest.raises(IntegrityError):
        await store.set_card(other.id, channel="C1", card_ts="1.1")
    with pytest.raises(LookupError):
        await store.set_card("missing", channel="C1", card_ts="2.2")


async def test_unfinished_requests_oldest_first(store: Store, clock: FakeClock) -> None:
    wanted = []
    for status in S:
        clock.advance()
        req = await at_status(store, status, key=status.value)
        if status in (S.RECEIVED, S.APPROVED, S.EXECUTING):
            wanted.append(req.id)
    unfinished = await store.unfinished_requests()
    assert [r.id for r in unfinished] == wanted
    assert [r.status for r in unfinished] == [S.RECEIVED, S.APPROVED, S.EXECUTING]


# -- audit trail ---------------------------------------------------------------------------


async def test_record_fills_target_from_request(store: Store, clock: FakeClock) -> None:
    req = await new_request(store)
    event = await store.record(
        actor="U1", action="requested", via=Via.COMMAND, request_id=req.id, detail={"n": 1}
    )
    assert event.request_id == req.id
    assert event.at == clock.now
    assert event.detail == {"n": 1}
    assert event.via is Via.COMMAND
    history = await store.history(environment="prod", kind=TargetKind.JOURNEY, target_key="welcome")
    assert history == [event]


async def test_history_newest_first_and_scoped(store: Store, clock: FakeClock) -> None:
    req = await new_request(store)
    other = await new_request(store, key="other")
    events = []
    for i in range(4):
        clock.advance()
        events.append(
            await store.record(actor="U1", action=f"step{i}", via=Via.BUTTON, request_id=req.id)
        )
    # Same instant: insertion order breaks the tie.
    events.append(
        await store.record(actor="U1", action="same-time", via=Via.SYSTEM, request_id=req.id)
    )
    await store.record(actor="U1", action="elsewhere", via=Via.BUTTON, request_id=other.id)
    manual = await store.record(
        actor="scheduler",
        action="reminder",
        via=Via.SCHEDULER,
        environment="prod",
        kind="journey",
        target_key="welcome",
    )
    history = await store.history(environment="prod", kind="journey", target_key="welcome")
    assert [e.id for e in history] == [manual.id] + [e.id for e in reversed(events)]
    limited = await store.history(
        environment="prod", kind=TargetKind.JOURNEY, target_key="welcome", limit=2
    )
    assert [e.id for e in limited] == [manual.id, events[-1].id]
    assert await store.history(environment="staging", kind="journey", target_key="welcome") == []


async def test_audit_since_oldest_first(store: Store, clock: FakeClock) -> None:
    first = await store.record(actor="a", action="one", via=Via.CLI)
    mark = clock.advance()
    second = await store.record(actor="a", action="two", via=Via.CLI, detail={"x": [1, 2]})
    clock.advance()
    third = await store.record(actor="a", action="three", via=Via.CLI)
    assert await store.audit_since(None) == [first, second, third]
    assert await store.audit_since(mark) == [second, third]
    assert await store.audit_since(mark.astimezone(CET)) == [second, third]
    assert second.detail == {"x": [1, 2]}
    assert first.detail == {}
    assert first.request_id is None


# -- Slack deliveries ------------------------------------------------------------------------


async def test_claim_event_once(store: Store) -> None:
    assert await store.claim_event("Ev123") is True
    assert await store.claim_event("Ev123") is False
    assert await store.claim_event("action:1700000000.1") is True


async def test_concurrent_claims_exactly_one(store: Store, migrated_url: str) -> None:
    other = Store.from_url(migrated_url)
    try:
        for n in range(5):
            key = f"Ev{n}"
            results = await asyncio.gather(
                *((store if i % 2 else other).claim_event(key) for i in range(10))
            )
            assert results.count(True) == 1
    finally:
        await other.close()


async def test_claims_from_processes_exactly_one(migrated_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = 4
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        barrier = manager.Barrier(workers)
        futures = [
            pool.submit(claim_worker, migrated_url, "EvRace", barrier) for _ in range(workers)
        ]
        results = [f.result(timeout=60) for f in futures]
    assert results.count(True) == 1


async def test_prune_events(store: Store, clock: FakeClock) -> None:
    await store.claim_event("old1")
    await store.claim_event("old2")
    cutoff = clock.advance(timedelta(hours=1))
    await store.claim_event("new")
    assert await store.prune_events(cutoff) == 2
    assert await store.prune_events(cutoff) == 0
    assert await store.claim_event("old1") is True  # forgotten, so claimable again
    assert await store.claim_event("new") is False


# -- pauses ------------------------------------------------------------------------------------


async def test_open_pause_from_request(store: Store, clock: FakeClock) -> None:
    req = await store.create_request(
        spec=spec(version=2, pause=PauseOptions(duration=timedelta(days=2), then=ThenAction.STOP)),
        requested_by="U7",
        via=Via.COMMAND,
        reason=None,
        channel="C1",
    )
    req = await store.set_card(req.id, channel="C1", card_ts="5.5")
    ends = clock.now + timedelta(days=2)
    pause = await store.open_pause(request=req, started_at=clock.now, ends_at=ends)
    assert pause.request_id == req.id
    assert (pause.environment, pause.kind, pause.key, pause.name) == (
        "prod",
        TargetKind.JOURNEY,
        "welcome",
        "Welcome Series",
    )
    assert (pause.version, pause.all_versions, pause.paused_by) == (2, False, "U7")
    assert (pause.started_at, pause.ends_at, pause.then) == (clock.now, ends, ThenAction.STOP)
    assert (pause.channel, pause.card_ts, pause.active) == ("C1", "5.5", True)
    assert await store.pause_for_request(req.id) == pause
    # Idempotent: the same request never gets a second pause.
    assert await store.open_pause(request=req, started_at=clock.now, ends_at=None) == pause
    assert await store.pause_for_request("missing") is None


async def test_close_pause_once(store: Store) -> None:
    req = await new_request(store)
    pause = await store.open_pause(request=req, started_at=store.now(), ends_at=None)
    assert pause.then is ThenAction.RESUME
    results = await asyncio.gather(*(store.close_pause(pause.id, reason="ended") for _ in range(5)))
    closed = [r for r in results if r is not None]
    assert len(closed) == 1
    assert closed[0].active is False
    assert await store.close_pause(pause.id, reason="again") is None
    assert await store.close_pause(999_999, reason="none") is None
    assert await store.active_pauses() == []
    assert (
        await store.active_pause_for_target(
            environment="prod", kind=TargetKind.JOURNEY, key="welcome"
        )
        is None
    )


async def test_active_pauses_ordering_and_filters(store: Store, clock: FakeClock) -> None:
    now = clock.now
    made = {}
    for key, env, ends in [
        ("open-ended", "prod", None),
        ("late", "prod", now + timedelta(days=3)),
        ("soon", "staging", now + timedelta(hours=1)),
        ("mid", "prod", now + timedelta(days=1)),
        ("closed", "prod", now + timedelta(minutes=1)),
    ]:
        req = await store.create_request(
            spec=spec(key, environment=env),
            requested_by="U1",
            via=Via.CLI,
            reason=None,
            channel=None,
        )
        made[key] = await store.open_pause(request=req, started_at=now, ends_at=ends)
    await store.close_pause(made["closed"].id, reason="resumed by hand")

    assert [p.key for p in await store.active_pauses()] == ["soon", "mid", "late", "open-ended"]
    assert [p.key for p in await store.active_pauses(environment="prod")] == [
        "mid",
        "late",
        "open-ended",
    ]
    found = await store.active_pause_for_target(environment="prod", kind="journey", key="late")
    assert found == made["late"]
    assert (
        await store.active_pause_for_target(
            environment="prod", kind=TargetKind.JOURNEY, key="closed"
        )
        is None
    )
    assert (
        await store.active_pause_for_target(
            environment="staging", kind=TargetKind.SCRIP, key="soon"
        )
        is None
    )


# -- time --------------------------------------------------------------------------------------


async def test_timezones_round_trip_as_utc(migrated_url: str) -> None:
    local = datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=CET)
    store = Store.from_url(migrated_url, clock=lambda: local)
    try:
        req = await new_request(store)
        assert req.created_at == local
        got = await store.get_request(req.id)
        assert got is not None
        for value in (got.created_at, got.updated_at):
            assert value == local
            assert value.tzinfo is UTC
            assert value.microsecond == 123456
        event = await store.record(actor="a", action="x", via=Via.CLI, request_id=req.id)
        assert event.at.tzinfo is UTC
        assert event.at == local
        pause = await store.open_pause(
            request=req, started_at=local, ends_at=local + timedelta(days=1)
        )
        stored = await store.pause_for_request(req.id)
        assert stored == pause
        assert stored.started_at.tzinfo is UTC
        assert stored.ends_at is not None
        assert stored.ends_at.tzinfo is UTC
    finally:
        await store.close()


async def test_naive_datetimes_are_refused(store: Store) -> None:
    req = await new_request(store)
    naive = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        await store.transition(req.id, to=S.EXECUTING, pause_ends_at=naive)
    with pytest.raises(ValueError, match="naive"):
        await store.audit_since(naive)
    with pytest.raises(ValueError, match="naive"):
        await store.open_pause(request=req, started_at=naive, ends_at=None)


# -- in-memory SQLite (the sandbox config uses it) ------------------------------------------


async def test_in_memory_store_migrates_itself() -> None:
    async with fresh_store("sqlite://") as store:
        reqs = await asyncio.gather(*(new_request(store, key=f"k{i}") for i in range(5)))
        results = await asyncio.gather(
            *(store.transition(reqs[0].id, to=S.EXECUTING) for _ in range(5))
        )
        assert sum(r is not None for r in results) == 1
        assert len(await store.unfinished_requests()) == 5
        assert await store.claim_event("e") is True
        assert await store.claim_event("e") is False


# -- ending pauses together, schedule snapshots ----------------------------------------------


async def test_end_pauses_closes_each_once_in_one_transaction(
    store: Store, clock: FakeClock
) -> None:
    from bot.domain.jobs import JobKind, job_key
    from bot.domain.requests import PauseOutcome
    from bot.store.repository import PauseClosing

    pauses = []
    for key in ("a", "b"):
        req = await at_status(store, RequestStatus.SUCCEEDED, key)
        pause = await store.open_pause(request=req, started_at=clock.now, ends_at=None)
        for kind in (JobKind.PAUSE_END, JobKind.DRIFT_CHECK):
            await store.schedule(
                kind=kind, key=job_key(kind, pause.id), due_at=clock.now, payload={}
            )
        pauses.append(pause)
    loaded = await store.pauses_with_requests([p.id for p in pauses] + [999])
    assert sorted(loaded) == [p.id for p in pauses]
    assert all(loaded[p.id][1].id == p.request_id for p in pauses)

    def closing(pause: PauseRecord) -> PauseClosing:
        return PauseClosing(
            pause_id=pause.id,
            request_id=pause.request_id,
            reason="ended: active",
            outcome=PauseOutcome(at=clock.now, text="resumed: active (verified)"),
            cancel_keys=(job_key(JobKind.DRIFT_CHECK, pause.id),),
            audit_action="pause_ended",
            audit_detail={"after": "active"},
        )

    assert await store.end_pauses([closing(p) for p in pauses]) == {p.id for p in pauses}
    # a second run (another replica, a retry) closes nothing and records nothing more
    assert await store.end_pauses([closing(p) for p in pauses]) == set()
    assert await store.pauses_with_requests([p.id for p in pauses]) == {}
    for pause in pauses:
        closed = await store.get_pause(pause.id)
        assert closed is not None
        assert not closed.active
        request = await store.get_request(pause.request_id)
        assert request is not None
        assert request.pause_outcome == PauseOutcome(
            at=clock.now, text="resumed: active (verified)"
        )
        drift = await store.job(job_key(JobKind.DRIFT_CHECK, pause.id))
        assert drift is not None
        assert drift.last_error == "cancelled"
        end = await store.job(job_key(JobKind.PAUSE_END, pause.id))
        assert end is not None
        assert end.done_at is None  # the running job is not cancelled under itself
    events = [e for e in await store.audit_since(None) if e.action == "pause_ended"]
    assert sorted(str(e.request_id) for e in events) == sorted(p.request_id for p in pauses)
    assert all(e.detail == {"after": "active"} for e in events)
    history = await store.history(environment="prod", kind="journey", target_key="a")
    assert "pause_ended" in [e.action for e in history]


async def test_schedule_snapshots_upsert_and_read_many(store: Store) -> None:
    from bot.domain.models import Schedule
    from bot.store.snapshots import StoreScheduleSnapshots

    kept = StoreScheduleSnapshots(store)
    daily = Schedule(ical_recur="FREQ=DAILY;INTERVAL=1", timezone_id=5)
    hourly = Schedule(ical_recur="FREQ=HOURLY;INTERVAL=1")
    await kept.put(1, "AAA-1", daily)
    await kept.put(1, "aaa-1", hourly)  # ObjectIDs are case-insensitive: replaced
    await kept.put(2, "aaa-1", daily)  # another business unit
    assert await kept.get(1, "AAA-1") == hourly
    assert await kept.get(1, "missing") is None
    assert await kept.get_many(1, ["aaa-1", "missing"]) == {"aaa-1": hourly}
    assert await kept.get_many(2, ["AAA-1"]) == {"aaa-1": daily}
    assert await kept.get_many(1, []) == {}


async def test_a_pending_approval_gets_its_expiry_job_with_it(
    store: Store, clock: FakeClock
) -> None:
    from bot.domain.jobs import JobKind, job_key

    expires = clock.now + timedelta(hours=4)
    request = await store.create_request(
        spec=spec("exp"),
        requested_by="U1",
        via=Via.COMMAND,
        reason=None,
        channel="C1",
        status=RequestStatus.AWAITING_APPROVAL,
        expires_at=expires,
    )
    job = await store.job(job_key(JobKind.APPROVAL_EXPIRY, request.id))
    assert job is not None
    assert job.kind is JobKind.APPROVAL_EXPIRY
    assert job.due_at == expires
    assert job.payload == {"request_id": request.id}
    plain = await new_request(store, "no-approval")
    assert await store.job(job_key(JobKind.APPROVAL_EXPIRY, plain.id)) is None
    # a request refused because its target is busy leaves no job behind
    await new_request(store, "busy")
    with pytest.raises(TargetBusy):
        await store.create_request(
            spec=spec("busy"),
            requested_by="U1",
            via=Via.COMMAND,
            reason=None,
            channel="C1",
            expires_at=expires,
        )
    assert await store.pending_jobs(JobKind.APPROVAL_EXPIRY) == 1


# -- execution leases -------------------------------------------------------------------------


async def executing(store: Store, owner: str, until: datetime, key: str = "welcome") -> str:
    req = await new_request(store, key)
    moved = await store.transition(
        req.id, to=S.EXECUTING, owner=owner, lease_until=until, execution_phase="not_sent"
    )
    assert moved is not None
    assert moved.owner == owner
    assert moved.lease_until == until
    assert moved.execution_phase is ExecutionPhase.NOT_SENT
    return req.id


async def test_an_execution_is_taken_over_only_once_its_lease_ran_out(
    store: Store, clock: FakeClock
) -> None:
    now = clock()
    rid = await executing(store, "a", now + timedelta(seconds=60))
    later = now + timedelta(seconds=120)
    assert await store.take_over(rid, owner="b", now=now, until=later) is None
    assert (
        await store.take_over(rid, owner="b", now=now + timedelta(seconds=60), until=later) is None
    )
    assert await store.renew_execution(rid, owner="a", until=now + timedelta(seconds=90))
    assert not await store.renew_execution(rid, owner="b", until=later)
    assert (
        await store.take_over(rid, owner="b", now=now + timedelta(seconds=61), until=later) is None
    )

    taken = await store.take_over(rid, owner="b", now=now + timedelta(seconds=91), until=later)
    assert taken is not None
    assert (taken.owner, taken.lease_until) == ("b", later)
    assert taken.execution_phase is ExecutionPhase.NOT_SENT
    # the first owner, back from a stall, may not send any more; the new one may
    assert not await store.mark_maybe_sent(rid, owner="a")
    assert not await store.renew_execution(rid, owner="a", until=later)
    assert await store.mark_maybe_sent(rid, owner="b")
    current = await store.get_request(rid)
    assert current is not None
    assert current.execution_phase is ExecutionPhase.MAYBE_SENT


async def test_only_executing_requests_are_taken_over(store: Store, clock: FakeClock) -> None:
    now = clock()
    for status in (S.RECEIVED, S.APPROVED, S.SUCCEEDED, S.FAILED):
        req = await at_status(store, status, key=status.value)
        assert await store.take_over(req.id, owner="b", now=now, until=now) is None
        assert not await store.mark_maybe_sent(req.id, owner="b")


async def test_an_execution_without_a_lease_is_taken_over(store: Store, clock: FakeClock) -> None:
    """A request executing from before leases were recorded: no owner, no lease, no phase."""
    req = await at_status(store, S.EXECUTING)
    assert (req.owner, req.lease_until, req.execution_phase) == (None, None, None)
    taken = await store.take_over(req.id, owner="b", now=clock(), until=clock())
    assert taken is not None
    assert taken.execution_phase is None


async def test_concurrent_take_overs_exactly_one_wins(
    store: Store, migrated_url: str, clock: FakeClock
) -> None:
    now = clock()
    rid = await executing(store, "dead", now - timedelta(seconds=1))
    other = Store.from_url(migrated_url)
    try:
        results = await asyncio.gather(
            *(
                (store if i % 2 else other).take_over(rid, owner=f"p{i}", now=now, until=now)
                for i in range(10)
            )
        )
    finally:
        await other.close()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1


async def test_ensure_job_keeps_a_pending_job_and_reopens_a_done_one(
    store: Store, clock: FakeClock
) -> None:
    now = clock()
    first = await store.ensure_job(
        kind=JobKind.RECOVERY, key="recovery:requests", due_at=now, payload={}
    )
    [claimed] = await store.claim_due(owner="a", now=now, lease=timedelta(seconds=60), limit=5)
    again = await store.ensure_job(
        kind=JobKind.RECOVERY, key="recovery:requests", due_at=now + timedelta(hours=1), payload={}
    )
    assert again.id == first.id
    assert (again.due_at, again.owner) == (now, "a")  # its time and its lease are kept
    assert await store.complete(claimed.id, owner="a")
    reopened = await store.ensure_job(
        kind=JobKind.RECOVERY, key="recovery:requests", due_at=now + timedelta(hours=1), payload={}
    )
    assert not reopened.done
    assert reopened.due_at == now + timedelta(hours=1)
