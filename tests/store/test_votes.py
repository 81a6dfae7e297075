"""Approval votes and approval expiry in the store, on SQLite and (when configured)
PostgreSQL: behaviour, races, and migration 0002."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.domain.approvals import Decision, Vote
from bot.domain.models import TargetKind, Verb
from bot.domain.requests import OperationRequest, RequestSpec, RequestStatus, Via
from bot.store import db
from bot.store.models import Base
from bot.store.repository import Store
from tests.db import fresh_store
from tests.store.conftest import FakeClock

S = RequestStatus
A = Decision.APPROVE
D = Decision.DENY
CET = timezone(timedelta(hours=2))


def spec(key: str = "welcome") -> RequestSpec:
    return RequestSpec(
        verb=Verb.PAUSE,
        environment="prod",
        kind=TargetKind.JOURNEY,
        key=key,
        name=f"{key.title()} Series",
        target_id=f"id-{key}",
    )


async def pending(
    store: Store,
    key: str = "welcome",
    *,
    expires_at: datetime | None = None,
    status: RequestStatus = S.AWAITING_APPROVAL,
) -> OperationRequest:
    return await store.create_request(
        spec=spec(key),
        requested_by="U1",
        via=Via.COMMAND,
        reason=None,
        channel="C1",
        status=status,
        expires_at=expires_at,
    )


# -- casting -----------------------------------------------------------------------------


async def test_cast_new_vote(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    vote, changed = await store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON)
    assert changed is True
    assert vote == Vote(voter="U2", decision=A, via=Via.BUTTON, at=clock.now)
    assert vote.at.tzinfo is UTC
    assert await store.votes(req.id) == [vote]


async def test_same_decision_again_changes_nothing(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    first, _ = await store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON)
    clock.advance()
    again, changed = await store.cast_vote(req.id, voter="U2", decision=A, via=Via.REACTION)
    assert changed is False
    assert again == first  # neither the time nor the channel of the vote moved
    assert await store.votes(req.id) == [first]


async def test_changing_the_decision_replaces_the_vote(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    await store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON)
    later = clock.advance()
    vote, changed = await store.cast_vote(req.id, voter="U2", decision=D, via=Via.REACTION)
    assert changed is True
    assert vote == Vote(voter="U2", decision=D, via=Via.REACTION, at=later)
    assert await store.votes(req.id) == [vote]
    back, changed = await store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON)
    assert changed is True
    assert await store.votes(req.id) == [back]


async def test_cast_on_unknown_request(store: Store) -> None:
    with pytest.raises(LookupError, match="no request"):
        await store.cast_vote("0" * 32, voter="U2", decision=A, via=Via.BUTTON)


# -- withdrawing -------------------------------------------------------------------------


async def test_withdraw_only_the_matching_decision(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    await store.cast_vote(req.id, voter="U2", decision=A, via=Via.REACTION)
    # A removed deny reaction does not withdraw an approval.
    assert await store.withdraw_vote(req.id, voter="U2", decision=D) is False
    assert len(await store.votes(req.id)) == 1
    assert await store.withdraw_vote(req.id, voter="U3", decision=A) is False  # not theirs
    assert await store.withdraw_vote(req.id, voter="U2", decision=A) is True
    assert await store.votes(req.id) == []
    assert await store.withdraw_vote(req.id, voter="U2", decision=A) is False  # already
    assert await store.withdraw_vote("0" * 32, voter="U2", decision=A) is False


async def test_vote_after_withdrawal_counts_again(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    await store.cast_vote(req.id, voter="U2", decision=A, via=Via.REACTION)
    await store.withdraw_vote(req.id, voter="U2", decision=A)
    later = clock.advance()
    vote, changed = await store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON)
    assert changed is True
    assert vote == Vote(voter="U2", decision=A, via=Via.BUTTON, at=later)
    assert await store.votes(req.id) == [vote]


async def test_votes_oldest_first_without_withdrawn(store: Store, clock: FakeClock) -> None:
    req = await pending(store)
    other = await pending(store, "other")
    cast: dict[str, Vote] = {}
    for voter, decision in (("U4", A), ("U2", D), ("U3", A), ("U5", A)):
        clock.advance()
        cast[voter], _ = await store.cast_vote(
            req.id, voter=voter, decision=decision, via=Via.BUTTON
        )
    await store.cast_vote(other.id, voter="U9", decision=A, via=Via.BUTTON)
    await store.withdraw_vote(req.id, voter="U3", decision=A)
    assert await store.votes(req.id) == [cast["U4"], cast["U2"], cast["U5"]]
    # Changing a vote makes it the newest.
    clock.advance()
    changed, _ = await store.cast_vote(req.id, voter="U4", decision=D, via=Via.BUTTON)
    assert await store.votes(req.id) == [cast["U2"], cast["U5"], changed]
    assert [v.voter for v in await store.votes(other.id)] == ["U9"]
    assert await store.votes("0" * 32) == []


# -- races -------------------------------------------------------------------------------


async def test_concurrent_identical_casts_exactly_one_changed(
    store: Store, migrated_url: str
) -> None:
    """Slack retries and double clicks, from two engines (two replicas)."""
    other = Store.from_url(migrated_url)
    try:
        req = await pending(store)
        for n in range(5):
            voter = f"U{n}"
            results = await asyncio.gather(
                *(
                    (store if i % 2 else other).cast_vote(
                        req.id, voter=voter, decision=A, via=Via.REACTION
                    )
                    for i in range(10)
                )
            )
            assert [changed for _, changed in results].count(True) == 1
            assert len({vote for vote, _ in results}) == 1
        assert len(await store.votes(req.id)) == 5
    finally:
        await other.close()


async def test_concurrent_casts_by_different_voters_all_recorded(
    store: Store, migrated_url: str
) -> None:
    other = Store.from_url(migrated_url)
    try:
        req = await pending(store)
        results = await asyncio.gather(
            *(
                (store if i % 2 else other).cast_vote(
                    req.id, voter=f"U{i}", decision=A if i % 3 else D, via=Via.BUTTON
                )
                for i in range(12)
            )
        )
        assert all(changed for _, changed in results)
        votes = await store.votes(req.id)
        assert {v.voter for v in votes} == {f"U{i}" for i in range(12)}
        assert {v.voter: v.decision for v in votes} == {
            f"U{i}": A if i % 3 else D for i in range(12)
        }
    finally:
        await other.close()


async def test_concurrent_withdrawals_exactly_one(store: Store, migrated_url: str) -> None:
    other = Store.from_url(migrated_url)
    try:
        req = await pending(store)
        await store.cast_vote(req.id, voter="U2", decision=A, via=Via.REACTION)
        results = await asyncio.gather(
            *(
                (store if i % 2 else other).withdraw_vote(req.id, voter="U2", decision=A)
                for i in range(10)
            )
        )
        assert results.count(True) == 1
        assert await store.votes(req.id) == []
    finally:
        await other.close()


# -- expiry ------------------------------------------------------------------------------


async def test_due_expiries_ordering_limit_and_status(store: Store, clock: FakeClock) -> None:
    now = clock.now
    late = await pending(store, "late", expires_at=now - timedelta(minutes=1))
    early = await pending(store, "early", expires_at=now - timedelta(hours=2))
    exact = await pending(store, "exact", expires_at=now)
    await pending(store, "future", expires_at=now + timedelta(seconds=1))
    await pending(store, "never")  # no expiry
    await pending(store, "received", expires_at=now - timedelta(hours=3), status=S.RECEIVED)
    decided = await pending(store, "decided", expires_at=now - timedelta(hours=4))
    assert await store.transition(decided.id, to=S.APPROVED) is not None

    due = await store.due_expiries(now)
    assert [r.id for r in due] == [early.id, late.id, exact.id]
    assert due[0] == early
    assert [r.id for r in await store.due_expiries(now, limit=2)] == [early.id, late.id]
    assert await store.due_expiries(now - timedelta(days=1)) == []
    # ``now`` in any zone means the same instant.
    in_cet = await store.due_expiries(now.astimezone(CET) - timedelta(minutes=30))
    assert [r.id for r in in_cet] == [early.id]

    assert await store.transition(early.id, to=S.EXPIRED) is not None
    assert [r.id for r in await store.due_expiries(now)] == [late.id, exact.id]


async def test_expires_at_round_trip_with_zone(store: Store) -> None:
    local = datetime(2026, 5, 1, 13, 30, 15, 123456, tzinfo=CET)
    req = await pending(store, expires_at=local)
    assert req.expires_at == local
    got = await store.get_request(req.id)
    assert got is not None
    assert got == req
    assert got.expires_at == local
    assert got.expires_at is not None
    assert got.expires_at.tzinfo is UTC
    assert got.expires_at.microsecond == 123456
    assert (await pending(store, "none")).expires_at is None

    # It can be set (or moved) when the request starts waiting for approval.
    received = await pending(store, "later", status=S.RECEIVED)
    moved = await store.transition(
        received.id, to=S.AWAITING_APPROVAL, expires_at=local + timedelta(hours=4)
    )
    assert moved is not None
    assert moved.expires_at == local + timedelta(hours=4)
    assert (await store.get_request(received.id)) == moved


async def test_naive_expiry_times_are_refused(store: Store) -> None:
    naive = datetime(2026, 5, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        await pending(store, expires_at=naive)
    with pytest.raises(ValueError, match="naive"):
        await store.due_expiries(naive)


async def test_in_memory_store_votes() -> None:
    async with fresh_store("sqlite://") as store:
        req = await pending(store, expires_at=datetime(2026, 1, 1, tzinfo=UTC))
        results = await asyncio.gather(
            *(store.cast_vote(req.id, voter="U2", decision=A, via=Via.BUTTON) for _ in range(5))
        )
        assert [changed for _, changed in results].count(True) == 1
        assert [r.id for r in await store.due_expiries(datetime(2026, 1, 2, tzinfo=UTC))] == [
            req.id
        ]


# -- migration 0002 ----------------------------------------------------------------------


def _insert_request_at_0001(url: str) -> None:
    """A request written by the 0001 schema (which has no expires_at)."""
    engine = db.create_sync_engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO requests (id, status, verb, environment, kind, target_key, "
                    "target_name, target_id, all_versions, fingerprint, requested_by, via, "
                    "created_at, updated_at) VALUES ('r1', 'awaiting_approval', 'pause', "
                    "'prod', 'journey', 'welcome', 'Welcome', 'id-welcome', false, 'f', 'U1', "
                    "'command', :at, :at)"
                ),
                {"at": datetime(2026, 5, 1, 9, 0, tzinfo=UTC).replace(tzinfo=None)},
            )
    finally:
        engine.dispose()


def _schema(url: str) -> tuple[set[str], set[str], set[str]]:
    """Tables, the columns of requests, and the index names of requests."""
    engine = db.create_sync_engine_for(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            return (
                set(insp.get_table_names()),
                {c["name"] for c in insp.get_columns("requests")},
                {ix["name"] or "" for ix in insp.get_indexes("requests")},
            )
    finally:
        engine.dispose()


def _diffs(url: str) -> list[Any]:
    engine = db.create_sync_engine_for(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


async def test_migration_0002_up_and_down(database_url: str) -> None:
    db.upgrade(database_url, "0001")
    _insert_request_at_0001(database_url)
    tables, columns, _ = _schema(database_url)
    assert "approval_votes" not in tables
    assert "expires_at" not in columns

    db.upgrade(database_url, "0002")
    assert db.current_revision(database_url) == "0002"
    tables, columns, indexes = _schema(database_url)
    assert "approval_votes" in tables
    assert "expires_at" in columns
    assert "ix_requests_status_expires_at" in indexes
    db.upgrade(database_url, "head")  # the store below speaks the newest schema
    assert _diffs(database_url) == []

    store = Store.from_url(database_url)
    try:
        old = await store.get_request("r1")
        assert old is not None
        assert old.expires_at is None
        assert old.status is S.AWAITING_APPROVAL
        _, changed = await store.cast_vote("r1", voter="U2", decision=A, via=Via.BUTTON)
        assert changed is True
    finally:
        await store.close()

    engine = db.create_sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            votes = {ix["name"]: ix for ix in inspect(conn).get_indexes("approval_votes")}
            uniques = inspect(conn).get_unique_constraints("approval_votes")
    finally:
        engine.dispose()
    assert votes["ix_approval_votes_request_id"]["column_names"] == ["request_id"]
    assert [u["column_names"] for u in uniques] == [["request_id", "voter"]]

    db.downgrade(database_url, "0001")
    assert db.current_revision(database_url) == "0001"
    tables, columns, indexes = _schema(database_url)
    assert "approval_votes" not in tables
    assert "expires_at" not in columns
    assert "ix_requests_status_expires_at" not in indexes
    assert {"uq_requests_card", "ix_requests_history", "ix_requests_status"} <= indexes

    db.upgrade(database_url)
    assert db.is_up_to_date(database_url)
    assert _diffs(database_url) == []
    store = Store.from_url(database_url)
    try:
        kept = await store.get_request("r1")  # the request survived the round trip
        assert kept is not None
        assert await store.votes("r1") == []
    finally:
        await store.close()


def test_migration_0002_offline_sql() -> None:
    import contextlib
    import io

    from alembic import command

    buffer = io.StringIO()
    config = db.alembic_config("postgresql+psycopg://u@localhost/x")
    config.output_buffer = buffer
    with contextlib.redirect_stdout(buffer):
        command.upgrade(config, "0001:0002", sql=True)
    sql = buffer.getvalue()
    assert "ALTER TABLE requests ADD COLUMN expires_at TIMESTAMP WITH TIME ZONE" in sql
    assert "CREATE TABLE approval_votes" in sql
    assert "CONSTRAINT uq_approval_votes_request_id_voter UNIQUE (request_id, voter)" in sql
