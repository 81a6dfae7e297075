"""SQLAlchemy 2 ORM tables (DESIGN §3 ``store``, §6).

The rows never leave :mod:`bot.store`: the repository converts them into the domain's
pydantic models. Enums are stored as their string values (no database enum types, so a
new status is not a migration), and every timestamp is a timezone-aware UTC ``datetime``
(:class:`UTCDateTime`), whatever the database keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint names, identical on SQLite and PostgreSQL (and in migrations).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value (SQLite keeps no zone) is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; ValueError for a naive value (a time without a zone is a bug)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given: times must have a zone")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC, read back as UTC on every database.

    PostgreSQL keeps ``timestamp with time zone``; SQLite keeps the UTC wall time as text
    (so text order is time order) and loses the zone, which is put back on read. Naive
    values are refused: a time without a zone is a bug waiting to happen.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


#: Statuses during which a request is changing its target (see migration 0003).
IN_FLIGHT_SQL = "status IN ('received', 'executing')"
PENDING_APPROVAL_SQL = "status = 'awaiting_approval'"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime}


class RequestRow(Base):
    """One operation request (:class:`bot.domain.requests.OperationRequest`)."""

    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    verb: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    target_key: Mapped[str] = mapped_column(String(255))
    target_name: Mapped[str] = mapped_column(String(255))
    target_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(Integer)
    all_versions: Mapped[bool] = mapped_column(Boolean, default=False)
    extends_pause: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    pause_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(String(64))
    card_ts: Mapped[str | None] = mapped_column(String(64))
    state_before: Mapped[str | None] = mapped_column(Text)
    state_after: Mapped[str | None] = mapped_column(Text)
    provider_request_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    pause_ends_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # when a pending approval expires
    pause_outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # how its pause ended
    # While executing (migration 0009): the process carrying it out, until when it holds
    # it (renewed while it runs), and whether its provider call may have been sent.
    owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]
    execution_phase: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index(
            "uq_requests_card",
            "channel",
            "card_ts",
            unique=True,
            sqlite_where=text("card_ts IS NOT NULL"),
            postgresql_where=text("card_ts IS NOT NULL"),
        ),
        Index("ix_requests_history", "environment", "kind", "target_key", "created_at"),
        Index("ix_requests_status_expires_at", "status", "expires_at"),
        # One request at a time changes a target: a second one is refused, not run twice.
        Index(
            "uq_requests_in_flight_target",
            "environment",
            "kind",
            "target_key",
            unique=True,
            sqlite_where=text(IN_FLIGHT_SQL),
            postgresql_where=text(IN_FLIGHT_SQL),
        ),
        # One pending approval per exact request: asking again points at the first card.
        Index(
            "uq_requests_pending_approval",
            "environment",
            "kind",
            "target_key",
            "fingerprint",
            unique=True,
            sqlite_where=text(PENDING_APPROVAL_SQL),
            postgresql_where=text(PENDING_APPROVAL_SQL),
        ),
    )


class AuditEventRow(Base):
    """One line of the audit trail (:class:`bot.domain.requests.AuditEvent`)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(16))
    target_key: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_audit_events_history", "environment", "kind", "target_key", "at"),)


class ProcessedSlackEventRow(Base):
    """A Slack delivery already handled: its key is claimed once (exactly-once)."""

    __tablename__ = "processed_slack_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class PauseRow(Base):
    """A pause the bot watches (:class:`bot.domain.requests.PauseRecord`)."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), unique=True)
    environment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(Integer)
    all_versions: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    ends_at: Mapped[datetime | None] = mapped_column(index=True)
    then_action: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(64))
    card_ts: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, index=True, default=True)
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_pauses_active_ends_at", "active", "ends_at"),
        Index("ix_pauses_target", "environment", "kind", "key", "active"),
    )


class ApprovalVoteRow(Base):
    """One person's vote on one request (:class:`bot.domain.approvals.Vote`).

    One row per (request, voter): voting again changes it, withdrawing stamps
    ``withdrawn_at`` (the row stays, so a later vote by the same person revives it).
    """

    __tablename__ = "approval_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    voter: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("request_id", "voter"),)


#: Jobs not yet done: the rows the scheduler's due query looks at (see migration 0004).
PENDING_JOB_SQL = "done_at IS NULL"


class JobRow(Base):
    """One scheduled job and its lease (:class:`bot.domain.jobs.Job`).

    The due query reads the partial index on pending jobs in ``(due_at, id)`` order, from
    the start up to "now": its cost follows the jobs due (and those leased), not the number
    of pending or finished ones.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    owner: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index(
            "ix_jobs_pending_due_at",
            "due_at",
            "id",
            sqlite_where=text(PENDING_JOB_SQL),
            postgresql_where=text(PENDING_JOB_SQL),
        ),
    )


class ScheduleSnapshotRow(Base):
    """An automation's schedule, kept between its pause and its resume (migration 0006)."""

    __tablename__ = "schedule_snapshots"

    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    taken_at: Mapped[datetime]


class BatchRow(Base):
    """One bulk request (:class:`bot.domain.bulk.Batch`), with its frozen set's digest."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    verb: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(16))  # None: every kind
    glob: Mapped[str] = mapped_column(String(255))
    pause_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(64))
    card_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    source_batch_id: Mapped[str | None] = mapped_column(String(32))
    votes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # While executing: the process carrying it out, and until when it holds it (renewed
    # while it runs); recovery takes over a batch whose lease ran out.
    owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]

    # reactions on a card that is no request's: which batch's card is it? (0012)
    __table_args__ = (Index("ix_batches_channel_card_ts", "channel", "card_ts"),)


class BatchTargetRow(Base):
    """One target of a batch (:class:`bot.domain.bulk.BatchTarget`)."""

    __tablename__ = "batch_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    target_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(Integer)
    state_before: Mapped[str] = mapped_column(Text)
    act: Mapped[bool] = mapped_column(Boolean)
    skip_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    state_after: Mapped[str | None] = mapped_column(Text)
    holds_pause: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (UniqueConstraint("batch_id", "kind", "key"),)


#: Outbox rows not delivered yet (what the sender claims and what a stream waits behind).
UNSENT_OUTBOX_SQL = "status IN ('pending', 'sending')"


class OutboxRow(Base):
    """One Slack message to deliver: a thread reply, a notify-channel notice or a card edit
    (migration 0010, :class:`bot.domain.outbox.OutboxItem`).

    Written in the transaction of the state change it reports; a leased sender delivers
    it. Rows of one ``stream`` (a card's thread with its edits; a notify channel) go out in
    ``id`` order. A card has at most one unsent edit at its stream's tail: enqueueing
    another bumps ``version``, and a send of an older version does not count as sent.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(32))
    #: The batch whose card (post, edit) or thread note this is (migration 0012).
    batch_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime]
    sent_ts: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index(
            "ix_outbox_unsent_stream",
            "stream",
            "id",
            sqlite_where=text(UNSENT_OUTBOX_SQL),
            postgresql_where=text(UNSENT_OUTBOX_SQL),
        ),
        Index(
            "ix_outbox_unsent_due",
            "next_attempt_at",
            "id",
            sqlite_where=text(UNSENT_OUTBOX_SQL),
            postgresql_where=text(UNSENT_OUTBOX_SQL),
        ),
        Index("ix_outbox_status_created_at", "status", "created_at"),
    )
