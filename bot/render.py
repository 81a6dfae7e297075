"""Plain-text renderings of outcomes and errors, shared by the CLI and the console (pure
functions). :func:`outcome_text` words every outcome of :mod:`bot.service.commands`;
:func:`error_text` is the one place a :class:`BotError` becomes a line of text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain.approvals import ApprovalView
from bot.domain.errors import BadInput, BotError, ProviderError
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
from bot.domain.help import SLASH_COMMAND, USAGE, help_text
from bot.domain.models import (
    NormalState,
    OperationResult,
    TargetKind,
    TargetState,
    ThenAction,
    Verb,
)
from bot.domain.requests import (
    AuditEvent,
    ExecutionPhase,
    OperationRequest,
    PauseOutcome,
    PauseRecord,
    RequestStatus,
    format_timedelta,
)
from bot.render_bulk import done_text, preview_text, progress_bar, started_text
from bot.service.bulk import BatchDone, BatchPreview, BatchProgress, BatchStarted
from bot.service.commands import (
    FormNeeded,
    HelpOutcome,
    HistoryOutcome,
    ListOutcome,
    Outcome,
    PickTarget,
    StatusOutcome,
    SubmittedRequest,
)


def _when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip() if value else None


def state_line(state: TargetState) -> str:
    t = state.target
    named = f"{t.label()} (id {t.key})" if t.kind.keyed_by_id else f'{t.label()} "{t.name}"'
    parts = [f"{named}: {state.describe()}"]
    if state.schedule and state.schedule.ical_recur:
        parts.append(f"schedule {state.schedule.ical_recur}")
    if nxt := _when(state.next_run):
        parts.append(f"next run {nxt}")
    if last := _when(state.last_run):
        parts.append(f"last run {last}")
    if state.population is not None:
        parts.append(f"population {state.population}")
    if state.execution_status:
        parts.append(f"execution {state.execution_status}")
    if len(state.versions) > 1:
        parts.append("versions " + ", ".join(f"v{v.version} {v.status}" for v in state.versions))
    return "; ".join(parts)


def states_table(
    states: Sequence[TargetState],
    *,
    watched: Mapping[tuple[str, TargetKind, str], PauseRecord] | None = None,
    now: datetime | None = None,
) -> str:
    """One line per target; ``watched`` (the pauses the bot watches, by environment, kind
    and key) adds who paused it and when the pause ends (and, given ``now``, the time
    left)."""
    if not states:
        return "Nothing matched."
    lines = []
    for s in states:
        line = state_line(s)
        t = s.target
        pause = (watched or {}).get((t.environment, t.kind, t.key))
        if pause is not None:
            line += f"; paused by the bot for {pause.paused_by}"
            if pause.batch_id is not None:
                line += f" (batch {pause.batch_id})"
            if pause.ends_at is not None:
                line += f", ends {_when(pause.ends_at.astimezone(UTC))}"
                if now is not None:
                    line += f" ({time_left(pause.ends_at, now)})"
                line += f", then {pause.then.value}"
            else:
                line += ", no end set"
        lines.append(line)
    return "\n".join(lines)


def time_left(ends_at: datetime, now: datetime) -> str:
    """``2d 3h left``, or ``due now`` once the end has come."""
    left = ends_at - now
    if left.total_seconds() < 60:
        return "due now"
    return f"{format_timedelta(left)} left"


def result_lines(result: OperationResult) -> str:
    """A result carried out without the bot's database (nothing recorded)."""
    lines = [_result_head(result)]
    if result.provider_message:
        lines.append(f"  provider said: {result.provider_message}")
    if result.request_id:
        lines.append(f"  provider request id: {result.request_id}")
    if result.note:
        lines.append(f"  {result.note}")
    return "\n".join(lines)


