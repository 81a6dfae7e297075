"""Plain-text renderings of results, shared by the CLI and the console (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain.approvals import ApprovalView
from bot.domain.errors import BotError, ProviderError
from bot.domain.models import OperationResult, TargetState, Verb
from bot.domain.requests import AuditEvent, OperationRequest, RequestStatus
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


def states_table(states: Sequence[TargetState]) -> str:
    if not states:
        return "Nothing matched."
    return "\n".join(state_line(s) for s in states)


def result_lines(result: OperationResult) -> str:
    lines = [result.summary()]
    if result.provider_message:
        lines.append(f"  provider said: {result.provider_message}")
    if result.request_id:
        lines.append(f"  request id: {result.request_id}")
    if result.note:
        lines.append(f"  {result.note}")
    return "\n".join(lines)


def error_line(error: BotError) -> str:
    """One sentence (plus usage for bad input) naming the provider's own code."""
    prefix = "error"
    if isinstance(error, ProviderError):
        prefix = f"{error.provider} error"
    return f"{prefix}: {error.user_message()}"


def card_text(request: OperationRequest, approval: ApprovalView | None = None) -> str:
    """The request card as plain text (console)."""
    spec = request.spec
    lines = [
        f"[{request.status.value.upper()}] {spec.describe()}",
        f"  target: {spec.target_label()} (id {spec.key})"
        if spec.kind.keyed_by_id
        else f'  target: {spec.target_label()} "{spec.name}"',
        f"  asked by: {request.requested_by} via {request.via.value}",
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
            return f"Approval needed: {note.total} approval(s) before this runs."
        case NoteKind.VOTE:
            return f"{note.actor}: {note.decision} {note.text}".strip()
        case NoteKind.DECISION:
            return note.text
        case NoteKind.RESULT:
            if request.status is RequestStatus.SUCCEEDED:
                return f"Done: {request.state_after} (verified by reading it back)."
            if request.status is RequestStatus.UNVERIFIED:
                return (
                    f"Sent, but the read-back shows {request.state_after}; check again with status."
                )
            return f"Failed: {request.error}"
        case _:
            return note.text


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
