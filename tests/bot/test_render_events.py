"""The console's wording of every event (one plain line each)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import render
from bot.domain.events import PauseEnded
from bot.domain.models import PauseOptions, TargetKind, Verb
from bot.domain.requests import OperationRequest, PauseOutcome, RequestSpec, RequestStatus, Via
from tests.bot.test_events import AT, SAMPLES
from tests.slack.test_messages import CARD_LINES

#: What the console prints for each event (a part of it).
LINES: dict[str, str] = {
    "executing": "Pausing staging/automation:daily-welcome-send…",
    "progress": "Waiting for the provider to show the change: read-back 2 of 5 tries…",
    "succeeded": "Done: paused (verified by reading it back).",
    "unverified": "Sent, but the read-back shows active (6 Scheduled); check again with status.",
    "unverified_interrupted": "The bot stopped while sending this; the read-back shows active",
    "request_failed": "Failed: Could not pause automation 'x': SFMC refused it (code 2).",
    "recovery_sending": "The bot stopped before sending this to the provider; sending it now.",
    "recovery_read_back": "it was not sent again. The read-back shows paused.",
    "approval_needed": "Approval needed: 2 approval(s) before this runs. An approver types: "
    "as <their user id>, then: approve req-1 (or deny req-1)",
    "vote_cast": "U0BOB approved (1 of 2 approval(s)).",
    "vote_withdrawn": "U0BOB withdrew their approval (0 of 2 approval(s)).",
    "approved": "Approved.",
    "denied": "Denied: nothing was changed.",
    "expired": "Expired before enough approvals: nothing was changed.",
    "vote_refused": "Only approvers for production can approve or deny this request",
    "vote_refused_decided": "This request is already denied; your vote was not needed.",
    "reaction_ignored": "U0EVE reacted, but is not an approver for production",
    "ended_resumed": "The pause time is up. Resumed: it is now active (6 Scheduled) (verified).",
    "ended_resumed_late": "(Late by 1d2h5m: the bot was not running when this was due.) The "
    "pause time is up.",
    "ended_resumed_unverified": "Sent the resume, but the read-back still shows paused",
    "ended_kept": "The pause time is up; daily-welcome-send stays paused as asked.",
    "ended_already_changed": "Nothing to resume: Cannot resume automation daily-welcome-send",
    "ended_guardrail_missed": "the pause should have ended (resume) but daily-welcome-send is "
    "still paused",
    "ended_by_provider": "The pause ended: Journey Builder stopped it; read back: stopped.",
    "ended_by_provider_kept": "The pause ended: it stays paused as asked; read back: paused.",
    "ended_drifted": "daily-welcome-send is now active: it was changed outside the bot",
    "ended_replaced": "paused again by a newer request",
    "ended_early": "a resume request made it active",
    "resume_retrying": "(Late by 1d2h5m: the bot was not running when this was due.) The pause "
    "time is up, but could not resume daily-welcome-send: SFMC is unavailable.",
    "resume_gave_up": "Gave up resuming daily-welcome-send after 5 tries",
    "reminder": "Reminder: the pause of daily-welcome-send ends in 23h59m, then resume.",
    "reminder_open_ended": "Reminder: daily-welcome-send has been paused for 2d, with no end set.",
    "extended": "U0ALICE extended this pause: it now ends 2026-11-20 09:30 UTC.",
    "let_it_end": "U0ALICE lets the pause end as planned (resume); no more reminders.",
}


def _request() -> OperationRequest:
    return OperationRequest(
        id="req-1",
        spec=RequestSpec(
            verb=Verb.PAUSE,
            environment="staging",
            kind=TargetKind.AUTOMATION,
            key="daily-welcome-send",
            name="Daily welcome send",
            target_id="a-1",
            pause=PauseOptions(duration=timedelta(days=1)),
        ),
        status=RequestStatus.EXECUTING,
        requested_by="U0ALICE",
        via=Via.CONSOLE,
        created_at=AT,
        updated_at=AT,
    )


def test_every_sample_has_a_line() -> None:
    assert set(LINES) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_event_is_one_plain_line(name: str) -> None:
    line = render.event_text(_request(), SAMPLES[name])
    assert LINES[name] in line
    assert "\n" not in line
    assert "<@" not in line  # no Slack markup on a terminal
    assert "*" not in line


@pytest.mark.parametrize("name", sorted(CARD_LINES))
def test_the_console_card_says_how_its_pause_ended(name: str) -> None:
    event = SAMPLES[name]
    assert isinstance(event, PauseEnded)
    ended = PauseOutcome(at=AT, event=event, by="U0BOB")
    assert render.pause_outcome_text(ended) == CARD_LINES[name]
    card = render.card_text(_request().model_copy(update={"pause_outcome": ended}))
    assert f"pause: {CARD_LINES[name]} by U0BOB" in card