def _result_head(result: OperationResult) -> str:
    if result.verb is not Verb.RUN:
        return result.summary()
    t = result.target
    after = result.after
    ran = ran_text(
        {
            "last_run_before": _iso(result.before.last_run),
            "last_run": _iso(after.last_run),
            "next_run": _iso(after.next_run),
            "execution": after.execution_status,
        }
    )
    return f"run {t.display()}: {ran}; now {after.describe()}{_verdict(result.verified)}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _verdict(verified: bool, after: str | None = None) -> str:
    if verified:
        return " (verified)"
    return " (NOT verified by the read-back" + (f": it shows {after})" if after else ")")


def ran_text(run: Mapping[str, Any]) -> str:
    """What the read-back after a run shows ran: a new last run, an execution under way,
    or that it shows no new run yet (its detail: :func:`bot.service.requests.run_detail`)."""
    last_before, last = run.get("last_run_before"), run.get("last_run")
    parts = []
    if last and last != last_before:
        parts.append(f"a run started {_when_iso(last)}")
    if run.get("execution"):
        parts.append(f"execution {run['execution']}")
    if not parts:
        seen = [f"last run {_when_iso(last)}" if last else "no run yet"]
        if run.get("next_run"):
            seen.append(f"next run {_when_iso(run['next_run'])}")
        return f"the read-back shows no new run yet ({'; '.join(seen)})"
    return ", ".join(parts) + " (read back)"


def _when_iso(value: str) -> str:
    try:
        return _when(datetime.fromisoformat(value).astimezone(UTC)) or value
    except ValueError:
        return value


def pause_end_line(
    then: ThenAction, ends_at: datetime, *, recorded: bool, ended_by: str | None = None
) -> str:
    """When a timed pause ends and who carries out its end (``recorded``: the pause is in
    the bot's database, so a running bot watches it; ``ended_by``: the provider that ends
    it by itself, e.g. Journey Builder)."""
    when = _when(ends_at.astimezone(UTC))
    bot = "a running bot (automation-bot serve, or console, on this database)"
    if ended_by is not None:
        line = f"ends {when}: {ended_by} ends it by itself then ({then.value})"
        return line + (f"; {bot} reads it back and reports." if recorded else ".")
    if not recorded:
        return (
            f"ends {when}, then {then.value}: NOT watched: nothing was recorded in the bot's "
            f"database, so no bot will {then.value} it at the end; do that yourself."
        )
    if then is ThenAction.KEEP:
        return f"ends {when}, then keep: it stays paused; {bot} reminds before the end."
    return f"ends {when}, then {then.value}: {bot} carries out the {then.value} at that time."


def request_lines(
    request: OperationRequest,
    events: Sequence[AuditEvent],
    *,
    recorded: bool = True,
    ended_by: str | None = None,
) -> str:
    """A request carried out (exec); ``recorded``: in the bot's database, which keeps its
    id and history and whose running bot watches a timed pause (otherwise both are lost);
    ``ended_by``: the provider that ends a timed pause by itself."""
    spec = request.spec
    settled = next(
        (e.detail for e in reversed(events) if e.action in ("verified", "unverified")), {}
    )
    target = f"{spec.target_label()}" + (
        f' "{spec.name}"' if spec.name and spec.name.lower() != spec.key.lower() else ""
    )
    verified = request.status is RequestStatus.SUCCEEDED
    if request.status is RequestStatus.FAILED:
        head = f"{spec.describe()}: failed: {request.error}"
    elif spec.verb is Verb.RUN and settled:
        head = (
            f"run {target}: {ran_text(settled)}; now {request.state_after}"
            f"{_verdict(verified, request.state_after)}"
        )
    else:
        verb = "extend the pause of" if spec.extend else spec.verb.value
        head = (
            f"{verb} {target}: {request.state_before} -> {request.state_after}"
            f"{_verdict(verified, request.state_after)}"
        )
    lines = [head]
    if settled.get("provider_message"):
        lines.append(f"  provider said: {settled['provider_message']}")
    if recorded:
        lines.append(f"  request id: {request.id} (recorded with its history)")
    if request.provider_request_id:
        lines.append(f"  provider request id: {request.provider_request_id}")
    if request.pause_ends_at is not None and (recorded or verified):
        then = spec.pause.then if spec.pause else ThenAction.RESUME
        end = pause_end_line(then, request.pause_ends_at, recorded=recorded, ended_by=ended_by)
        lines.append("  " + end)
    lines.append(f"  requested by {request.requested_by}")
    return "\n".join(lines)


