"""The store: requests, approval votes, the audit trail, Slack delivery keys, pauses and
the scheduler's jobs (DESIGN §3, §6).

Every method opens its own short transaction and returns the domain's pydantic models
(never ORM rows). State changes are single conditional ``UPDATE`` statements, so the
database decides who wins when Slack retries, two approvers click, or two replicas race.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.domain.approvals import Decision, Vote
from bot.domain.bulk import BatchStatus, TargetStatus
from bot.domain.errors import TargetBusy
from bot.domain.jobs import Job, JobKind, job_key
from bot.domain.models import PauseOptions, Schedule, TargetKind, ThenAction, Verb
from bot.domain.outbox import (
    OutboxItem,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from bot.domain.requests import (
    AuditEvent,
    ExecutionPhase,
    OperationRequest,
    PauseOutcome,
    PauseRecord,
    RequestSpec,
    RequestStatus,
    Via,
    can_transition,
    duplicate_of,
)
from bot.store.db import create_engine_for, is_memory, upgrade_engine
from bot.store.models import (
    ApprovalVoteRow,
    AuditEventRow,
    BatchRow,
    BatchTargetRow,
    JobRow,
    OutboxRow,
    PauseRow,
    ProcessedSlackEventRow,
    RequestRow,
    ScheduleSnapshotRow,
    as_utc,
    to_utc,
)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class PauseClosing:
    """One pause to close in :meth:`Store.end_pauses`, with what to record about it."""

    pause_id: int
    request_id: str
    reason: str
    outcome: PauseOutcome
    cancel_keys: tuple[str, ...] = ()
    audit_action: str | None = None
    audit_detail: Mapping[str, Any] = field(default_factory=dict)
    via: Via = Via.SCHEDULER


#: Statuses of requests that were started and not finished (recovery after a restart).
UNFINISHED = (RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.EXECUTING)

#: Columns :meth:`Store.transition` may set along with the status.
TRANSITION_FIELDS = frozenset(
    {
        "state_before",
        "state_after",
        "provider_request_id",
        "error",
        "pause_ends_at",
        "expires_at",
        "channel",
        "card_ts",
        "owner",
        "lease_until",
        "execution_phase",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- rows -> domain models -------------------------------------------------------------


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _request(row: RequestRow) -> OperationRequest:
    pause = None if row.pause_options is None else PauseOptions.model_validate(row.pause_options)
    spec = RequestSpec(
        verb=Verb(row.verb),
        environment=row.environment,
        kind=TargetKind(row.kind),
        key=row.target_key,
        name=row.target_name,
        target_id=row.target_id,
        version=row.version,
        all_versions=row.all_versions,
        extend=row.extends_pause,
        pause=pause,
    )
    return OperationRequest(
        id=row.id,
        spec=spec,
        status=RequestStatus(row.status),
        requested_by=row.requested_by,
        via=Via(row.via),
        reason=row.reason,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        channel=row.channel,
        card_ts=row.card_ts,
        state_before=row.state_before,
        state_after=row.state_after,
        provider_request_id=row.provider_request_id,
        error=row.error,
        pause_ends_at=_opt_utc(row.pause_ends_at),
        expires_at=_opt_utc(row.expires_at),
        pause_outcome=None
        if row.pause_outcome is None
        else PauseOutcome.model_validate(row.pause_outcome),
        owner=row.owner,
        lease_until=_opt_utc(row.lease_until),
        execution_phase=None
        if row.execution_phase is None
        else ExecutionPhase(row.execution_phase),
    )


def _vote(row: ApprovalVoteRow) -> Vote:
    return Vote(
        voter=row.voter, decision=Decision(row.decision), via=Via(row.via), at=as_utc(row.at)
    )


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        request_id=row.request_id,
        at=as_utc(row.at),
        actor=row.actor,
        action=row.action,
        via=Via(row.via),
        detail=dict(row.detail or {}),
    )


def _pause(row: PauseRow) -> PauseRecord:
    return PauseRecord(
        id=row.id,
        request_id=row.request_id,
        environment=row.environment,
        kind=TargetKind(row.kind),
        key=row.key,
        name=row.name,
        version=row.version,
        all_versions=row.all_versions,
        paused_by=row.paused_by,
        started_at=as_utc(row.started_at),
        ends_at=_opt_utc(row.ends_at),
        then=ThenAction(row.then_action),
        channel=row.channel,
        card_ts=row.card_ts,
        active=row.active,
    )


def _batch_hold(target: BatchTargetRow, batch: BatchRow) -> PauseRecord:
    """A target a bulk pause paused and still holds, as the pause people see."""
    options = PauseOptions.model_validate(batch.pause_options or {})
    return PauseRecord(
        id=target.id,
        request_id="",
        batch_id=batch.id,
        environment=batch.environment,
        kind=TargetKind(target.kind),
        key=target.key,
        name=target.name,
        version=target.version,
        paused_by=batch.requested_by,
        started_at=as_utc(batch.created_at),
        ends_at=_opt_utc(batch.ends_at) if batch.ended_at is None else None,
        then=options.then,
        channel=batch.channel,
        card_ts=batch.card_ts,
    )


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        key=row.key,
        due_at=as_utc(row.due_at),
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        owner=row.owner,
        locked_until=_opt_utc(row.locked_until),
        done_at=_opt_utc(row.done_at),
        last_error=row.last_error,
    )


def due_select(
    *,
    dialect: str,
    now: datetime,
    limit: int,
    kinds: Collection[JobKind] | None = None,
) -> Select[Any]:
    """The ids of up to ``limit`` jobs due at ``now`` and not leased, oldest due first:
    ``SELECT id FROM jobs WHERE done_at IS NULL AND due_at <= now AND (locked_until IS NULL
    OR locked_until < now) ORDER BY due_at, id LIMIT n``, a range scan of the partial index
    ``ix_jobs_pending_due_at`` from its start up to ``now`` (cost: the due and leased jobs,
    not all pending ones). On PostgreSQL ``FOR UPDATE SKIP LOCKED``: concurrent claimers
    pass over each other's rows instead of queueing behind them, and a row another claimer
    committed meanwhile is re-checked and dropped.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    at = to_utc(now)
    due = (
        select(JobRow.id)
        .where(
            JobRow.done_at.is_(None),
            JobRow.due_at <= at,
            or_(JobRow.locked_until.is_(None), JobRow.locked_until < at),
        )
        .order_by(JobRow.due_at, JobRow.id)
        .limit(limit)
    )
    if kinds is not None:
        due = due.where(JobRow.kind.in_(sorted(JobKind(k).value for k in kinds)))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return due


