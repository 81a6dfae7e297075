"""Domain events: data, not sentences; every kind dumps to JSON and loads back the same."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.domain.approvals import ApprovalView
from bot.domain.events import (
    EVENTS,
    ApprovalNeeded,
    Decided,
    Event,
    Executing,
    Late,
    LetItEnd,
    PauseEnded,
    PauseEndHow,
    PauseExtended,
    PauseReminder,
    Progress,
    ReactionIgnored,
    RecoveryReadBack,
    RecoverySending,
    RequestFailed,
    ResumeGaveUp,
    ResumeRetrying,
    Succeeded,
    Unverified,
    VoteCast,
    VoteRefused,
)
from bot.domain.models import NormalState, ThenAction, Verb

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
LATE = Late(by=timedelta(hours=26, minutes=5), bot_was_down=True)


def _ended(how: str, **fields: typing.Any) -> PauseEnded:
    base: dict[str, typing.Any] = {"label": "daily-welcome-send", "state": "active (6 Scheduled)"}
    return PauseEnded.model_validate({"how": how, **base, **fields})


#: One of every event (and every way a pause ends), as the services publish them.
SAMPLES: dict[str, Event] = {
    "executing": Executing(),
    "progress": Progress(done=2, total=5, noun="tries"),
    "succeeded": Succeeded(state_after="paused", provider_request_id="req-42"),
    "unverified": Unverified(state_after="active (6 Scheduled)"),
    "unverified_interrupted": Unverified(state_after="active", interrupted=True),
    "request_failed": RequestFailed(
        message="Could not pause automation 'x': SFMC refused it (code 2).",
        provider="SFMC",
        provider_code="2",
    ),
    "recovery_sending": RecoverySending(),
    "recovery_read_back": RecoveryReadBack(state="paused"),
    "approval_needed": ApprovalNeeded(
        required=2,
        approval=ApprovalView(
            environment="production", required=2, approvers=("U0BOB", "U0CAROL"), expires_at=AT
        ),
    ),
    "vote_cast": VoteCast(actor="U0BOB", decision="approve", done=1, total=2),
    "vote_withdrawn": VoteCast(actor="U0BOB", decision="withdraw-approve", done=0, total=2),
    "approved": Decided(actor="U0BOB", decision="approved"),
    "denied": Decided(actor="U0CAROL", decision="denied"),
    "expired": Decided(actor="bot", decision="expired"),
    "reaction_ignored": ReactionIgnored(actor="U0EVE", environment="production"),
    "vote_refused": VoteRefused(why="not_an_approver", environment="production"),
    "vote_refused_decided": VoteRefused(why="already_decided", status="denied"),
    "ended_resumed": _ended("resumed", normal=NormalState.ACTIVE),
    "ended_resumed_late": _ended("resumed", normal=NormalState.ACTIVE, late=LATE),
    "ended_resumed_unverified": _ended("resumed", state="paused", verified=False),
    "ended_kept": _ended("kept", then=ThenAction.KEEP, state=None),
    "ended_already_changed": _ended(
        "already_changed",
        state="Scheduled",
        detail="Cannot resume automation daily-welcome-send: it is Scheduled.",
    ),
    "ended_guardrail_missed": _ended(
        "guardrail_missed",
        state="paused",
        normal=NormalState.PAUSED,
        expected=False,
        product="Journey Builder",
    ),
    "ended_by_provider": _ended(
        "ended_by_provider", normal=NormalState.STOPPED, state="stopped", product="Journey Builder"
    ),
    "ended_by_provider_kept": _ended(
        "ended_by_provider",
        then=ThenAction.KEEP,
        normal=NormalState.PAUSED,
        state="paused",
        product="Journey Builder",
    ),
    "ended_drifted": _ended("drifted", state="active", normal=NormalState.ACTIVE),
    "ended_replaced": _ended("replaced", state=None),
    "ended_early": _ended("ended_early", verb=Verb.RESUME, state="active"),
    "resume_retrying": ResumeRetrying(
        label="daily-welcome-send", message="SFMC is unavailable.", attempts_max=5, late=LATE
    ),
    "resume_gave_up": ResumeGaveUp(
        label="daily-welcome-send", message="SFMC is unavailable.", tries=5
    ),
    "reminder": PauseReminder(
        label="daily-welcome-send", pause_id=7, ends_in=timedelta(hours=23, minutes=59)
    ),
    "reminder_open_ended": PauseReminder(
        label="daily-welcome-send", pause_id=7, paused_for=timedelta(days=2)
    ),
    "extended": PauseExtended(actor="U0ALICE", ends_at=AT),
    "let_it_end": LetItEnd(actor="U0ALICE", then=ThenAction.RESUME),
}


def _kinds() -> set[str]:
    members = typing.get_args(typing.get_args(Event)[0])
    return {typing.get_args(m.model_fields["kind"].annotation)[0] for m in members}


def test_the_samples_cover_every_kind_and_every_end() -> None:
    assert {type(e).model_fields["kind"].default for e in SAMPLES.values()} == _kinds()
    ends = {e.how for e in SAMPLES.values() if isinstance(e, PauseEnded)}
    assert ends == set(typing.get_args(PauseEndHow))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_event_round_trips_through_json(name: str) -> None:
    event = SAMPLES[name]
    dumped = EVENTS.dump_python(event, mode="json")
    assert EVENTS.validate_python(json.loads(json.dumps(dumped))) == event
    assert EVENTS.validate_json(EVENTS.dump_json(event)) == event
    assert event.model_dump(mode="json") == dumped


def test_the_kind_picks_the_model() -> None:
    loaded = EVENTS.validate_python(
        {"kind": "vote_cast", "actor": "U1", "decision": "deny", "done": 0, "total": 2}
    )
    assert isinstance(loaded, VoteCast)
    with pytest.raises(ValidationError):
        EVENTS.validate_python({"kind": "something_else"})
    with pytest.raises(ValidationError):  # data only: no free text rides along
        EVENTS.validate_python({"kind": "executing", "text": "Pausing…"})


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        SAMPLES["progress"].done = 3  # type: ignore[union-attr,misc]