def error_text(error: BotError, *, plain: bool = False) -> str:
    """The one wording of an error for the console and the CLI: one sentence (plus usage
    for bad input) naming the provider's own code. ``plain`` (the console): without the
    slash command and code marks."""
    prefix = "error"
    if isinstance(error, ProviderError):
        prefix = f"{error.provider} error"
    line = f"{prefix}: {error.user_message()}"
    if plain:
        line = line.replace(f"{SLASH_COMMAND} ", "").replace("`", "")
    return line


def outcome_text(outcome: Outcome, *, where: str = "here") -> str:
    """The outcome of a command as text (console, CLI). A target to pick or the pause
    form cannot be answered in text: they are refusals (:class:`BotError`), raised so
    that :func:`error_text` words them. ``where`` names the front end in those."""
    match outcome:
        case HelpOutcome(topic=topic):
            return help_text(topic, plain=True)
        case FormNeeded():
            raise BadInput(
                f"The pause form is a Slack modal; {where}, give a target.",
                usage=USAGE[Verb.PAUSE],
            )
        case PickTarget(error=error):
            raise error
        case StatusOutcome(state=state):
            return state_line(state)
        case ListOutcome(states=states, watched=watched, at=at):
            return states_table(states, watched=watched, now=at)
        case HistoryOutcome(label=label, events=events):
            return history_lines(label, events)
        case SubmittedRequest(request=request, events=events, ends_natively=ended_by):
            return request_lines(request, events, ended_by=ended_by)
        case BatchPreview(batch=batch, plan=plan, production=production, required=required):
            return preview_text(batch, plan, production=production, required=required)
        case BatchStarted(batch=batch, required=required):
            return started_text(batch, required=required)
        case BatchProgress(progress=progress):
            return progress_bar(progress)
        case BatchDone(batch=batch):
            return done_text(batch)


def interrupted_text(after: str) -> str:
    """A request whose process stopped while sending it: recovery read it back, once."""
    return (
        f"The bot stopped while sending this; the read-back shows {after}, so it was "
        "probably not carried out. It was not sent again: check with status and ask "
        "again if it is still needed."
    )


def card_text(request: OperationRequest, approval: ApprovalView | None = None) -> str:
    """The request card as plain text (console)."""
    spec = request.spec
    lines = [
        f"[{request.status.value.upper()}] {spec.describe()}",
        f"  target: {spec.target_label()} (id {spec.key})"
        if spec.kind.keyed_by_id
        else f'  target: {spec.target_label()} "{spec.name}"',
        f"  asked by: {request.requested_by} via {request.via.value}",
        f"  request id: {request.id}",
    ]
    if request.reason:
        lines.append(f"  reason: {request.reason}")
    if request.state_before or request.state_after:
        lines.append(f"  state: {request.state_before or '?'} -> {request.state_after or '?'}")
    if request.pause_outcome is not None:
        ended = request.pause_outcome
        by = f" by {ended.by}" if ended.by else ""
        lines.append(f"  pause: {pause_outcome_text(ended)}{by} ({_when(ended.at)})")
    elif request.pause_ends_at:
        then = spec.pause.then.value if spec.pause else "resume"
        lines.append(f"  ends: {_when(request.pause_ends_at)}, then {then}")
    if approval is not None:
        lines.append(
            f"  approval: {len(approval.approvals)} of {approval.required} from "
            f"{', '.join(approval.approvers)}, until {_when(approval.expires_at)}"
        )
        for vote in approval.votes:
            lines.append(f"    {vote.decision.value}d by {vote.voter} at {_when(vote.at)}")
        if request.status is RequestStatus.AWAITING_APPROVAL and approval.short_of_approvers:
            could = ", ".join(approval.eligible or ()) or "nobody"
            lines.append(
                f"  cannot be approved as configured: {could} could approve it; change "
                f"environments.{approval.environment}.approval (more approvers, a lower "
                "required, or allow_self_approval: true); the requester can still deny it"
            )
    if request.execution_phase is ExecutionPhase.INTERRUPTED:
        lines.append(f"  unverified: {interrupted_text(request.state_after or 'unknown')}")
    if request.error:
        lines.append(f"  error: {request.error}")
    return "\n".join(lines)


