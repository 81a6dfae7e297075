"""Slack's wording of every event: thread replies, card lines and notify-channel notices."""

from __future__ import annotations

import pytest

from bot.domain.events import PauseEnded
from bot.domain.models import Verb
from bot.domain.requests import PauseOutcome, RequestStatus
from bot.slack.blocks import request_card
from bot.slack.messages import notice_text, pause_outcome_text, render
from tests.bot.test_events import AT, SAMPLES
from tests.slack.test_blocks import NOW, all_text, check_message, make_request

#: What each event's thread reply says (a part of it).
THREAD: dict[str, str] = {
    "executing": "Pausing staging/journey:welcome v3…",
    "progress": "Waiting for the provider to show the change: read-back 2 of 5 tries",
    "succeeded": ":white_check_mark: Paused `staging/journey:welcome",
    "unverified": "was sent, but the read-back shows",
    "unverified_interrupted": "was sent, but the read-back shows",
    "request_failed": ":x: Could not pause automation",
    "recovery_sending": "The bot stopped before sending this to the provider; sending it now.",
    "recovery_read_back": "it was not sent again. The read-back shows paused.",
    "approval_needed": "this needs 2 approval(s) from <@U0BOB> or <@U0CAROL>",
    "vote_cast": ":white_check_mark: <@U0BOB> approved (1 of 2)",
    "vote_withdrawn": "<@U0BOB> withdrew their approval (0 of 2)",
    "approved": "Approved (last approval by <@U0BOB>): carrying it out now.",
    "denied": "Denied by <@U0CAROL>: nothing was changed.",
    "expired": "Expired before enough approvals: nothing was changed.",
    "vote_refused": "Only approvers for production can approve or deny this request",
    "vote_refused_decided": "This request is already denied; your vote was not needed.",
    "reaction_ignored": "<@U0EVE> reacted, but is not an approver for production",
    "ended_resumed": "The pause time is up. Resumed: it is now active (6 Scheduled) (verified",
    "ended_resumed_late": "(Late by 1d2h5m: the bot was not running when this was due.) The "
    "pause time is up. Resumed",
    "ended_resumed_unverified": "Sent the resume, but the read-back still shows paused",
    "ended_kept": "daily-welcome-send stays paused as asked. Use Resume now",
    "ended_already_changed": "Nothing to resume: Cannot resume automation daily-welcome-send",
    "ended_guardrail_missed": "Journey Builder's guardrail did not act",
    "ended_by_provider": "The pause ended: Journey Builder stopped it; read back: stopped.",
    "ended_by_provider_kept": "The pause ended: it stays paused as asked; read back: paused.",
    "ended_drifted": "it was changed outside the bot, so this pause is no longer tracked",
    "ended_replaced": "paused again by a newer request",
    "ended_early": "a resume request made it active",
    "resume_retrying": "could not resume daily-welcome-send: SFMC is unavailable. The bot "
    "tries again (up to 5 times)",
    "resume_gave_up": "Gave up resuming daily-welcome-send after 5 tries",
    "reminder": "Reminder: the pause of daily-welcome-send ends in 23h59m, then resume.",
    "reminder_open_ended": "Reminder: daily-welcome-send has been paused for 2d, with no end set.",
    "extended": "<@U0ALICE> extended this pause: it now ends 2026-11-20 09:30 UTC.",
    "let_it_end": "<@U0ALICE> lets the pause end as planned (resume); no more reminders.",
}

#: The notices a notify channel subscribes to; every other event posts none.
NOTICES: dict[str, str] = {
    "ended_resumed": "pause ended: active (6 Scheduled)",
    "ended_resumed_late": "pause ended: active (6 Scheduled) (Late by 1d2h5m: the bot was not "
    "running when this was due.)",
    "ended_resumed_unverified": "pause ended: paused",
    "ended_kept": "pause time is up; it stays paused (kept)",
    "ended_already_changed": "pause ended: it had already been changed",
    "ended_guardrail_missed": "pause did not end as expected: still paused",
    "ended_by_provider": "pause ended: stopped",
    "ended_by_provider_kept": "pause ended: paused",
    "ended_drifted": "changed outside the bot: now active",
    "resume_gave_up": "pause did not end: the bot could not resume it",
}

#: How the card says its pause ended.
CARD_LINES: dict[str, str] = {
    "ended_resumed": "resumed: active (6 Scheduled) (verified)",
    "ended_resumed_late": "resumed: active (6 Scheduled) (verified)",
    "ended_resumed_unverified": "resume sent; the read-back still shows paused",
    "ended_kept": "time is up; it stays paused as asked",
    "ended_already_changed": "ended: it had already been changed (Scheduled)",
    "ended_guardrail_missed": "did not end as expected (resume): still paused",
    "ended_by_provider": "Journey Builder stopped it: stopped",
    "ended_by_provider_kept": "time is up; it stays paused as asked",
    "ended_drifted": "changed outside the bot: now active",
    "ended_replaced": "ended: paused again by a newer request",
    "ended_early": "ended early by a resume request: now active",
}


def _request_for(name: str):  # type: ignore[no-untyped-def]
    if name in ("succeeded",):
        return make_request(state_after="paused")
    if name.startswith("unverified"):
        return make_request(status=RequestStatus.UNVERIFIED, state_after="active")
    if name == "request_failed":
        return make_request(
            status=RequestStatus.FAILED,
            error="Could not pause automation 'x': SFMC refused it (code 2).",
        )
    if name == "approval_needed":
        return make_request(status=RequestStatus.AWAITING_APPROVAL)
    return make_request(status=RequestStatus.EXECUTING)


def test_every_sample_has_its_words() -> None:
    assert set(THREAD) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_event_renders_as_a_valid_thread_reply(name: str) -> None:
    message = check_message(render(SAMPLES[name], _request_for(name)))
    assert THREAD[name] in all_text(message.blocks) or THREAD[name] in message.text


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_notify_channel_subscribes_to_pause_ends_and_give_ups_only(name: str) -> None:
    assert notice_text(SAMPLES[name]) == NOTICES.get(name)


@pytest.mark.parametrize("name", sorted(CARD_LINES))
def test_a_card_is_drawn_again_from_the_stored_event(name: str) -> None:
    event = SAMPLES[name]
    assert isinstance(event, PauseEnded)
    stored = PauseOutcome.model_validate(PauseOutcome(at=AT, event=event).model_dump(mode="json"))
    assert pause_outcome_text(stored) == CARD_LINES[name]
    card = check_message(request_card(make_request(pause_outcome=stored), now=NOW))
    assert CARD_LINES[name].replace("'", "&#39;") in all_text(card.blocks)


def test_a_card_stored_before_events_shows_its_old_text() -> None:
    old = PauseOutcome.model_validate(
        {"at": AT.isoformat(), "text": "resumed: active (verified)", "still_paused": False}
    )
    assert old.event is None
    assert pause_outcome_text(old) == "resumed: active (verified)"
    card = request_card(make_request(pause_outcome=old), now=NOW)
    assert "resumed: active (verified)" in all_text(card.blocks)


def test_reminder_reply_keeps_its_buttons() -> None:
    message = check_message(render(SAMPLES["reminder"], make_request(verb=Verb.PAUSE)))
    assert "Let it end" in all_text(message.blocks)
