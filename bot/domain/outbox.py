"""The Slack outbox (DESIGN §6): messages to deliver, written with the state they report.

Every thread reply, notify-channel notice and card edit is a row the store keeps until a
leased sender has delivered it, so a process that dies after a state change commits
loses nothing it had to say. Pure models and rules; the store keeps and leases the rows,
:mod:`bot.slack.sender` delivers them.

Order: rows of one *stream* go out one after another, in the order they were written: a
card's thread (its replies and its edits, so an edit waits for the replies written
before it and a reply for the edit written before it), or a notify channel. When Slack's
budgets are short, what people wait for goes first (:class:`OutboxPriority`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: After this many failed sends a message is given up (status failed, logged).
OUTBOX_MAX_ATTEMPTS = 8
#: The first retry waits this long, every further one twice as long...
OUTBOX_RETRY_BASE = timedelta(seconds=2)
#: ...but never longer than this.
OUTBOX_RETRY_CAP = timedelta(minutes=5)
#: How long a sender holds the messages it took; renewed while they wait in its queue. A
#: message left "sending" by a sender that died is taken over once this runs out.
OUTBOX_LEASE = timedelta(seconds=30)
#: Sent messages are forgotten after this long (housekeeping).
OUTBOX_RETENTION = timedelta(days=1)
#: The ``event_type`` of the Slack message metadata every outbox post carries.
METADATA_EVENT_TYPE = "automation_bot_outbox"


class OutboxKind(StrEnum):
    REPLY = "reply"  # a reply in a card's thread
    NOTICE = "notice"  # a notice in an environment's notify channel
    EDIT = "edit"  # an edit of a card (rendered from the store when it is sent)
    CARD = "card"  # a batch's card to post (rendered from the store; its ts stored)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # leased to a sender (``owner`` until ``lease_until``)
    SENT = "sent"
    FAILED = "failed"  # given up after OUTBOX_MAX_ATTEMPTS


class OutboxPriority(IntEnum):
    """Lower goes first when there is more to send than Slack allows at once."""

    NOTE = 0  # outcome notes in threads
    NOTICE = 1  # notify-channel notices
    EDIT = 2  # card edits (a card may lag; it always ends in its final state)


PRIORITY_OF: dict[OutboxKind, OutboxPriority] = {
    OutboxKind.REPLY: OutboxPriority.NOTE,
    OutboxKind.NOTICE: OutboxPriority.NOTICE,
    OutboxKind.EDIT: OutboxPriority.EDIT,
    OutboxKind.CARD: OutboxPriority.NOTE,  # a preview the requester waits for
}


def card_stream(channel: str, ts: str) -> str:
    """The stream of a card: its thread's replies and its edits."""
    return f"card:{channel}:{ts}"


def batch_stream(batch_id: str) -> str:
    """The stream of a batch: its card's post, its edits and its thread's notes (the card's
    ts is not known before the post is sent)."""
    return f"batch:{batch_id}"


def notice_stream(channel: str) -> str:
    """The stream of a notify channel's notices."""
    return f"notify:{channel}"


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before the next try after ``attempts`` failed ones."""
    exponent = max(0, attempts - 1)
    return min(OUTBOX_RETRY_CAP, OUTBOX_RETRY_BASE * (1 << min(exponent, 20)))


class OutboxMessage(BaseModel):
    """A message to write to the outbox (:meth:`bot.store.repository.Store.enqueue_outbox`)."""

    model_config = ConfigDict(frozen=True)

    kind: OutboxKind
    channel: str
    thread_ts: str | None = None
    request_id: str | None = None
    #: The batch whose card or thread this is (its rows are one stream, in order).
    batch_id: str | None = None
    #: What to render when it is sent (``{"type": ..., "data": ...}``), not rendered text.
    payload: dict[str, Any] = Field(default_factory=dict)

    @property
    def stream(self) -> str:
        if self.batch_id is not None and self.kind is not OutboxKind.NOTICE:
            return batch_stream(self.batch_id)
        if self.kind is OutboxKind.NOTICE or self.thread_ts is None:
            return notice_stream(self.channel)
        return card_stream(self.channel, self.thread_ts)

    @property
    def priority(self) -> OutboxPriority:
        return PRIORITY_OF[self.kind]


class OutboxItem(BaseModel):
    """One outbox row as the store holds it."""

    model_config = ConfigDict(frozen=True)

    id: int
    stream: str
    kind: OutboxKind
    channel: str
    thread_ts: str | None
    request_id: str | None
    payload: dict[str, Any]
    priority: int
    batch_id: str | None = None
    version: int
    status: OutboxStatus
    attempts: int
    owner: str | None
    lease_until: datetime | None
    next_attempt_at: datetime
    sent_ts: str | None
    last_error: str | None
    created_at: datetime

    @property
    def metadata(self) -> dict[str, Any]:
        """The Slack message metadata that marks a post as this row's (idempotency)."""
        return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"id": self.id}}