def event_text(request: OperationRequest, event: Event) -> str:
    """One thing that happened to ``request``, as a line of plain text (console)."""
    spec = request.spec
    match event:
        case Executing():
            return f"{_ING[spec.verb]} {spec.target_label()}…"
        case Progress(done=done, total=total, noun=noun):
            return (
                f"Waiting for the provider to show the change: read-back {done} of {total} {noun}…"
            )
        case ApprovalNeeded(required=required):
            return (
                f"Approval needed: {required} approval(s) before this runs. An approver "
                f"types: as <their user id>, then: approve {request.id} (or deny {request.id})"
            )
        case VoteCast(actor=actor, decision=decision, done=done, total=total):
            said = _VOTE_WORDS.get(decision, decision)
            return f"{actor} {said} ({done} of {total} approval(s))."
        case Decided(decision="approved"):
            return "Approved."
        case Decided(decision="denied"):
            return "Denied: nothing was changed."
        case Decided():
            return "Expired before enough approvals: nothing was changed."
        case Succeeded(state_after=after):
            return f"Done: {after} (verified by reading it back)."
        case Unverified(state_after=after, interrupted=True):
            return interrupted_text(after)
        case Unverified(state_after=after):
            return f"Sent, but the read-back shows {after}; check again with status."
        case RequestFailed(message=message):
            return f"Failed: {message}"
        case RecoverySending():
            return "The bot stopped before sending this to the provider; sending it now."
        case RecoveryReadBack(state=state):
            return (
                "The bot stopped while sending this to the provider; it was not sent again. "
                f"The read-back shows {state}."
            )
        case ReactionIgnored(actor=actor, environment=environment):
            return (
                f"{actor} reacted, but is not an approver for {environment}: that reaction "
                "does not count."
            )
        case VoteRefused():
            return vote_refused_text(event)
        case PauseEnded():
            return pause_end_text(event)
        case ResumeRetrying(label=label, message=message, attempts_max=most, late=late):
            return (
                f"{late_prefix(late)}The pause time is up, but could not resume {label}: "
                f"{message} The bot tries again (up to {most} times) and says here when it is "
                "done."
            )
        case ResumeGaveUp(label=label, message=message, tries=tries):
            return (
                f"Gave up resuming {label} after {tries} tries: {message} It is still paused: "
                "resume it once the problem is fixed."
            )
        case PauseReminder(label=label, ends_in=None, paused_for=since):
            paused = format_timedelta(since) if since is not None else "a while"
            return f"Reminder: {label} has been paused for {paused}, with no end set."
        case PauseReminder(label=label, ends_in=left, then=then):
            ends = format_timedelta(left)
            return f"Reminder: the pause of {label} ends in {ends}, then {then.value}."
        case PauseExtended(actor=actor, ends_at=ends_at):
            return f"{actor} extended this pause: it now ends {_when(ends_at.astimezone(UTC))}."
        case LetItEnd(actor=actor, then=then):
            return f"{actor} lets the pause end as planned ({then.value}); no more reminders."


