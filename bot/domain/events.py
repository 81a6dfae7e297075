"""What happens to a request and its pause, as data: the service publishes these events and
each front end words them (Slack: :mod:`bot.slack.messages`; console and CLI:
:mod:`bot.render`). An event carries states, codes, durations and user ids, never a
sentence; the store keeps the event that ended a pause (``PauseOutcome.event``), so a card
can be drawn again from it.

Every event is a frozen model with a ``kind`` discriminator; :data:`EVENTS` dumps and loads
them as JSON (``EVENTS.validate_python(event.model_dump(mode="json")) == event``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot.domain.approvals import ApprovalView
from bot.domain.models import NormalState, ThenAction, Verb


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Late(_Event):
    """An end handled well after it was due, and why."""

    by: timedelta
    #: The bot was not running when the end was due (otherwise: busy with other due work).
    bot_was_down: bool


# -- a request, from execution to its result ----------------------------------------------


class Executing(_Event):
    """The provider call is about to be sent."""

    kind: Literal["executing"] = "executing"


class Progress(_Event):
    """Still waiting for the provider to show the change: read-back ``done`` of ``total``."""

    kind: Literal["progress"] = "progress"
    done: int
    total: int
    noun: str = "tries"


class Succeeded(_Event):
    """Done and verified by a read-back."""

    kind: Literal["succeeded"] = "succeeded"
    state_after: str
    provider_request_id: str | None = None


class Unverified(_Event):
    """Sent (or perhaps sent), but the read-back does not show the change."""

    kind: Literal["unverified"] = "unverified"
    state_after: str
    #: The bot stopped while sending it; it was not sent again (recovery read it back).
    interrupted: bool = False


class RequestFailed(_Event):
    """Refused by a rule or the provider, or not recorded completely (never carried out)."""

    kind: Literal["request_failed"] = "request_failed"
    #: The error as the error tree words it (``BotError.user_message``).
    message: str
    provider: str | None = None
    provider_code: str | None = None
    #: Set when the request was given up before execution (it could not be recorded).
    error_type: str | None = None


class RecoverySending(_Event):
    """A request the stopped process had not sent yet: it is sent now, once."""

    kind: Literal["recovery_sending"] = "recovery_sending"


class RecoveryReadBack(_Event):
    """A request the stopped process may have sent: not sent again, read back instead."""

    kind: Literal["recovery_read_back"] = "recovery_read_back"
    state: str


# -- approvals ----------------------------------------------------------------------------


class ApprovalNeeded(_Event):
    kind: Literal["approval_needed"] = "approval_needed"
    required: int
    approval: ApprovalView | None = None


class VoteCast(_Event):
    """A vote, or a vote withdrawn (``withdraw-approve``, ``withdraw-deny``)."""

    kind: Literal["vote_cast"] = "vote_cast"
    actor: str
    decision: Literal["approve", "deny", "withdraw-approve", "withdraw-deny"]
    done: int
    total: int


class Decided(_Event):
    kind: Literal["decided"] = "decided"
    actor: str
    decision: Literal["approved", "denied", "expired"]


#: Why a vote did not count: no such request (any more), no approval needed, decided
#: already (``status`` says how), counted already, not an approver, or the requester's own
#: request (the requester may not approve it).
RefusedWhy = Literal[
    "unknown_request",
    "no_approval_needed",
    "already_decided",
    "already_counted",
    "not_an_approver",
    "own_request",
]


class VoteRefused(_Event):
    """Why a vote did not count (told to the voter alone)."""

    kind: Literal["vote_refused"] = "vote_refused"
    why: RefusedWhy
    decision: Literal["approve", "deny"] = "approve"
    environment: str | None = None
    #: The request's status when it was decided already.
    status: str | None = None


class ReactionIgnored(_Event):
    """Someone who is not an approver reacted on a card (said once per person)."""

    kind: Literal["reaction_ignored"] = "reaction_ignored"
    actor: str
    environment: str


# -- timed pauses -------------------------------------------------------------------------

#: How a pause came to an end:
#: ``resumed`` the bot resumed it at the end (``verified``: the read-back shows it);
#: ``ended_by_provider`` the provider ended it by itself (journeys) and the bot read it back;
#: ``kept`` the end came and it stays paused as asked; ``already_changed`` nothing to resume
#: at the end; ``guardrail_missed`` the provider should have ended it and did not;
#: ``drifted`` changed outside the bot; ``replaced`` paused again by a newer request;
#: ``ended_early`` a resume or stop request ended it (``by``, ``verb``).
PauseEndHow = Literal[
    "resumed",
    "ended_by_provider",
    "kept",
    "already_changed",
    "guardrail_missed",
    "drifted",
    "replaced",
    "ended_early",
]


class PauseEnded(_Event):
    kind: Literal["pause_ended"] = "pause_ended"
    how: PauseEndHow
    #: The target as people name it (key, or the name for targets keyed by id).
    label: str
    then: ThenAction = ThenAction.RESUME
    #: The state read back (``describe()``), when one was read.
    state: str | None = None
    #: The provider-neutral state read back (how the provider ended it).
    normal: NormalState | None = None
    verified: bool = True
    #: The read-back matches ``then``.
    expected: bool = True
    late: Late | None = None
    #: What the provider is called ("Journey Builder"), for ``ended_by_provider`` and
    #: ``guardrail_missed``.
    product: str | None = None
    #: Why there was nothing to resume (``already_changed``): the error tree's words.
    detail: str | None = None
    #: The verb of the request that ended it early (``ended_early``).
    verb: Verb | None = None


class ResumeRetrying(_Event):
    """The pause time is up but the resume failed; the bot tries again."""

    kind: Literal["resume_retrying"] = "resume_retrying"
    label: str
    message: str
    attempts_max: int
    late: Late | None = None


class ResumeGaveUp(_Event):
    """The bot gave up resuming at the end: it is still paused."""

    kind: Literal["resume_gave_up"] = "resume_gave_up"
    label: str
    message: str
    tries: int


class PauseReminder(_Event):
    """A reminder before the end (``ends_in``) or of an open-ended pause (``paused_for``)."""

    kind: Literal["pause_reminder"] = "pause_reminder"
    label: str
    pause_id: int
    then: ThenAction = ThenAction.RESUME
    ends_in: timedelta | None = None
    paused_for: timedelta | None = None


class PauseExtended(_Event):
    kind: Literal["pause_extended"] = "pause_extended"
    actor: str
    ends_at: datetime


class LetItEnd(_Event):
    """'Let it end' on a reminder: no more reminders; the end happens as planned."""

    kind: Literal["let_it_end"] = "let_it_end"
    actor: str
    then: ThenAction


Event = Annotated[
    Executing
    | Progress
    | Succeeded
    | Unverified
    | RequestFailed
    | RecoverySending
    | RecoveryReadBack
    | ApprovalNeeded
    | VoteCast
    | Decided
    | ReactionIgnored
    | VoteRefused
    | PauseEnded
    | ResumeRetrying
    | ResumeGaveUp
    | PauseReminder
    | PauseExtended
    | LetItEnd,
    Field(discriminator="kind"),
]

#: Dumps and loads any :data:`Event` as JSON.
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)
