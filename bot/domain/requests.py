"""Operation requests: what someone asked for, its lifecycle, and what the bot recorded.

A request binds one exact :class:`RequestSpec` (target, version, options); approvals (later)
bind to its fingerprint, so changing anything means a new request. Pure models and rules.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.errors import DuplicateRequest
from bot.domain.events import PauseEnded
from bot.domain.models import PauseOptions, TargetKind, ThenAction, Verb, target_label
from bot.domain.models import Via as Via  # where it was defined first


class RequestStatus(StrEnum):
    RECEIVED = "received"  # recorded; not yet executed
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    EXECUTING = "executing"  # the provider call is under way (or was, at a crash)
    SUCCEEDED = "succeeded"  # done and verified by a read-back
    UNVERIFIED = "unverified"  # not confirmed by the read-back (``error``: why, if known)
    FAILED = "failed"  # refused by a rule or the provider; ``error`` says why


TERMINAL = frozenset(
    {
        RequestStatus.DENIED,
        RequestStatus.EXPIRED,
        RequestStatus.SUCCEEDED,
        RequestStatus.UNVERIFIED,
        RequestStatus.FAILED,
    }
)

#: Statuses a request leaves on its own within moments (no person has to act): its card
#: will be edited again soon.
MOVING = frozenset({RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.EXECUTING})

#: status -> statuses it may move to. Every write is a conditional transition.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.RECEIVED: frozenset(
        {RequestStatus.AWAITING_APPROVAL, RequestStatus.EXECUTING, RequestStatus.FAILED}
    ),
    RequestStatus.AWAITING_APPROVAL: frozenset(
        {RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.EXPIRED}
    ),
    RequestStatus.APPROVED: frozenset({RequestStatus.EXECUTING, RequestStatus.FAILED}),
    RequestStatus.EXECUTING: frozenset(
        {RequestStatus.SUCCEEDED, RequestStatus.UNVERIFIED, RequestStatus.FAILED}
    ),
}


class ExecutionPhase(StrEnum):
    """How far an executing request got with its provider call (recovery reads it)."""

    NOT_SENT = "not_sent"  # the call was not sent: recovery may send it, once
    MAYBE_SENT = "maybe_sent"  # written just before sending: recovery only reads back
    #: The process stopped while sending; recovery read the target back and did not send
    #: the call again (the request is unverified, worded by each front end).
    INTERRUPTED = "interrupted"


def can_transition(current: RequestStatus, new: RequestStatus) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestSpec(_Frozen):
    """Exactly what will be done. An approval is bound to :meth:`fingerprint`."""

    verb: Verb
    environment: str
    kind: TargetKind
    key: str
    name: str
    target_id: str
    version: int | None = None
    all_versions: bool = False
    pause: PauseOptions | None = None
    extend: bool = Field(
        default=False, description="pause only: move the end of a pause the bot is watching"
    )

    def fingerprint(self) -> str:
        """A stable hash of every parameter."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def target_label(self) -> str:
        version = " (all versions)" if self.all_versions else ""
        if self.version is not None and not self.all_versions:
            version = f" v{self.version}"
        return target_label(self.environment, self.kind, self.key, self.name, version)

    def describe(self) -> str:
        """One line: ``pause staging/journey:welcome v3 for 3d, then resume``."""
        verb = "extend the pause of" if self.extend else self.verb.value
        parts = [f"{verb} {self.target_label()}"]
        p = self.pause
        if p is not None:
            if p.duration is not None:
                parts.append(f"for {format_timedelta(p.duration)}")
            elif p.until is not None:
                parts.append(f"until {p.until.strftime('%Y-%m-%d %H:%M %Z').strip()}")
            if p.timed:
                parts.append(f"then {p.then.value}")
            flags = [
                name
                for name, on in (
                    ("extend waits", p.extend_waits),
                    ("queue entries", p.queue_entries),
                )
                if on
            ]
            if flags:
                parts.append(f"({', '.join(flags)})")
        return " ".join(parts)


def format_timedelta(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    out = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return out or f"{seconds}s"


class PauseOutcome(_Frozen):
    """How the pause a request made came to an end (shown on its card): the event, as
    data; each front end words it. Rows written before events were stored hold ``text``
    (the sentence as it was shown) instead, and still load and render."""

    at: datetime
    event: PauseEnded | None = Field(default=None, description="what happened")
    text: str | None = Field(default=None, description="the old, worded outcome (old rows)")
    still_paused: bool = Field(
        default=False, description="the target is still paused (kept, or the guardrail did not act)"
    )
    by: str | None = Field(default=None, description="Slack user whose request ended it early")


class OperationRequest(_Frozen):
    """A request as stored: the builders render it, the service moves it along."""

    id: str
    spec: RequestSpec
    status: RequestStatus
    requested_by: str
    via: Via
    reason: str | None = None
    created_at: datetime
    updated_at: datetime
    channel: str | None = None
    card_ts: str | None = Field(default=None, description="ts of the request card (thread root)")
    state_before: str | None = None
    state_after: str | None = None
    provider_request_id: str | None = None
    error: str | None = None
    pause_ends_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="when a pending approval expires")
    pause_outcome: PauseOutcome | None = Field(
        default=None, description="set when the pause this request made has ended"
    )
    owner: str | None = Field(default=None, description="the process executing it")
    lease_until: datetime | None = Field(
        default=None, description="until when ``owner`` holds it (renewed while it runs)"
    )
    execution_phase: ExecutionPhase | None = Field(
        default=None, description="None for a request executing before phases were recorded"
    )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def moving(self) -> bool:
        """Whether the request is about to change again by itself (see :data:`MOVING`)."""
        return self.status in MOVING


class AuditEvent(_Frozen):
    """One line of the audit trail."""

    id: int
    request_id: str | None
    at: datetime
    actor: str
    action: str
    via: Via
    detail: dict[str, Any] = Field(default_factory=dict)


class PauseRecord(_Frozen):
    """A pause the bot made and keeps watching (Home tab, reminders, end of pause)."""

    id: int
    request_id: str
    environment: str
    kind: TargetKind
    key: str
    name: str
    version: int | None = None
    all_versions: bool = False
    paused_by: str
    started_at: datetime
    ends_at: datetime | None = None
    then: ThenAction = ThenAction.RESUME
    channel: str | None = None
    card_ts: str | None = None
    active: bool = True
    #: A pause held by a bulk request (its batch), not by one request: ``request_id`` is
    #: empty, and putting it back is ``resume batch <id>``.
    batch_id: str | None = None

    @property
    def label(self) -> str:
        """How messages name the target: the key people type for SFMC, the name for
        scrip.dev (its key is an id nobody types)."""
        if self.kind.keyed_by_id and self.name:
            return self.name
        return self.key


def duplicate_of(first: OperationRequest) -> DuplicateRequest:
    """The refusal of a second request awaiting the same approval as ``first``."""
    if first.channel and first.card_ts:
        where = f"its card is in channel {first.channel}, message {first.card_ts}"
    else:
        where = f"request {first.id}"
    return DuplicateRequest(
        f"The same request is already waiting for approval ({where}): approve or deny it "
        "there. Nothing new was recorded.",
        request_id=first.id,
        channel=first.channel,
        card_ts=first.card_ts,
    )