def claim_statement(
    *,
    dialect: str,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: Collection[JobKind] | None = None,
) -> Update:
    """The one statement that leases up to ``limit`` due jobs (:func:`due_select`) to
    ``owner``: ``UPDATE jobs SET owner, locked_until = now + lease, attempts = attempts + 1
    WHERE id IN (due_select) RETURNING *``. SQLite has no row locks and needs none: the
    store's ``BEGIN IMMEDIATE`` makes claimers take turns.
    """
    due = due_select(dialect=dialect, now=now, limit=limit, kinds=kinds)
    return (
        update(JobRow)
        .where(JobRow.id.in_(due.scalar_subquery()))
        .values(owner=owner, locked_until=to_utc(now) + lease, attempts=JobRow.attempts + 1)
        .returning(JobRow)
        .execution_options(synchronize_session=False)
    )


def _outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        stream=row.stream,
        kind=OutboxKind(row.kind),
        channel=row.channel,
        thread_ts=row.thread_ts,
        request_id=row.request_id,
        batch_id=row.batch_id,
        payload=dict(row.payload or {}),
        priority=row.priority,
        version=row.version,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        owner=row.owner,
        lease_until=_opt_utc(row.lease_until),
        next_attempt_at=as_utc(row.next_attempt_at),
        sent_ts=row.sent_ts,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
    )


_UNSENT = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


def outbox_due_select(
    *,
    dialect: str,
    now: datetime,
    due_by: datetime,
    limit: int,
    kinds: Collection[OutboxKind] | None = None,
) -> Select[Any]:
    """The ids of up to ``limit`` outbox rows a sender may take at ``now``: pending and due
    by ``due_by``, or left ``sending`` by a sender whose lease ran out; and first in their
    stream (no earlier unsent row in it), except notices, which a sender takes together
    (one summary). Most urgent first (priority), then oldest. PostgreSQL: ``FOR UPDATE
    SKIP LOCKED``, as :func:`due_select`; SQLite: the store's ``BEGIN IMMEDIATE``.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    at, by = to_utc(now), to_utc(due_by)
    earlier = aliased(OutboxRow)
    first_in_stream = ~exists(
        select(earlier.id).where(
            earlier.stream == OutboxRow.stream,
            earlier.id < OutboxRow.id,
            earlier.status.in_(_UNSENT),
        )
    )
    due = (
        select(OutboxRow.id)
        .where(
            or_(
                and_(
                    OutboxRow.status == OutboxStatus.PENDING.value,
                    OutboxRow.next_attempt_at <= by,
                ),
                and_(OutboxRow.status == OutboxStatus.SENDING.value, OutboxRow.lease_until < at),
            ),
            or_(OutboxRow.kind == OutboxKind.NOTICE.value, first_in_stream),
        )
        .order_by(OutboxRow.priority, OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
    )
    if kinds is not None:
        due = due.where(OutboxRow.kind.in_(sorted(OutboxKind(k).value for k in kinds)))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True, of=OutboxRow)
    return due


def allowed_sources(to: RequestStatus) -> frozenset[RequestStatus]:
    """Every status the state machine lets move to ``to``."""
    return frozenset(s for s in RequestStatus if can_transition(s, to))


#: The statuses of a request that is changing its target (the in-flight index's).
IN_FLIGHT = frozenset({RequestStatus.RECEIVED, RequestStatus.EXECUTING})


def _batch_busy(batch_id: str, what: str) -> TargetBusy:
    return TargetBusy(
        f"Batch {batch_id} is changing {what} right now; wait for it to finish (see its "
        "card), then try again."
    )


async def _batch_changing(
    session: AsyncSession, environment: str, kind: str, key: str
) -> str | None:
    """The running batch that has still to act on this target, if any."""
    stmt = (
        select(BatchRow.id)
        .join(BatchTargetRow, BatchTargetRow.batch_id == BatchRow.id)
        .where(
            BatchRow.status == BatchStatus.EXECUTING.value,
            BatchRow.environment == environment,
            BatchTargetRow.kind == kind,
            BatchTargetRow.key == key,
            BatchTargetRow.act.is_(True),
            BatchTargetRow.status == TargetStatus.PENDING.value,
        )
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def target_lock_key(environment: str, kind: str, key: str) -> str:
    """What :func:`_lock_target` locks: one target of one environment."""
    return f"{environment}/{kind}:{key}"


async def _lock_target(session: AsyncSession, environment: str, kind: str, key: str) -> None:
    """On PostgreSQL, hold a transaction-scoped advisory lock on one target, so a batch's
    check that no request is changing a target and a request's check that no batch holds it
    take turns (READ COMMITTED would let both pass at once). SQLite needs none: every
    transaction there is ``BEGIN IMMEDIATE``, one at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:target, 0))"),
        {"target": target_lock_key(environment, kind, key)},
    )


def _busy(what: str) -> TargetBusy:
    return TargetBusy(
        f"Another request is already changing {what}; wait for it to finish (see its card), "
        "then try again."
    )


