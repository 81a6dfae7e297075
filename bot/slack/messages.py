"""How Slack words what happened: every :mod:`event <bot.domain.events>` as a thread reply
(:func:`render`), as a line on its request's card (:func:`pause_outcome_text`) and, for the
events a notify channel subscribes to, as a one-line notice (:func:`notice_text`). Pure
functions: the events carry data, the sentences are here (the console's are in
:mod:`bot.render`)."""

from __future__ import annotations

from datetime import UTC

from bot import render as plain
from bot.domain.events import (
    ApprovalNeeded,
    Decided,
    Event,
    Executing,
    Late,
    LetItEnd,
    PauseEnded,
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
from bot.domain.models import NormalState
from bot.domain.requests import OperationRequest, PauseOutcome, format_timedelta
from bot.slack import blocks

#: What the thread says while the bot reads a change back.
READ_BACK_STEP = "Waiting for the provider to show the change: read-back"


def render(event: Event, request: OperationRequest) -> blocks.Message:
    """The reply in ``request``'s thread that tells ``event``."""
    match event:
        case Executing():
            return blocks.executing_reply(request)
        case Progress(done=done, total=total, noun=noun):
            return blocks.progress_reply(done, total, READ_BACK_STEP, noun=noun)
        case Succeeded() | Unverified() | RequestFailed():
            return blocks.result_reply(request)
        case ApprovalNeeded(required=required, approval=approval):
            return blocks.approval_needed_reply(request, required=required, approval=approval)
        case VoteCast(actor=actor, decision=decision, done=done, total=total):
            return blocks.vote_reply(actor, decision, done=done, total=total)
        case Decided(actor=actor, decision=decision):
            return blocks.decision_reply(actor, decision)
        case PauseReminder():
            return blocks.reminder_reply(request, reminder_text(event))
        case PauseExtended(actor=actor, ends_at=ends_at):
            when = ends_at.astimezone(UTC)
            return blocks.info_reply(
                actor, f"extended this pause: it now ends {when:%Y-%m-%d %H:%M} UTC."
            )
        case LetItEnd(actor=actor, then=then):
            return blocks.info_reply(
                actor, f"lets the pause end as planned ({then.value}); no more reminders."
            )
        case ReactionIgnored(actor=actor, environment=environment):
            return reaction_ignored_reply(actor, environment)
        case RecoverySending():
            return blocks.info_reply(
                None, "The bot stopped before sending this to the provider; sending it now."
            )
        case RecoveryReadBack(state=state):
            return blocks.info_reply(
                None,
                "The bot stopped while sending this to the provider; it was not sent again. "
                f"The read-back shows {state}.",
            )
        case VoteRefused():
            return blocks.error_message(vote_refused_text(event))
        case PauseEnded():
            return blocks.info_reply(None, pause_end_text(event))
        case ResumeRetrying(label=label, message=message, attempts_max=most, late=late):
            return blocks.info_reply(
                None,
                f"{late_prefix(late)}The pause time is up, but could not resume {label}: "
                f"{message} The bot tries again (up to {most} times) and says here when it is "
                "done.",
            )
        case ResumeGaveUp(label=label, message=message, tries=tries):
            return blocks.info_reply(
                None,
                f"Gave up resuming {label} after {tries} tries: {message} It is still paused: "
                "use Resume now once the problem is fixed.",
            )


def reaction_ignored_reply(actor: str, environment: str) -> blocks.Message:
    """A non-approver's reaction on a card, noted once in its thread."""
    return blocks.info_reply(
        actor,
        f"reacted, but is not an approver for {environment}: that reaction does not count.",
    )


def late_prefix(late: Late | None) -> str:
    """``(Late by 3m: the bot was not running when this was due.) `` or nothing."""
    if late is None:
        return ""
    why = (
        "the bot was not running when this was due"
        if late.bot_was_down
        else "the bot was busy with other due work"
    )
    return f"(Late by {format_timedelta(late.by)}: {why}.) "


def _late_tag(late: Late | None) -> str:
    return f" {late_prefix(late).strip()}" if late is not None else ""


def _flag(event: PauseEnded) -> str:
    return "" if event.expected else f" (expected {event.then.value})"


def _provider_did(event: PauseEnded) -> str:
    """What the provider's own end of a pause did, as read back."""
    product = event.product or "The provider"
    return {
        NormalState.ACTIVE: f"{product} resumed it",
        NormalState.STOPPED: f"{product} stopped it",
        NormalState.PAUSED: "it stays paused as asked",
    }.get(event.normal or NormalState.UNKNOWN, f"it is now {event.state}")


def pause_end_text(event: PauseEnded) -> str:
    """The thread's account of how a pause ended."""
    late, state, label = late_prefix(event.late), event.state, event.label
    match event.how:
        case "resumed" if event.verified:
            return (
                f"{late}The pause time is up. Resumed: it is now {state} (verified by reading "
                "it back)."
            )
        case "resumed":
            return (
                f"{late}The pause time is up. Sent the resume, but the read-back still shows "
                f"{state}; check it with status."
            )
        case "kept":
            return (
                f"{late}The pause time is up; {label} stays paused as asked. Use Resume now "
                "when it should run again."
            )
        case "already_changed":
            return f"{late}The pause time is up. Nothing to resume: {event.detail or state}"
        case "guardrail_missed":
            product = event.product or "The provider"
            return (
                f"{late}Unexpected: the pause should have ended ({event.then.value}) but "
                f"{label} is still {state}. {product}'s guardrail did not act; resume or stop "
                "it yourself."
            )
        case "ended_by_provider":
            return (
                f"{late}The pause ended: {_provider_did(event)}; read back: {state}{_flag(event)}."
            )
        case "drifted":
            return (
                f"{label} is now {state}: it was changed outside the bot, so this pause is no "
                "longer tracked."
            )
        case "replaced":
            return "This pause ended: it was paused again by a newer request."
        case "ended_early":
            verb = event.verb.value if event.verb else "newer"
            return f"This pause ended early: a {verb} request made it {state}."


def pause_outcome_text(outcome: PauseOutcome) -> str:
    """The card's line on how its pause ended (rows from before events: their text)."""
    event = outcome.event
    if event is None:
        return outcome.text or "ended"
    state = event.state
    match event.how:
        case "resumed" if event.verified:
            return f"resumed: {state} (verified)"
        case "resumed":
            return f"resume sent; the read-back still shows {state}"
        case "kept":
            return "time is up; it stays paused as asked"
        case "already_changed":
            return f"ended: it had already been changed ({state or 'unknown'})"
        case "guardrail_missed":
            return f"did not end as expected ({event.then.value}): still {state}"
        case "ended_by_provider" if event.normal is NormalState.PAUSED:
            return f"time is up; {_provider_did(event)}"
        case "ended_by_provider":
            return f"{_provider_did(event)}: {state}{_flag(event)}"
        case "drifted":
            return f"changed outside the bot: now {state}"
        case "replaced":
            return "ended: paused again by a newer request"
        case "ended_early":
            verb = event.verb.value if event.verb else "newer"
            return f"ended early by a {verb} request: now {state}"


def notice_text(event: Event) -> str | None:
    """The notify channel's line for ``event``; None: the channel is not told."""
    match event:
        case PauseEnded(how="resumed", state=state, late=late):
            return f"pause ended: {state}{_late_tag(late)}"
        case PauseEnded(how="kept", late=late):
            return f"pause time is up; it stays paused (kept){_late_tag(late)}"
        case PauseEnded(how="already_changed"):
            return "pause ended: it had already been changed"
        case PauseEnded(how="guardrail_missed"):
            return "pause did not end as expected: still paused"
        case PauseEnded(how="ended_by_provider", state=state):
            return f"pause ended: {state}{_flag(event)}"
        case PauseEnded(how="drifted", state=state):
            return f"changed outside the bot: now {state}"
        case ResumeGaveUp():
            return "pause did not end: the bot could not resume it"
        case _:
            return None


def reminder_text(event: PauseReminder) -> str:
    if event.ends_in is None:
        since = format_timedelta(event.paused_for) if event.paused_for is not None else "a while"
        return f"Reminder: {event.label} has been paused for {since}, with no end set."
    left = format_timedelta(event.ends_in)
    return f"Reminder: the pause of {event.label} ends in {left}, then {event.then.value}."


def let_it_end_answer(stopped: bool) -> str:
    """The private answer to 'Let it end' on a reminder."""
    return "No more reminders for this pause." if stopped else "That pause is no longer running."


def vote_refused_text(refused: VoteRefused) -> str:
    """Why a vote did not count, for the voter alone (the same words as the console's)."""
    return blocks.escape(plain.vote_refused_text(refused))
