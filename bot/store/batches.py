"""The store of bulk requests: batches and their frozen sets of targets.

Same rules as :class:`bot.store.repository.Store` (whose engine and transactions it
shares): each method is one short transaction and returns domain models; status changes
are conditional ``UPDATE`` statements, so two confirmations, two approvers or two replicas
still move a batch once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from bot.domain.approvals import Decision, Vote
from bot.domain.bulk import (
    BATCH_TRANSITIONS,
    Batch,
    BatchStatus,
    BatchTarget,
    BulkPattern,
    Skip,
    TargetStatus,
)
from bot.domain.jobs import JobKind, job_key
from bot.domain.models import PauseOptions, TargetKind, Verb
from bot.domain.requests import Via
from bot.store.models import BatchRow, BatchTargetRow, as_utc, to_utc
from bot.store.repository import Store

#: Columns :meth:`BatchStore.transition` may set along with the status.
_BATCH_FIELDS = frozenset({"expires_at", "ends_at", "channel", "card_ts", "owner", "lease_until"})
#: Columns :meth:`BatchStore.settle_target` may set.
_TARGET_FIELDS = frozenset(
    {"status", "attempts", "error", "error_code", "state_after", "holds_pause", "skip_reason"}
)


def _skip_out(reason: Skip | str | None) -> str | None:
    """A skip reason as stored: its code and parameters as JSON."""
    if reason is None or isinstance(reason, str):
        return reason
    return reason.model_dump_json(exclude_defaults=True)


def _skip_in(stored: str | None) -> Skip | str | None:
    """A stored skip reason: a :class:`Skip`, or the sentence an older batch stored."""
    if stored is None or not stored.startswith("{"):
        return stored
    try:
        return Skip.model_validate_json(stored)
    except ValueError:
        return stored


def _opt(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _target(row: BatchTargetRow) -> BatchTarget:
    return BatchTarget(
        position=row.position,
        kind=TargetKind(row.kind),
        key=row.key,
        name=row.name,
        target_id=row.target_id,
        version=row.version,
        state_before=row.state_before,
        act=row.act,
        skip_reason=_skip_in(row.skip_reason),
        status=TargetStatus(row.status),
        attempts=row.attempts,
        error=row.error,
        error_code=row.error_code,
        state_after=row.state_after,
        holds_pause=row.holds_pause,
    )


def _batch(row: BatchRow, targets: Sequence[BatchTargetRow]) -> Batch:
    return Batch(
        id=row.id,
        verb=Verb(row.verb),
        pattern=BulkPattern(
            environment=row.environment,
            kind=None if row.kind is None else TargetKind(row.kind),
            glob=row.glob,
        ),
        options=None
        if row.pause_options is None
        else PauseOptions.model_validate(row.pause_options),
        digest=row.digest,
        status=BatchStatus(row.status),
        requested_by=row.requested_by,
        via=Via(row.via),
        channel=row.channel,
        card_ts=row.card_ts,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        expires_at=_opt(row.expires_at),
        ends_at=_opt(row.ends_at),
        ended_at=_opt(row.ended_at),
        source_batch_id=row.source_batch_id,
        votes=tuple(Vote.model_validate(v) for v in row.votes),
        targets=tuple(_target(t) for t in sorted(targets, key=lambda t: t.position)),
    )


def _sources(to: BatchStatus) -> list[str]:
    return [s.value for s, targets in BATCH_TRANSITIONS.items() if to in targets]


class BatchStore:
    """Batches and their targets, in the database of ``store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The store it shares (jobs, the audit trail)."""
        return self._store

    def now(self) -> datetime:
        return self._store.now()

    async def create(
        self,
        *,
        verb: Verb,
        pattern: BulkPattern,
        options: PauseOptions | None,
        digest: str,
        status: BatchStatus,
        requested_by: str,
        via: Via,
        channel: str | None,
        targets: Sequence[BatchTarget],
        source_batch_id: str | None = None,
    ) -> Batch:
        now = self.now()
        batch_id = uuid.uuid4().hex[:12]
        async with self._store.transaction() as session:
            session.add(
                BatchRow(
                    id=batch_id,
                    status=status.value,
                    verb=verb.value,
                    environment=pattern.environment,
                    kind=None if pattern.kind is None else pattern.kind.value,
                    glob=pattern.glob,
                    pause_options=None if options is None else options.model_dump(mode="json"),
                    digest=digest,
                    requested_by=requested_by,
                    via=via.value,
                    channel=channel,
                    created_at=now,
                    updated_at=now,
                    source_batch_id=source_batch_id,
                    votes=[],
                )
            )
            await session.flush()
            session.add_all(
                BatchTargetRow(
                    batch_id=batch_id,
                    position=t.position,
                    kind=t.kind.value,
                    key=t.key,
                    name=t.name,
                    target_id=t.target_id,
                    version=t.version,
                    state_before=t.state_before,
                    act=t.act,
                    skip_reason=_skip_out(t.skip_reason),
                    status=t.status.value,
                    attempts=t.attempts,
                    holds_pause=t.holds_pause,
                )
                for t in targets
            )
        found = await self.get(batch_id)
        assert found is not None
        return found

    async def get(self, batch_id: str) -> Batch | None:
        async with self._store.transaction() as session:
            row = await session.get(BatchRow, batch_id)
            if row is None:
                return None
            targets = (
                (
                    await session.execute(
                        select(BatchTargetRow).where(BatchTargetRow.batch_id == batch_id)
                    )
                )
                .scalars()
                .all()
            )
            return _batch(row, targets)

    async def find_by_card(self, *, channel: str, card_ts: str) -> Batch | None:
        """The batch whose card is the message ``card_ts`` in ``channel`` (reactions)."""
        async with self._store.transaction() as session:
            batch_id = (
                await session.execute(
                    select(BatchRow.id)
                    .where(BatchRow.channel == channel, BatchRow.card_ts == card_ts)
                    .limit(1)
                )
            ).scalar_one_or_none()
        return None if batch_id is None else await self.get(batch_id)

    async def by_source(self, source_batch_id: str) -> list[Batch]:
        """The batches that put back (or ended) the pauses of ``source_batch_id``, oldest
        first."""
        async with self._store.transaction() as session:
            ids = (
                (
                    await session.execute(
                        select(BatchRow.id)
                        .where(BatchRow.source_batch_id == source_batch_id)
                        .order_by(BatchRow.created_at, BatchRow.id)
                    )
                )
                .scalars()
                .all()
            )
        found = [await self.get(batch_id) for batch_id in ids]
        return [b for b in found if b is not None]

    async def transition(self, batch_id: str, *, to: BatchStatus, **fields: Any) -> Batch | None:
        """Move the batch to ``to`` if its status allows it now (None: it did not)."""
        unknown = set(fields) - _BATCH_FIELDS
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} in a transition")
        values = {k: (to_utc(v) if isinstance(v, datetime) else v) for k, v in fields.items()}
        async with self._store.transaction() as session:
            result = await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.status.in_(_sources(to)))
                .values(status=to.value, updated_at=self.now(), **values)
                .returning(BatchRow.id)
            )
            moved = result.scalar_one_or_none()
        return None if moved is None else await self.get(batch_id)

    async def set_card(self, batch_id: str, *, channel: str, card_ts: str) -> None:
        """Where the batch's card is (its thread holds the batch's notes)."""
        async with self._store.transaction() as session:
            await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id)
                .values(channel=channel, card_ts=card_ts)
            )

    async def add_vote(self, batch: Batch, vote: Vote) -> Batch | None:
        """Record ``vote`` (replacing the voter's earlier one) if the batch is still awaiting
        approval and unchanged since ``batch`` was read; None: read it again and retry."""
        votes = [v for v in batch.votes if v.voter != vote.voter] + [vote]
        return await self._set_votes(batch, votes)

    async def withdraw_vote(self, batch: Batch, *, voter: str, decision: Decision) -> Batch | None:
        """Drop ``voter``'s ``decision`` vote, on the same terms as :meth:`add_vote`."""
        votes = [v for v in batch.votes if not (v.voter == voter and v.decision is decision)]
        return await self._set_votes(batch, votes)

    async def _set_votes(self, batch: Batch, votes: list[Vote]) -> Batch | None:
        async with self._store.transaction() as session:
            result = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.id == batch.id,
                    BatchRow.status == BatchStatus.AWAITING_APPROVAL.value,
                    BatchRow.updated_at == batch.updated_at,
                )
                .values(
                    votes=[v.model_dump(mode="json") for v in votes],
                    updated_at=max(self.now(), batch.updated_at),
                )
                .returning(BatchRow.id)
            )
            if result.scalar_one_or_none() is None:
                return None
        return await self.get(batch.id)

    async def settle_target(self, batch_id: str, kind: TargetKind, key: str, **fields: Any) -> None:
        unknown = set(fields) - _TARGET_FIELDS
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a batch target")
        values = {k: (v.value if isinstance(v, TargetStatus) else v) for k, v in fields.items()}
        if "skip_reason" in values:
            values["skip_reason"] = _skip_out(values["skip_reason"])
        async with self._store.transaction() as session:
            await session.execute(
                update(BatchTargetRow)
                .where(
                    BatchTargetRow.batch_id == batch_id,
                    BatchTargetRow.kind == kind.value,
                    BatchTargetRow.key == key,
                )
                .values(**values)
            )

    async def release_holds(
        self, environment: str, targets: Collection[tuple[TargetKind, str]], *, but: str
    ) -> None:
        """Targets paused again by batch ``but``: no older batch puts them back any more."""
        if not targets:
            return
        async with self._store.transaction() as session:
            wanted = {(k.value, key) for k, key in targets}
            held = (
                await session.execute(
                    select(BatchTargetRow.id, BatchTargetRow.kind, BatchTargetRow.key)
                    .join(BatchRow, BatchRow.id == BatchTargetRow.batch_id)
                    .where(
                        BatchRow.environment == environment,
                        BatchRow.id != but,
                        BatchTargetRow.holds_pause.is_(True),
                        BatchTargetRow.key.in_(sorted({key for _, key in wanted})),
                    )
                )
            ).all()
            ids = [row.id for row in held if (row.kind, row.key) in wanted]
            if ids:
                await session.execute(
                    update(BatchTargetRow)
                    .where(BatchTargetRow.id.in_(ids))
                    .values(holds_pause=False)
                )

    async def drop_holds(self, batch_id: str, targets: Collection[tuple[TargetKind, str]]) -> None:
        """Batch ``batch_id`` no longer holds the pause of ``targets`` (put back, or found
        no longer paused)."""
        for kind, key in targets:
            await self.settle_target(batch_id, kind, key, holds_pause=False)

    async def schedule_end(self, batch: Batch) -> None:
        """One scheduler job for the end of a timed bulk pause (the whole batch)."""
        if batch.ends_at is None:
            raise ValueError(f"batch {batch.id} has no end")
        await self._store.schedule(
            kind=JobKind.BATCH_END,
            key=job_key(JobKind.BATCH_END, batch.id),
            due_at=batch.ends_at,
            payload={"batch_id": batch.id},
        )

    async def renew(self, batch_id: str, *, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease on an executing batch (False: it holds it no more)."""
        async with self._store.transaction() as session:
            result = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.id == batch_id,
                    BatchRow.status == BatchStatus.EXECUTING.value,
                    BatchRow.owner == owner,
                )
                .values(lease_until=to_utc(until))
                .returning(BatchRow.id)
            )
            return result.scalar_one_or_none() is not None

    async def _ids(self, status: BatchStatus, column: Any, before: datetime) -> list[str]:
        """The batches in ``status`` whose ``column`` is before ``before``."""
        async with self._store.transaction() as session:
            rows = await session.execute(
                select(BatchRow.id).where(BatchRow.status == status.value, column < to_utc(before))
            )
            return list(rows.scalars().all())

    async def stalled(self, now: datetime) -> list[str]:
        """Executing batches whose owner's lease ran out (its process stopped)."""
        return await self._ids(BatchStatus.EXECUTING, BatchRow.lease_until, now)

    async def stale_previews(self, older_than: datetime) -> list[str]:
        """Previews nobody confirmed since ``older_than``."""
        return await self._ids(BatchStatus.PREVIEWED, BatchRow.created_at, older_than)

    async def overdue_approvals(self, now: datetime) -> list[str]:
        """Batches still awaiting approval after their expiry."""
        return await self._ids(BatchStatus.AWAITING_APPROVAL, BatchRow.expires_at, now)

    async def take_over(
        self, batch_id: str, *, owner: str, now: datetime, until: datetime
    ) -> Batch | None:
        """Hold a stalled executing batch (its lease ran out), once across processes."""
        async with self._store.transaction() as session:
            result = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.id == batch_id,
                    BatchRow.status == BatchStatus.EXECUTING.value,
                    BatchRow.lease_until < to_utc(now),
                )
                .values(owner=owner, lease_until=to_utc(until), updated_at=self.now())
                .returning(BatchRow.id)
            )
            taken = result.scalar_one_or_none()
        return None if taken is None else await self.get(batch_id)

    async def mark_ended(self, batch_id: str) -> bool:
        """Stamp the timed end of a batch, once (False: it ended already)."""
        async with self._store.transaction() as session:
            result = await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.ended_at.is_(None))
                .values(ended_at=self.now(), updated_at=self.now())
                .returning(BatchRow.id)
            )
            return result.scalar_one_or_none() is not None
