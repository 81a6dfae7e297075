"""Plain-text renderings of results, shared by the CLI and the console (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain.errors import BotError, ProviderError
from bot.domain.models import OperationResult, TargetState


def _when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip() if value else None


def state_line(state: TargetState) -> str:
    t = state.target
    parts = [f'{t.label()} "{t.name}": {state.describe()}']
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
