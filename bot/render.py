"""Plain-text renderings of outcomes and errors, shared by the CLI and the console (pure
functions). :func:`outcome_text` words every outcome of :mod:`bot.service.commands`;
:func:`error_text` is the one place a :class:`BotError` becomes a line of text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain.approvals import ApprovalView
from bot.domain.errors import BadInput, BotError, ProviderError
from bot.domain.help import SLASH_COMMAND, USAGE, help_text
from bot.domain.models import OperationResult, TargetKind, TargetState, ThenAction, Verb
from bot.domain.requests import (
    AuditEvent,
    OperationRequest,
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
from bot.service.notify import Note, NoteKind


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


def pause_end_line(kind: TargetKind, then: ThenAction, ends_at: datetime, *, recorded: bool) -> str:
    """When a timed pause ends and who carries out its end (``recorded``: the pause is in
    the bot's database, so a running bot watches it)."""
    when = _when(ends_at.astimezone(UTC))
    bot = "a running bot (automation-bot serve, or console, on this database)"
    if kind is TargetKind.JOURNEY:
        line = f"ends {when}: Journey Builder ends it by itself then ({then.value})"
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
    request: OperationRequest, events: Sequence[AuditEvent], *, recorded: bool = True
) -> str:
    """A request carried out (exec); ``recorded``: in the bot's database, which keeps its
    id and history and whose running bot watches a timed pause (otherwise both are lost)."""
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
        lines.append(
            "  " + pause_end_line(spec.kind, then, request.pause_ends_at, recorded=recorded)
        )
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
        case SubmittedRequest(request=request, events=events):
            return request_lines(request, events)
        case BatchPreview(batch=batch, plan=plan, production=production):
            return preview_text(batch, plan, production=production)
        case BatchStarted(batch=batch):
            return started_text(batch)
        case BatchProgress(progress=progress):
            return progress_bar(progress)
        case BatchDone(batch=batch):
            return done_text(batch)


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
    if request.pause_ends_at:
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
    if request.error:
        lines.append(f"  error: {request.error}")
    return "\n".join(lines)


def note_text(request: OperationRequest, note: Note) -> str:
    """One thread reply as plain text (console)."""
    spec = request.spec
    match note.kind:
        case NoteKind.EXECUTING:
            return f"{_ING[spec.verb]} {spec.target_label()}…"
        case NoteKind.PROGRESS:
            return f"{note.text} {note.done} of {note.total} {note.noun}…"
        case NoteKind.APPROVAL_NEEDED:
            return (
                f"Approval needed: {note.total} approval(s) before this runs. An approver "
                f"types: as <their user id>, then: approve {request.id} (or deny {request.id})"
            )
        case NoteKind.VOTE:
            return _vote_text(note)
        case NoteKind.DECISION:
            return note.text
        case NoteKind.RESULT:
            if request.status is RequestStatus.SUCCEEDED:
                return f"Done: {request.state_after} (verified by reading it back)."
            if request.status is RequestStatus.UNVERIFIED and request.error:
                return request.error
            if request.status is RequestStatus.UNVERIFIED:
                return (
                    f"Sent, but the read-back shows {request.state_after}; check again with status."
                )
            return f"Failed: {request.error}"
        case _:
            return note.text


def _vote_text(note: Note) -> str:
    words = {
        "approve": "approved",
        "deny": "denied",
        "withdraw-approve": "withdrew their approval",
        "withdraw-deny": "withdrew their denial",
    }
    said = words.get(note.decision or "", note.decision or "voted")
    count = f" ({note.done} of {note.total} approval(s))" if note.total is not None else ""
    return f"{note.actor} {said}{count}. {note.text}".strip()


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
