"""Pure translation from scrip automation JSON to the project's models (no HTTP here).

Field names follow reference scrip.md §7. ``status`` is the automation's lifecycle
(active, paused, archived, completed, failed); ``execution_status`` exists only for
participant-scoped automations (idle, pending, executing, completed, failed).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.models import NormalState, Target, TargetKind, TargetState, TargetSummary

RUNNING_EXECUTIONS = frozenset({"pending", "executing"})

_BY_STATUS: Mapping[str, NormalState] = {
    "active": NormalState.ACTIVE,
    "paused": NormalState.PAUSED,
    "archived": NormalState.ARCHIVED,
    "completed": NormalState.INACTIVE,
    "failed": NormalState.ERROR,
}

#: Fields copied into ``TargetState.details`` when present.
_DETAIL_FIELDS = (
    "trigger_type",
    "scope",
    "source",
    "event_name",
    "cron_expression",
    "timezone",
    "trigger_at",
    "participants_processed",
    "participants_total",
    "execution_started_at",
    "execution_completed_at",
    "execution_error",
    "last_error",
    "error_message",
    "description",
    "updated_at",
)


def is_uuid(value: str) -> bool:
    """True for a canonical UUID string (scrip ids are ``string<uuid>``)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def normal_state(status: str | None, execution_status: str | None) -> NormalState:
    """active + a pending/executing run is RUNNING; otherwise the status decides."""
    if status == "active" and execution_status in RUNNING_EXECUTIONS:
        return NormalState.RUNNING
    return _BY_STATUS.get(status or "", NormalState.UNKNOWN)


def raw_status(status: str | None, execution_status: str | None) -> str:
    """The provider's own words, e.g. ``active/executing`` or ``paused``."""
    base = status or "unknown"
    return f"{base}/{execution_status}" if execution_status else base


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) else None


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def to_target(body: Mapping[str, Any], environment: str) -> Target:
    automation_id = str(body.get("id", ""))
    return Target(
        environment=environment,
        kind=TargetKind.SCRIP,
        key=automation_id,
        name=_text(body, "name") or automation_id,
        id=automation_id,
    )


def to_state(body: Mapping[str, Any], environment: str) -> TargetState:
    status = _text(body, "status")
    execution = _text(body, "execution_status")
    last_run = (
        parse_time(body.get("last_run_at"))
        or parse_time(body.get("execution_started_at"))
        or parse_time(body.get("processed_at"))
    )
    details = {key: body[key] for key in _DETAIL_FIELDS if body.get(key) is not None}
    return TargetState(
        target=to_target(body, environment),
        state=normal_state(status, execution),
        raw_status=raw_status(status, execution),
        next_run=parse_time(body.get("next_run_at")),
        last_run=last_run,
        population=_int(body, "participants_total"),
        execution_status=execution,
        details=details,
    )


def to_summary(body: Mapping[str, Any]) -> TargetSummary:
    automation_id = str(body.get("id", ""))
    return TargetSummary(
        kind=TargetKind.SCRIP,
        key=automation_id,
        name=_text(body, "name") or automation_id,
        id=automation_id,
        raw_status=raw_status(_text(body, "status"), _text(body, "execution_status")),
    )


def untriggerable_reason(trigger_type: object, scope: object) -> str | None:
    """Why scrip will never trigger this kind of automation (docs §7), or None."""
    if trigger_type == "participant_state":
        return "participant_state automations fire on participant changes and cannot be run"
    if trigger_type == "one_time" and scope == "program":
        return "program-scoped one_time automations fire once at trigger_at and cannot be run"
    return None