_VOTE_WORDS = {
    "approve": "approved",
    "deny": "denied",
    "withdraw-approve": "withdrew their approval",
    "withdraw-deny": "withdrew their denial",
}


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


def _provider_did(event: PauseEnded) -> str:
    product = event.product or "the provider"
    return {
        NormalState.ACTIVE: f"{product} resumed it",
        NormalState.STOPPED: f"{product} stopped it",
        NormalState.PAUSED: "it stays paused as asked",
    }.get(event.normal or NormalState.UNKNOWN, f"it is now {event.state}")


def pause_outcome_text(outcome: PauseOutcome) -> str:
    """How a request's pause ended, in a few words (rows from before events: their text)."""
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
            flag = "" if event.expected else f" (expected {event.then.value})"
            return f"{_provider_did(event)}: {state}{flag}"
        case "drifted":
            return f"changed outside the bot: now {state}"
        case "replaced":
            return "ended: paused again by a newer request"
        case "ended_early":
            verb = event.verb.value if event.verb else "newer"
            return f"ended early by a {verb} request: now {state}"


def pause_end_text(event: PauseEnded) -> str:
    """How a pause ended, as the console tells it."""
    late, state, label = late_prefix(event.late), event.state, event.label
    flag = "" if event.expected else f" (expected {event.then.value})"
    match event.how:
        case "resumed" if event.verified:
            return f"{late}The pause time is up. Resumed: it is now {state} (verified)."
        case "resumed":
            return (
                f"{late}The pause time is up. Sent the resume, but the read-back still shows "
                f"{state}; check it with status."
            )
        case "kept":
            return f"{late}The pause time is up; {label} stays paused as asked."
        case "already_changed":
            return f"{late}The pause time is up. Nothing to resume: {event.detail or state}"
        case "guardrail_missed":
            return (
                f"{late}Unexpected: the pause should have ended ({event.then.value}) but "
                f"{label} is still {state}; resume or stop it yourself."
            )
        case "ended_by_provider":
            return f"{late}The pause ended: {_provider_did(event)}; read back: {state}{flag}."
        case "drifted":
            return f"{label} is now {state}: it was changed outside the bot; no longer tracked."
        case "replaced":
            return "This pause ended: it was paused again by a newer request."
        case "ended_early":
            verb = event.verb.value if event.verb else "newer"
            return f"This pause ended early: a {verb} request made it {state}."


_ING = {
    Verb.PAUSE: "Pausing",
    Verb.RESUME: "Resuming",
    Verb.STOP: "Stopping",
    Verb.RUN: "Running",
}


def history_lines(label: str, events: Sequence[AuditEvent]) -> str:
    if not events:
        return f"No history for {label}."
    out = [f"History of {label} (newest first):"]
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v is not None)
        out.append(f"  {_when(e.at)}  {e.action:<12} {e.actor} via {e.via.value}  {detail}")
    return "\n".join(out)


_ALREADY = {
    "approved": "already approved",
    "executing": "already approved and running",
    "succeeded": "already approved and done",
    "unverified": "already approved and sent",
    "failed": "already decided (it failed)",
    "denied": "already denied",
    "expired": "expired",
}


def vote_refused_text(refused: VoteRefused) -> str:
    """Why a vote did not count, for the voter alone."""
    match refused.why:
        case "unknown_request":
            return "That request is no longer known to the bot."
        case "no_approval_needed":
            return "This request does not need an approval."
        case "already_decided":
            state = _ALREADY.get(refused.status or "", refused.status or "decided")
            return f"This request is {state}; your vote was not needed."
        case "already_counted":
            return f"Your {refused.decision} was already counted."
        case "not_an_approver":
            return (
                f"Only approvers for {refused.environment} can approve or deny this request; "
                "your vote was not counted."
            )
        case "own_request":
            return (
                "You asked for this change, so you cannot approve it yourself; another "
                "approver has to."
            )