class Store:
    """Async repository over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # An in-memory SQLite database is one shared connection: take turns on it.
        url = engine.url
        self._lock = asyncio.Lock() if is_memory(url) else None
        self._needs_schema = False
        # The transaction of the innermost :meth:`atomic` block of the running task.
        self._ambient: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar(
            f"store_tx_{id(self)}", default=None
        )
        # What to run once the innermost :meth:`atomic` block of the running task commits.
        self._committed: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = (
            contextvars.ContextVar(f"store_committed_{id(self)}", default=None)
        )

    @classmethod
    def from_url(cls, database_url: str, *, clock: Clock = utcnow) -> Store:
        """A store on ``database_url``, whose schema must be migrated already
        (:func:`bot.store.db.upgrade`). An in-memory database (``sqlite://``) starts empty:
        its schema is created on first use."""
        store = cls(create_engine_for(database_url), clock=clock)
        store._needs_schema = is_memory(database_url)
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    def now(self) -> datetime:
        return to_utc(self._clock())

    @contextlib.asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """Make every store call in this block one transaction: all committed, or none.

        A state change and what it must tell people (the Slack outbox) are written in one
        ``async with store.atomic():`` so a crash can lose neither without the other. Calls
        inside run in savepoints of the one transaction (a method that catches a conflict
        rolls back only its own part). Nested blocks join the outer one. Keep the block
        short: no provider or Slack calls inside (it holds the database's write lock).
        """
        if self._ambient.get() is not None:
            yield
            return
        hooks: list[Callable[[], Awaitable[None]]] = []
        async with self._tx() as session:
            token = self._ambient.set(session)
            hooks_token = self._committed.set(hooks)
            try:
                yield
            finally:
                self._committed.reset(hooks_token)
                self._ambient.reset(token)
        for hook in hooks:
            await hook()

    async def when_committed(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once what was written so far is committed: at once outside
        :meth:`atomic`, else after its block commits (never if it rolls back)."""
        hooks = self._committed.get()
        if hooks is None:
            await callback()
        else:
            hooks.append(callback)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, for the stores that share this one's engine
        (:class:`bot.store.batches.BatchStore`): committed on success, and inside
        :meth:`atomic` a savepoint of its transaction, like every method here."""
        async with self._tx() as session:
            yield session

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction, committed on success (inside :meth:`atomic`:
        a savepoint of its transaction)."""
        ambient = self._ambient.get()
        if ambient is not None:
            async with ambient.begin_nested():
                yield ambient
            return
        lock = self._lock
        if lock is not None:
            await lock.acquire()
        try:
            if self._needs_schema:
                await upgrade_engine(self.engine)
                self._needs_schema = False
            async with self._sessions() as session, session.begin():
                yield session
        finally:
            if lock is not None:
                lock.release()

    # -- requests --------------------------------------------------------------------

    async def create_request(
        self,
        *,
        spec: RequestSpec,
        requested_by: str,
        via: Via,
        reason: str | None,
        channel: str | None,
        status: RequestStatus = RequestStatus.RECEIVED,
        expires_at: datetime | None = None,
    ) -> OperationRequest:
        """Record a new request; ``expires_at`` is when a pending approval expires: the
        scheduler's ``approval_expiry`` job for it is written in the same transaction."""
        now = self.now()
        row = RequestRow(
            id=uuid.uuid4().hex,
            status=status.value,
            verb=spec.verb.value,
            environment=spec.environment,
            kind=spec.kind.value,
            target_key=spec.key,
            target_name=spec.name,
            target_id=spec.target_id,
            version=spec.version,
            all_versions=spec.all_versions,
            extends_pause=spec.extend,
            pause_options=None if spec.pause is None else spec.pause.model_dump(mode="json"),
            fingerprint=spec.fingerprint(),
            requested_by=requested_by,
            via=via.value,
            reason=reason,
            created_at=now,
            updated_at=now,
            channel=channel,
            expires_at=None if expires_at is None else to_utc(expires_at),
        )
        try:
            async with self._tx() as session:
                if status in IN_FLIGHT:  # a running batch holds the target until it acts
                    await _lock_target(session, spec.environment, spec.kind.value, spec.key)
                    batch_id = await _batch_changing(
                        session, spec.environment, spec.kind.value, spec.key
                    )
                    if batch_id is not None:
                        raise _batch_busy(batch_id, spec.target_label())
                session.add(row)
                await session.flush()  # the in-flight index refuses a second request here
                if row.expires_at is not None:
                    await session.execute(
                        self._upsert_job(
                            kind=JobKind.APPROVAL_EXPIRY,
                            key=job_key(JobKind.APPROVAL_EXPIRY, row.id),
                            due_at=row.expires_at,
                            payload={"request_id": row.id},
                        )
                    )
        except IntegrityError as exc:
            if status is RequestStatus.AWAITING_APPROVAL:
                first = await self.pending_approval(spec)
                if first is not None:
                    raise duplicate_of(first) from exc
            raise _busy(spec.target_label()) from exc
        return _request(row)

    async def request_changing(
        self, environment: str, kind: TargetKind, key: str
    ) -> OperationRequest | None:
        """The single-target request changing this target right now (in flight), if any."""
        stmt = select(RequestRow).where(
            RequestRow.status.in_(sorted(s.value for s in IN_FLIGHT)),
            RequestRow.environment == environment,
            RequestRow.kind == kind.value,
            RequestRow.target_key == key,
        )
        async with self._tx() as session:
            await _lock_target(session, environment, kind.value, key)
            row = (await session.execute(stmt)).scalars().first()
            return None if row is None else _request(row)

    async def pending_approval(self, spec: RequestSpec) -> OperationRequest | None:
        """The request awaiting approval for exactly ``spec`` (same fingerprint), if any."""
        stmt = select(RequestRow).where(
            RequestRow.status == RequestStatus.AWAITING_APPROVAL.value,
            RequestRow.environment == spec.environment,
            RequestRow.kind == spec.kind.value,
            RequestRow.target_key == spec.key,
            RequestRow.fingerprint == spec.fingerprint(),
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().first()
            return None if row is None else _request(row)

    async def get_request(self, request_id: str) -> OperationRequest | None:
        async with self._tx() as session:
            row = await session.get(RequestRow, request_id)
            return None if row is None else _request(row)

    async def transition(
        self,
        request_id: str,
        *,
        to: RequestStatus,
        expected: Collection[RequestStatus] | None = None,
        **fields: Any,
    ) -> OperationRequest | None:
        """Move the request to ``to`` if its status is still one of ``expected``.

        ``expected`` defaults to every status the state machine lets move to ``to``; it
        may only narrow that set. One conditional ``UPDATE``: when another writer moved the
        request first (or it does not exist), nothing changes and the answer is None.
        """
        unknown = set(fields) - TRANSITION_FIELDS
        if unknown:
            raise ValueError(
                f"transition() cannot set {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(TRANSITION_FIELDS))}"
            )
        sources = allowed_sources(to)
        allowed = sources if expected is None else frozenset(expected)
        refused = allowed - sources
        if refused:
            names = ", ".join(sorted(s.value for s in refused))
            raise ValueError(f"the state machine does not allow {names} -> {to.value}")
        if not allowed:
            raise ValueError(f"no status may move to {to.value}")
        values: dict[str, Any] = dict(fields)
        for name in ("pause_ends_at", "expires_at", "lease_until"):
            if values.get(name) is not None:
                values[name] = to_utc(values[name])
        stmt = (
            update(RequestRow)
            .where(
                RequestRow.id == request_id,
                RequestRow.status.in_(sorted(s.value for s in allowed)),
            )
            .values(status=to.value, updated_at=self.now(), **values)
            .returning(RequestRow)
            .execution_options(synchronize_session=False)
        )
        try:
            async with self._tx() as session:
                if to in IN_FLIGHT:  # e.g. approved -> executing: not while a batch holds it
                    current = (
                        await session.execute(
                            select(
                                RequestRow.status,
                                RequestRow.environment,
                                RequestRow.kind,
                                RequestRow.target_key,
                            ).where(RequestRow.id == request_id)
                        )
                    ).one_or_none()  # columns, not the row: RETURNING below reads it fresh
                    if current is not None and RequestStatus(current.status) not in IN_FLIGHT:
                        await _lock_target(
                            session, current.environment, current.kind, current.target_key
                        )
                        batch_id = await _batch_changing(
                            session, current.environment, current.kind, current.target_key
                        )
                        if batch_id is not None:
                            raise _batch_busy(batch_id, f"request {request_id}'s target")
                row = (await session.execute(stmt)).scalars().one_or_none()
                return None if row is None else _request(row)
        except IntegrityError as exc:
            raise _busy(f"request {request_id}'s target") from exc

    async def set_card(self, request_id: str, *, channel: str, card_ts: str) -> OperationRequest:
        """Remember the request card (thread root). LookupError for an unknown request."""
        stmt = (
            update(RequestRow)
            .where(RequestRow.id == request_id)
            .values(channel=channel, card_ts=card_ts, updated_at=self.now())
            .returning(RequestRow)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            if row is None:
                raise LookupError(f"no request {request_id}")
            return _request(row)

    async def claim_card_post(self, request_id: str, *, idle_before: datetime) -> bool:
        """Claim the posting of a missing card: the request (no card, untouched since
        ``idle_before``) is touched, so another recovery pass sees it busy and leaves it.
        False when it has a card, or someone else touched it since."""
        stmt = (
            update(RequestRow)
            .where(
                RequestRow.id == request_id,
                RequestRow.card_ts.is_(None),
                RequestRow.updated_at <= to_utc(idle_before),
            )
            .values(updated_at=self.now())
            .returning(RequestRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def find_by_card(self, *, channel: str, card_ts: str) -> OperationRequest | None:
        stmt = select(RequestRow).where(
            RequestRow.channel == channel, RequestRow.card_ts == card_ts
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _request(row)

    async def unfinished_requests(self) -> list[OperationRequest]:
        """Requests received, approved or executing, oldest first (recovery at start-up)."""
        stmt = (
            select(RequestRow)
            .where(RequestRow.status.in_([s.value for s in UNFINISHED]))
            .order_by(RequestRow.created_at, RequestRow.id)
        )
        async with self._tx() as session:
            return [_request(row) for row in (await session.execute(stmt)).scalars()]

    async def awaiting_approval(self) -> list[OperationRequest]:
        """Requests awaiting approval, oldest first (recovery re-counts their votes)."""
        stmt = (
            select(RequestRow)
            .where(RequestRow.status == RequestStatus.AWAITING_APPROVAL.value)
            .order_by(RequestRow.created_at, RequestRow.id)
        )
        async with self._tx() as session:
            return [_request(row) for row in (await session.execute(stmt)).scalars()]

    # -- execution leases ------------------------------------------------------------

    def _held(self, request_id: str, owner: str) -> Any:
        return (
            RequestRow.id == request_id,
            RequestRow.status == RequestStatus.EXECUTING.value,
            RequestRow.owner == owner,
        )

    async def mark_maybe_sent(self, request_id: str, *, owner: str) -> bool:
        """Just before the provider call: record that it may have been sent. False when
        ``owner`` no longer holds the executing request (taken over): do not send."""
        stmt = (
            update(RequestRow)
            .where(*self._held(request_id, owner))
            .values(execution_phase=ExecutionPhase.MAYBE_SENT.value)
            .returning(RequestRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def renew_execution(self, request_id: str, *, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease on an executing request; False when it is not held."""
        stmt = (
            update(RequestRow)
            .where(*self._held(request_id, owner))
            .values(lease_until=to_utc(until))
            .returning(RequestRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def take_over(
        self, request_id: str, *, owner: str, now: datetime, until: datetime
    ) -> OperationRequest | None:
        """Lease an executing request whose lease ran out at ``now`` (or that has none: a
        request from before leases) to ``owner`` until ``until``. One conditional
        ``UPDATE``: None while its owner still holds it, or when another process took it
        over first."""
        stmt = (
            update(RequestRow)
            .where(
                RequestRow.id == request_id,
                RequestRow.status == RequestStatus.EXECUTING.value,
                or_(RequestRow.lease_until.is_(None), RequestRow.lease_until < to_utc(now)),
            )
            .values(owner=owner, lease_until=to_utc(until))
            .returning(RequestRow)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _request(row)

    async def due_expiries(self, now: datetime, *, limit: int = 100) -> list[OperationRequest]:
        """Requests awaiting approval whose ``expires_at`` is at or before ``now``, the
        oldest expiry first (at most ``limit``). Moving them on is the caller's conditional
        transition: an approval that lands first wins."""
        stmt = (
            select(RequestRow)
            .where(
                RequestRow.status == RequestStatus.AWAITING_APPROVAL.value,
                RequestRow.expires_at <= to_utc(now),
            )
            .order_by(RequestRow.expires_at, RequestRow.id)
            .limit(limit)
        )
        async with self._tx() as session:
            return [_request(row) for row in (await session.execute(stmt)).scalars()]

    # -- approval votes ------------------------------------------------------------------

    async def cast_vote(
        self, request_id: str, *, voter: str, decision: Decision, via: Via
    ) -> tuple[Vote, bool]:
        """Record ``voter``'s vote on a request: their current vote, and whether it changed.

        One row per (request, voter), written by a single ``INSERT ... ON CONFLICT DO
        UPDATE``: a new vote is inserted; a different decision, or any vote after a
        withdrawal, replaces it (decision, via, time); the same active decision again
        changes nothing (False). Concurrent identical casts: exactly one True.
        LookupError for an unknown request.
        """
        dialect = self.engine.dialect.name
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        values = ins(ApprovalVoteRow).values(
            request_id=request_id,
            voter=voter,
            decision=decision.value,
            via=via.value,
            at=self.now(),
            withdrawn_at=None,
        )
        new = values.excluded
        upsert = values.on_conflict_do_update(
            index_elements=["request_id", "voter"],
            set_={"decision": new.decision, "via": new.via, "at": new.at, "withdrawn_at": None},
            where=or_(
                ApprovalVoteRow.decision != new.decision,
                ApprovalVoteRow.withdrawn_at.is_not(None),
            ),
        ).returning(ApprovalVoteRow)
        current = select(ApprovalVoteRow).where(
            ApprovalVoteRow.request_id == request_id, ApprovalVoteRow.voter == voter
        )
        try:
            async with self._tx() as session:
                row = (await session.execute(upsert)).scalars().one_or_none()
                if row is not None:
                    return _vote(row), True
                return _vote((await session.execute(current)).scalars().one()), False
        except IntegrityError as exc:  # the foreign key: no such request
            raise LookupError(f"no request {request_id}") from exc

    async def withdraw_vote(self, request_id: str, *, voter: str, decision: Decision) -> bool:
        """Withdraw ``voter``'s active vote if it is ``decision`` (a removed approve
        reaction withdraws only an approval). True if a vote was withdrawn."""
        stmt = (
            update(ApprovalVoteRow)
            .where(
                ApprovalVoteRow.request_id == request_id,
                ApprovalVoteRow.voter == voter,
                ApprovalVoteRow.decision == decision.value,
                ApprovalVoteRow.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=self.now())
            .returning(ApprovalVoteRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def votes(self, request_id: str) -> list[Vote]:
        """The active (not withdrawn) votes on a request, oldest first."""
        stmt = (
            select(ApprovalVoteRow)
            .where(
                ApprovalVoteRow.request_id == request_id,
                ApprovalVoteRow.withdrawn_at.is_(None),
            )
            .order_by(ApprovalVoteRow.at, ApprovalVoteRow.id)
        )
        async with self._tx() as session:
            return [_vote(row) for row in (await session.execute(stmt)).scalars()]

    # -- audit trail ---------------------------------------------------------------------

    async def record(
        self,
        *,
        actor: str,
        action: str,
        via: Via,
        request_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
        environment: str | None = None,
        kind: TargetKind | str | None = None,
        target_key: str | None = None,
    ) -> AuditEvent:
        """Append to the audit trail; the target columns default to the request's."""
        async with self._tx() as session:
            if request_id is not None and None in (environment, kind, target_key):
                found = (
                    await session.execute(
                        select(
                            RequestRow.environment, RequestRow.kind, RequestRow.target_key
                        ).where(RequestRow.id == request_id)
                    )
                ).one_or_none()
                if found is not None:
                    environment = environment if environment is not None else found[0]
                    kind = kind if kind is not None else found[1]
                    target_key = target_key if target_key is not None else found[2]
            row = AuditEventRow(
                request_id=request_id,
                at=self.now(),
                actor=actor,
                action=action,
                via=via.value,
                detail=dict(detail or {}),
                environment=environment,
                kind=None if kind is None else str(kind),
                target_key=target_key,
            )
            session.add(row)
            await session.flush()
            return _event(row)

    async def history(
        self, *, environment: str, kind: TargetKind | str, target_key: str, limit: int = 50
    ) -> list[AuditEvent]:
        """The audit trail of one target, newest first."""
        stmt = (
            select(AuditEventRow)
            .where(
                AuditEventRow.environment == environment,
                AuditEventRow.kind == str(kind),
                AuditEventRow.target_key == target_key,
            )
            .order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc())
            .limit(limit)
        )
        async with self._tx() as session:
            return [_event(row) for row in (await session.execute(stmt)).scalars()]

    async def audit_since(self, since: datetime | None) -> list[AuditEvent]:
        """Every audit event at or after ``since`` (all of them for None), oldest first."""
        stmt = select(AuditEventRow).order_by(AuditEventRow.at, AuditEventRow.id)
        if since is not None:
            stmt = stmt.where(AuditEventRow.at >= to_utc(since))
        async with self._tx() as session:
            return [_event(row) for row in (await session.execute(stmt)).scalars()]

    async def request_events(self, request_id: str) -> list[AuditEvent]:
        """The audit trail of one request, oldest first."""
        stmt = (
            select(AuditEventRow)
            .where(AuditEventRow.request_id == request_id)
            .order_by(AuditEventRow.at, AuditEventRow.id)
        )
        async with self._tx() as session:
            return [_event(row) for row in (await session.execute(stmt)).scalars()]

    # -- Slack deliveries (exactly-once) -------------------------------------------------

    async def claim_event(self, key: str) -> bool:
        """True the first time ``key`` is seen (in any process), False for a duplicate."""
        values = {"key": key, "received_at": self.now()}
        dialect = self.engine.dialect.name
        try:
            async with self._tx() as session:
                if dialect in ("postgresql", "sqlite"):
                    ins = pg_insert if dialect == "postgresql" else sqlite_insert
                    stmt = (
                        ins(ProcessedSlackEventRow)
                        .values(**values)
                        .on_conflict_do_nothing(index_elements=["key"])
                        .returning(ProcessedSlackEventRow.key)
                    )
                    return (await session.execute(stmt)).first() is not None
                await session.execute(insert(ProcessedSlackEventRow).values(**values))
                return True
        except IntegrityError:
            return False

    async def prune_events(self, older_than: datetime) -> int:
        """Forget delivery keys received before ``older_than``; how many were removed."""
        stmt = delete(ProcessedSlackEventRow).where(
            ProcessedSlackEventRow.received_at < to_utc(older_than)
        )
        async with self._tx() as session:
            result = await session.execute(stmt)
            return int(getattr(result, "rowcount", 0) or 0)

    # -- pauses --------------------------------------------------------------------------

    async def open_pause(
        self, *, request: OperationRequest, started_at: datetime, ends_at: datetime | None
    ) -> PauseRecord:
        """Start watching the pause made by ``request``. Idempotent: a request has at most
        one pause, and asking again returns the one already recorded."""
        spec = request.spec
        then = spec.pause.then if spec.pause is not None else ThenAction.RESUME
        existing = await self.pause_for_request(request.id)
        if existing is not None:
            return existing
        row = PauseRow(
            request_id=request.id,
            environment=spec.environment,
            kind=spec.kind.value,
            key=spec.key,
            name=spec.name,
            version=spec.version,
            all_versions=spec.all_versions,
            paused_by=request.requested_by,
            started_at=to_utc(started_at),
            ends_at=None if ends_at is None else to_utc(ends_at),
            then_action=then.value,
            channel=request.channel,
            card_ts=request.card_ts,
            active=True,
        )
        try:
            async with self._tx() as session:
                session.add(row)
                await session.flush()
                return _pause(row)
        except IntegrityError:
            existing = await self.pause_for_request(request.id)
            if existing is None:
                raise
            return existing

    async def close_pause(self, pause_id: int, *, reason: str) -> PauseRecord | None:
        """Mark an active pause closed; None when it was not active (someone else won)."""
        stmt = (
            update(PauseRow)
            .where(PauseRow.id == pause_id, PauseRow.active.is_(True))
            .values(active=False, closed_at=self.now(), close_reason=reason)
            .returning(PauseRow)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _pause(row)

    async def get_pause(self, pause_id: int) -> PauseRecord | None:
        async with self._tx() as session:
            row = await session.get(PauseRow, pause_id)
            return None if row is None else _pause(row)

    async def set_pause_end(self, pause_id: int, *, ends_at: datetime | None) -> PauseRecord | None:
        """Move (or clear) the end of an active pause; None when it is no longer active."""
        stmt = (
            update(PauseRow)
            .where(PauseRow.id == pause_id, PauseRow.active.is_(True))
            .values(ends_at=None if ends_at is None else to_utc(ends_at))
            .returning(PauseRow)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _pause(row)

    async def active_pauses(self, *, environment: str | None = None) -> list[PauseRecord]:
        """Active pauses, the soonest to end first, open-ended ones last: those of single
        requests, and the targets a bulk pause paused and still holds (read from the batch
        tables; ``batch_id`` set), unless a single request's pause is on the same target."""
        stmt = select(PauseRow).where(PauseRow.active.is_(True))
        holds = (
            select(BatchTargetRow, BatchRow)
            .join(BatchRow, BatchRow.id == BatchTargetRow.batch_id)
            .where(
                BatchTargetRow.holds_pause.is_(True),
                BatchRow.verb == Verb.PAUSE.value,
            )
        )
        if environment is not None:
            stmt = stmt.where(PauseRow.environment == environment)
            holds = holds.where(BatchRow.environment == environment)
        async with self._tx() as session:
            pauses = [_pause(row) for row in (await session.execute(stmt)).scalars()]
            held = (await session.execute(holds)).all()
        single = {(p.environment, p.kind, p.key) for p in pauses}
        for target, batch in held:
            if (batch.environment, TargetKind(target.kind), target.key) not in single:
                pauses.append(_batch_hold(target, batch))
        far = datetime.max.replace(tzinfo=UTC)
        pauses.sort(key=lambda p: (p.ends_at is None, p.ends_at or far, p.batch_id or "", p.id))
        return pauses

    async def pause_for_request(self, request_id: str) -> PauseRecord | None:
        stmt = select(PauseRow).where(PauseRow.request_id == request_id)
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _pause(row)

    async def active_pause_for_target(
        self, *, environment: str, kind: TargetKind | str, key: str
    ) -> PauseRecord | None:
        """The active pause on a target (the latest one, should there be several)."""
        stmt = (
            select(PauseRow)
            .where(
                PauseRow.active.is_(True),
                PauseRow.environment == environment,
                PauseRow.kind == str(kind),
                PauseRow.key == key,
            )
            .order_by(PauseRow.started_at.desc(), PauseRow.id.desc())
            .limit(1)
        )
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().first()
            return None if row is None else _pause(row)

    async def pauses_with_requests(
        self, pause_ids: Collection[int]
    ) -> dict[int, tuple[PauseRecord, OperationRequest]]:
        """The active ones of ``pause_ids`` with their requests, in one query."""
        if not pause_ids:
            return {}
        stmt = (
            select(PauseRow, RequestRow)
            .join(RequestRow, RequestRow.id == PauseRow.request_id)
            .where(PauseRow.id.in_(sorted(set(pause_ids))), PauseRow.active.is_(True))
        )
        async with self._tx() as session:
            rows = (await session.execute(stmt)).all()
            return {p.id: (_pause(p), _request(r)) for p, r in rows}

    async def end_pauses(self, closings: Collection[PauseClosing]) -> set[int]:
        """Close many pauses in one transaction: each pause still active is closed, its
        request gets its outcome, the audit trail a line, and its other timers are
        cancelled. The ids of the pauses this call closed (an already closed one is left
        alone: another run got there first)."""
        if not closings:
            return set()
        now = self.now()
        by_id = {c.pause_id: c for c in closings}
        close = (
            update(PauseRow)
            .where(PauseRow.id.in_(sorted(by_id)), PauseRow.active.is_(True))
            .values(active=False, closed_at=now)
            .returning(PauseRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            closed = set((await session.execute(close)).scalars())
            won = [by_id[i] for i in sorted(closed)]
            if not won:
                return closed
            pauses: Table = PauseRow.__table__  # type: ignore[assignment]
            requests: Table = RequestRow.__table__  # type: ignore[assignment]
            await session.execute(
                update(pauses)
                .where(pauses.c.id == bindparam("b_id"))
                .values(close_reason=bindparam("b_reason")),
                [{"b_id": c.pause_id, "b_reason": c.reason} for c in won],
            )
            await session.execute(
                update(requests)
                .where(requests.c.id == bindparam("b_id"))
                .values(pause_outcome=bindparam("b_outcome"), updated_at=now),
                [
                    {"b_id": c.request_id, "b_outcome": c.outcome.model_dump(mode="json")}
                    for c in won
                ],
            )
            audit = [c for c in won if c.audit_action is not None]
            if audit:
                targets = {
                    r.id: (r.environment, r.kind, r.target_key)
                    for r in (
                        await session.execute(
                            select(
                                RequestRow.id,
                                RequestRow.environment,
                                RequestRow.kind,
                                RequestRow.target_key,
                            ).where(RequestRow.id.in_([c.request_id for c in audit]))
                        )
                    ).all()
                }
                await session.execute(
                    insert(AuditEventRow),
                    [
                        {
                            "request_id": c.request_id,
                            "at": now,
                            "actor": "bot",
                            "action": c.audit_action,
                            "via": c.via.value,
                            "detail": dict(c.audit_detail),
                            "environment": targets.get(c.request_id, (None,) * 3)[0],
                            "kind": targets.get(c.request_id, (None,) * 3)[1],
                            "target_key": targets.get(c.request_id, (None,) * 3)[2],
                        }
                        for c in audit
                    ],
                )
            keys = sorted({key for c in won for key in c.cancel_keys})
            if keys:
                await session.execute(
                    update(JobRow)
                    .where(JobRow.key.in_(keys), JobRow.done_at.is_(None))
                    .values(done_at=now, last_error="cancelled", owner=None, locked_until=None)
                    .execution_options(synchronize_session=False)
                )
        return closed

    async def set_pause_outcome(self, request_id: str, outcome: PauseOutcome) -> None:
        """Record how the pause ``request_id`` made ended (or that its time is up)."""
        stmt = (
            update(RequestRow)
            .where(RequestRow.id == request_id)
            .values(pause_outcome=outcome.model_dump(mode="json"), updated_at=self.now())
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            await session.execute(stmt)

    # -- schedule snapshots --------------------------------------------------------------

    async def put_snapshot(self, account_id: int, object_id: str, schedule: Schedule) -> None:
        """Keep an automation's schedule (taken before its pause); replaces an older one."""
        dialect = self.engine.dialect.name
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        values = ins(ScheduleSnapshotRow).values(
            account_id=account_id,
            object_id=object_id.lower(),
            schedule=schedule.model_dump(mode="json"),
            taken_at=self.now(),
        )
        upsert = values.on_conflict_do_update(
            index_elements=["account_id", "object_id"],
            set_={"schedule": values.excluded.schedule, "taken_at": values.excluded.taken_at},
        )
        async with self._tx() as session:
            await session.execute(upsert)

    async def snapshots(self, account_id: int, object_ids: Collection[str]) -> dict[str, Schedule]:
        """The kept schedules of ``object_ids`` (lower-cased ids) in one query."""
        wanted = sorted({o.lower() for o in object_ids})
        if not wanted:
            return {}
        stmt = select(ScheduleSnapshotRow.object_id, ScheduleSnapshotRow.schedule).where(
            ScheduleSnapshotRow.account_id == account_id,
            ScheduleSnapshotRow.object_id.in_(wanted),
        )
        async with self._tx() as session:
            rows = (await session.execute(stmt)).all()
        return {oid: Schedule.model_validate(raw) for oid, raw in rows}

    # -- scheduled jobs ------------------------------------------------------------------

    async def schedule(
        self, *, kind: JobKind, key: str, due_at: datetime, payload: Mapping[str, Any]
    ) -> Job:
        """Schedule ``key`` at ``due_at``: one ``INSERT ... ON CONFLICT (key) DO UPDATE``.

        Scheduling a key again moves it (new kind, time and payload, attempts and error
        cleared) instead of adding a second job; a done (or cancelled) job is re-opened.
        A lease held on it is released: the holder's :meth:`complete` then answers False
        and the job runs again at its new time, so a handler may re-arm its own key.
        """
        async with self._tx() as session:
            stmt = self._upsert_job(kind=kind, key=key, due_at=due_at, payload=payload)
            return _job((await session.execute(stmt)).scalars().one())

    def _upsert_job(
        self,
        *,
        kind: JobKind,
        key: str,
        due_at: datetime,
        payload: Mapping[str, Any],
        only_if_done: bool = False,
    ) -> Any:
        """The ``INSERT ... ON CONFLICT (key) DO UPDATE`` of :meth:`schedule` (``RETURNING``
        the row) or, ``only_if_done``, of :meth:`ensure_job` (a pending job is left as it is)."""
        dialect = self.engine.dialect.name
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        values = ins(JobRow).values(
            kind=JobKind(kind).value,
            key=key,
            due_at=to_utc(due_at),
            payload=dict(payload),
            attempts=0,
            created_at=self.now(),
        )
        new = values.excluded
        stmt = values.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "kind": new.kind,
                "due_at": new.due_at,
                "payload": new.payload,
                "attempts": 0,
                "owner": None,
                "locked_until": None,
                "done_at": None,
                "last_error": None,
            },
            where=JobRow.done_at.is_not(None) if only_if_done else None,
        )
        return stmt if only_if_done else stmt.returning(JobRow)

    async def ensure_job(
        self, *, kind: JobKind, key: str, due_at: datetime, payload: Mapping[str, Any]
    ) -> Job:
        """Schedule ``key`` at ``due_at`` unless it is pending already (then it keeps its
        time and any lease on it): ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
        done_at IS NOT NULL``."""
        stmt = self._upsert_job(
            kind=kind, key=key, due_at=due_at, payload=payload, only_if_done=True
        )
        async with self._tx() as session:
            await session.execute(stmt)
            row = (await session.execute(select(JobRow).where(JobRow.key == key))).scalars().one()
            return _job(row)

    async def cancel_job(self, key: str) -> bool:
        """Mark a pending job done, ``last_error`` "cancelled". False when there is no
        pending job ``key``. A run already under way is not stopped: its
        :meth:`complete` answers False."""
        stmt = (
            update(JobRow)
            .where(JobRow.key == key, JobRow.done_at.is_(None))
            .values(done_at=self.now(), last_error="cancelled", owner=None, locked_until=None)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def claim_due(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        kinds: Collection[JobKind] | None = None,
    ) -> list[Job]:
        """Lease up to ``limit`` jobs due at ``now`` (of ``kinds``, when given) to ``owner``
        until ``now + lease``, oldest due first; each one's ``attempts`` counts this claim.

        A job leased to someone else is skipped until its lease runs out: then (its owner
        died, or hung) the next claimer takes it over. See :func:`claim_statement`.
        """
        stmt = claim_statement(
            dialect=self.engine.dialect.name,
            owner=owner,
            now=now,
            lease=lease,
            limit=limit,
            kinds=kinds,
        )
        async with self._tx() as session:
            rows = (await session.execute(stmt)).scalars().all()
            jobs = [_job(row) for row in rows]
        return sorted(jobs, key=lambda job: (job.due_at, job.id))  # RETURNING has no order

    async def complete(self, job_id: int, *, owner: str) -> bool:
        """Mark a job done if ``owner`` still holds it; False when the lease went to
        another owner, or the job was rescheduled, cancelled or completed meanwhile."""
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.done_at.is_(None))
            .values(done_at=self.now(), locked_until=None)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def complete_many(self, job_ids: Collection[int], *, owner: str) -> set[int]:
        """:meth:`complete` for many jobs in one statement; the ids recorded done."""
        if not job_ids:
            return set()
        stmt = (
            update(JobRow)
            .where(
                JobRow.id.in_(sorted(set(job_ids))),
                JobRow.owner == owner,
                JobRow.done_at.is_(None),
            )
            .values(done_at=self.now(), locked_until=None)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return set((await session.execute(stmt)).scalars())

    async def cancel_jobs(self, keys: Collection[str]) -> int:
        """:meth:`cancel_job` for many keys in one statement; how many were pending."""
        if not keys:
            return 0
        stmt = (
            update(JobRow)
            .where(JobRow.key.in_(sorted(set(keys))), JobRow.done_at.is_(None))
            .values(done_at=self.now(), last_error="cancelled", owner=None, locked_until=None)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return len((await session.execute(stmt)).all())

    async def fail(self, job_id: int, *, owner: str, error: str, retry_at: datetime | None) -> bool:
        """Record a failed run by ``owner`` (if it still holds the job): release the lease
        and try again at ``retry_at``; ``retry_at=None`` gives up (the job is marked done,
        ``last_error`` says why). False when ``owner`` no longer holds the job."""
        values: dict[str, Any] = {"owner": None, "locked_until": None, "last_error": error}
        if retry_at is None:
            values.update(done_at=self.now(), owner=owner)
        else:
            values.update(due_at=to_utc(retry_at))
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.done_at.is_(None))
            .values(**values)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def extend_lease(self, job_id: int, *, owner: str, until: datetime) -> bool:
        """Keep a long run's lease: ``locked_until = until`` if ``owner`` still holds the
        (pending) job. False when it lost it."""
        stmt = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.owner == owner, JobRow.done_at.is_(None))
            .values(locked_until=to_utc(until))
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return (await session.execute(stmt)).first() is not None

    async def job(self, key: str) -> Job | None:
        stmt = select(JobRow).where(JobRow.key == key)
        async with self._tx() as session:
            row = (await session.execute(stmt)).scalars().one_or_none()
            return None if row is None else _job(row)

    async def pending_jobs(self, kind: JobKind | None = None) -> int:
        """How many jobs are not done (of ``kind``, when given), leased ones included."""
        stmt = select(func.count()).select_from(JobRow).where(JobRow.done_at.is_(None))
        if kind is not None:
            stmt = stmt.where(JobRow.kind == JobKind(kind).value)
        async with self._tx() as session:
            return int((await session.execute(stmt)).scalar_one())

    # -- the Slack outbox ------------------------------------------------------------------

    async def enqueue_outbox(
        self,
        message: OutboxMessage,
        *,
        due_at: datetime | None = None,
        gather_since: datetime | None = None,
    ) -> int:
        """Write ``message`` to the outbox (inside :meth:`atomic`: in its transaction); its id.

        An edit of a card whose stream ends with an unsent edit bumps that row's version
        (and takes its payload) instead of adding a row; an older pending edit of the card
        further up the stream is dropped (the new one shows the latest state anyway).
        ``due_at``: not sent before then (default now). ``gather_since``: the pending rows of
        the stream written since then are held until ``due_at`` too (notices close together
        go out as one summary; a row older than that keeps its time, so nothing is held
        for ever).
        """
        now = self.now()
        due = now if due_at is None else to_utc(due_at)
        stream = message.stream
        async with self._tx() as session:
            if message.kind is OutboxKind.EDIT:
                tail = (
                    await session.execute(
                        select(OutboxRow)
                        .where(OutboxRow.stream == stream, OutboxRow.status.in_(_UNSENT))
                        .order_by(OutboxRow.id.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if tail is not None and tail.kind == OutboxKind.EDIT.value:
                    # only while still unsent: its sender may have marked it sent since the
                    # read above (READ COMMITTED), having drawn the card before this change;
                    # the edit then gets a row of its own after it
                    bumped = await session.execute(
                        update(OutboxRow)
                        .where(OutboxRow.id == tail.id, OutboxRow.status.in_(_UNSENT))
                        .values(version=OutboxRow.version + 1, payload=dict(message.payload))
                        .returning(OutboxRow.id)
                        .execution_options(synchronize_session=False)
                    )
                    if bumped.first() is not None:
                        return tail.id
                await session.execute(
                    delete(OutboxRow)
                    .where(
                        OutboxRow.stream == stream,
                        OutboxRow.kind == OutboxKind.EDIT.value,
                        OutboxRow.status == OutboxStatus.PENDING.value,
                    )
                    .execution_options(synchronize_session=False)
                )
            if gather_since is not None:
                await session.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.stream == stream,
                        OutboxRow.status == OutboxStatus.PENDING.value,
                        OutboxRow.created_at >= to_utc(gather_since),
                        OutboxRow.next_attempt_at < due,
                    )
                    .values(next_attempt_at=due)
                    .execution_options(synchronize_session=False)
                )
            row = OutboxRow(
                stream=stream,
                kind=message.kind.value,
                channel=message.channel,
                thread_ts=message.thread_ts,
                request_id=message.request_id,
                batch_id=message.batch_id,
                payload=dict(message.payload),
                priority=int(message.priority),
                version=1,
                status=OutboxStatus.PENDING.value,
                attempts=0,
                next_attempt_at=due,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return row.id

    async def claim_outbox(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        due_by: datetime | None = None,
        kinds: Collection[OutboxKind] | None = None,
    ) -> list[OutboxItem]:
        """Lease up to ``limit`` outbox rows to ``owner`` (status sending, until ``now +
        lease``; ``attempts`` counts this claim), the most urgent first: see
        :func:`outbox_due_select`. ``due_by`` (default ``now``): rows held until then are
        taken too (a sender that drains does not wait for notice windows); ``kinds``: only
        those (posts and edits have separate Slack budgets)."""
        due = outbox_due_select(
            dialect=self.engine.dialect.name,
            now=now,
            due_by=now if due_by is None else due_by,
            limit=limit,
            kinds=kinds,
        )
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.id.in_(due.scalar_subquery()))
            .values(
                status=OutboxStatus.SENDING.value,
                owner=owner,
                lease_until=to_utc(now) + lease,
                attempts=OutboxRow.attempts + 1,
            )
            .returning(OutboxRow)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            items = [_outbox(row) for row in (await session.execute(stmt)).scalars().all()]
        return sorted(items, key=lambda i: (i.priority, i.next_attempt_at, i.id))

    async def outbox_sent(self, sent: Mapping[int, int], *, owner: str, ts: str | None) -> set[int]:
        """Mark rows ``owner`` sent (``{id: version sent}``) with Slack's ``ts``; the ids
        recorded sent. A row whose version was bumped meanwhile (a newer edit) goes back to
        pending, to be sent again; a row ``owner`` no longer holds is left alone."""
        done: set[int] = set()
        async with self._tx() as session:
            for row_id, version in sorted(sent.items()):
                held = (OutboxRow.id == row_id, OutboxRow.owner == owner)
                sending = OutboxRow.status == OutboxStatus.SENDING.value
                marked = await session.execute(
                    update(OutboxRow)
                    .where(*held, sending, OutboxRow.version == version)
                    .values(status=OutboxStatus.SENT.value, sent_ts=ts, lease_until=None)
                    .returning(OutboxRow.id)
                    .execution_options(synchronize_session=False)
                )
                if marked.first() is not None:
                    done.add(row_id)
                    continue
                await session.execute(
                    update(OutboxRow)
                    .where(*held, sending)
                    .values(
                        status=OutboxStatus.PENDING.value,
                        owner=None,
                        lease_until=None,
                        next_attempt_at=self.now(),
                    )
                    .execution_options(synchronize_session=False)
                )
        return done

    async def outbox_failed(
        self, ids: Collection[int], *, owner: str, error: str, retry_at: datetime | None
    ) -> set[int]:
        """A send of rows ``owner`` holds failed: pending again from ``retry_at``, or, with
        ``retry_at=None``, given up (status failed). The ids updated."""
        if not ids:
            return set()
        values: dict[str, Any] = {"lease_until": None, "last_error": error[:2000]}
        if retry_at is None:
            values["status"] = OutboxStatus.FAILED.value
        else:
            values.update(
                status=OutboxStatus.PENDING.value, owner=None, next_attempt_at=to_utc(retry_at)
            )
        stmt = (
            update(OutboxRow)
            .where(
                OutboxRow.id.in_(sorted(set(ids))),
                OutboxRow.owner == owner,
                OutboxRow.status == OutboxStatus.SENDING.value,
            )
            .values(**values)
            .returning(OutboxRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return set((await session.execute(stmt)).scalars())

    async def renew_outbox(self, ids: Collection[int], *, owner: str, until: datetime) -> set[int]:
        """Keep the lease of rows ``owner`` is still sending (a long paced queue)."""
        if not ids:
            return set()
        stmt = (
            update(OutboxRow)
            .where(
                OutboxRow.id.in_(sorted(set(ids))),
                OutboxRow.owner == owner,
                OutboxRow.status == OutboxStatus.SENDING.value,
            )
            .values(lease_until=to_utc(until))
            .returning(OutboxRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return set((await session.execute(stmt)).scalars())

    async def release_outbox(self, *, owner: str) -> int:
        """Hand back every row ``owner`` leased and did not send (shutdown): pending again,
        so another process takes them at once. How many."""
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.owner == owner, OutboxRow.status == OutboxStatus.SENDING.value)
            .values(status=OutboxStatus.PENDING.value, owner=None, lease_until=None)
            .returning(OutboxRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            return len((await session.execute(stmt)).all())

    async def outbox_items(self, *, stream: str | None = None) -> list[OutboxItem]:
        """The outbox rows (of ``stream``), oldest first."""
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if stream is not None:
            stmt = stmt.where(OutboxRow.stream == stream)
        async with self._tx() as session:
            return [_outbox(row) for row in (await session.execute(stmt)).scalars()]

    async def unsent_outbox(self) -> int:
        """How many outbox rows are pending or being sent."""
        stmt = select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(_UNSENT))
        async with self._tx() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def prune_outbox(self, older_than: datetime) -> int:
        """Forget sent rows written before ``older_than``; how many."""
        stmt = (
            delete(OutboxRow)
            .where(
                OutboxRow.status == OutboxStatus.SENT.value,
                OutboxRow.created_at < to_utc(older_than),
            )
            .execution_options(synchronize_session=False)
        )
        async with self._tx() as session:
            result: Any = await session.execute(stmt)
            return int(result.rowcount or 0)
