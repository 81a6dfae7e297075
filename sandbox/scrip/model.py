"""The scrip emulator's data: organisations, programs, automations and how they move in time.

Facts follow ``reference/scrip.md`` §6-§7; where Scrip is silent the defaults of §9 apply
and each one is a switch in :class:`EmulatorOptions`.

Time never moves by itself here: :meth:`Automation.refresh` brings an automation up to the
emulator clock (cron firings, fan-out progress, one-time completion), and the emulator calls
it before every read or write.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

STATUSES = ("active", "paused", "archived", "completed", "failed")
PATCHABLE_STATUSES = ("active", "paused")
TRIGGER_TYPES = ("cron", "one_time", "immediate", "participant_state")
SCOPES = ("program", "participants")
SOURCES = ("api", "rule_action")
EXECUTION_STATUSES = ("idle", "pending", "executing", "completed", "failed")
RUNNING_EXECUTIONS = ("pending", "executing")
#: Statuses from which PATCH may not change ``status`` (docs: archived "cannot be re-activated").
FINAL_STATUSES = ("archived", "completed", "failed")


class EmulatorOptions(BaseModel):
    """Switches for the behaviours Scrip does not document (reference scrip.md §9)."""

    rate_per_s: float = Field(default=10.0, gt=0, description="Token refill per second (§2)")
    burst: int = Field(default=30, ge=1, description="Bucket capacity (§2)")
    invalid_enum_status: Literal[400, 422] = 400
    malformed_id_status: Literal[400, 404] = 400
    invalid_transition_status: Literal[409, 400] = 409
    cancel_idle_status: Literal[400, 409] = 400
    delete_archived_status: Literal[200, 404] = 200
    null_next_run_on_pause: bool = False
    trigger_requires_strict_idle: bool = Field(
        default=False,
        description="Only execution_status=idle may be triggered (default: any finished run)",
    )
    pending_seconds: float = Field(default=1.0, ge=0, description="pending -> executing delay")
    participants_per_second: float = Field(default=25.0, gt=0, description="Fan-out speed")


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36


def cron_interval(expression: str | None) -> timedelta:
    """A rough period for a cron expression: enough to simulate recurring firings."""
    fields = (expression or "").split()
    if len(fields) != 5:
        return timedelta(days=1)
    minute, hour, dom, _month, dow = fields
    if dow != "*":
        return timedelta(weeks=1)
    if dom != "*":
        return timedelta(days=30)
    if hour.startswith("*"):
        return timedelta(hours=1) if minute != "*" else timedelta(minutes=1)
    return timedelta(days=1)


def cron_anchor(expression: str | None, now: datetime) -> datetime:
    """The next firing after ``now`` for simple expressions ("M H * * *", "M H * * D",
    "M H D * *", UTC); anything fancier gets a plausible time a third of a period ahead."""
    fields = (expression or "").split()
    period = cron_interval(expression)
    try:
        minute, hour, dom, month, dow = fields
        base = now.astimezone(UTC).replace(
            hour=int(hour), minute=int(minute), second=0, microsecond=0
        )
    except ValueError:
        return now + period / 3
    if month != "*":
        return now + period / 3
    if dow != "*" and dom == "*" and dow.isdigit():
        base += timedelta(days=(int(dow) - 1 - base.weekday()) % 7)
    elif dom != "*" and dow == "*" and dom.isdigit():
        base = base.replace(day=min(int(dom), 28))
    elif dom != "*" or dow != "*":
        return now + period / 3
    while base <= now:
        base += period
    return base


@dataclass
class Organisation:
    id: str
    name: str
    api_keys: set[str] = field(default_factory=set)


@dataclass
class Program:
    id: str
    org_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    status: str = "ACTIVE"
    on_unknown_participant: str = "CREATE"
    #: How many participants a fan-out reaches (emulator only).
    population: int = 1200

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "on_unknown_participant": self.on_unknown_participant,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "deleted_at": None,
        }


@dataclass
class Automation:
    id: str
    program_id: str
    name: str
    trigger_type: str
    scope: str
    event_name: str
    created_at: datetime
    updated_at: datetime
    status: str = "active"
    description: str | None = None
    source: str = "api"
    cron_expression: str | None = None
    timezone: str | None = None
    trigger_at: datetime | None = None
    schedule_type: str | None = None
    schedule_config: dict[str, Any] | None = None
    guard_condition: str | None = None
    participant_filter: str | None = None
    participant_id: str | None = None
    payload: dict[str, Any] | None = None
    filter_hints: Any = None
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    execution_status: str | None = None
    execution_started_at: datetime | None = None
    execution_completed_at: datetime | None = None
    execution_error: str | None = None
    error_message: str | None = None
    processed_at: datetime | None = None
    last_evaluated_at: datetime | None = None
    participants_total: int | None = None
    participants_processed: int | None = None
    # Simulation state (never serialised).
    population: int = 1200
    period: timedelta = timedelta(days=1)
    schedule_anchor: datetime | None = None
    progress_base: int = 0
    progress_since: datetime | None = None

    # ------------------------------------------------------------------ views
    @property
    def participant_scoped(self) -> bool:
        return self.scope == "participants"

    @property
    def running(self) -> bool:
        return self.execution_status in RUNNING_EXECUTIONS

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "program_id": self.program_id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "trigger_type": self.trigger_type,
            "scope": self.scope,
            "source": self.source,
            "event_name": self.event_name,
            "cron_expression": self.cron_expression,
            "timezone": self.timezone,
            "trigger_at": rfc3339(self.trigger_at),
            "schedule_type": self.schedule_type,
            "schedule_config": self.schedule_config,
            "guard_condition": self.guard_condition,
            "participant_filter": self.participant_filter,
            "participant_id": self.participant_id,
            "payload": self.payload,
            "filter_hints": self.filter_hints,
            "next_run_at": rfc3339(self.next_run_at),
            "last_run_at": rfc3339(self.last_run_at),
            "last_error": self.last_error,
            "execution_status": self.execution_status,
            "execution_started_at": rfc3339(self.execution_started_at),
            "execution_completed_at": rfc3339(self.execution_completed_at),
            "execution_error": self.execution_error,
            "error_message": self.error_message,
            "processed_at": rfc3339(self.processed_at),
            "last_evaluated_at": rfc3339(self.last_evaluated_at),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
        if self.participant_scoped:  # omitted for program scope (docs)
            body["participants_total"] = self.participants_total
            body["participants_processed"] = self.participants_processed
        return body

    # ------------------------------------------------------------- behaviour
    def next_scheduled_after(self, moment: datetime) -> datetime:
        """The first scheduled firing strictly after ``moment``."""
        anchor = self.schedule_anchor or moment
        if anchor > moment:
            return anchor
        steps = math.floor((moment - anchor) / self.period) + 1
        return anchor + steps * self.period

    def start_execution(self, now: datetime, options: EmulatorOptions) -> None:
        self.execution_status = "pending"
        self.execution_started_at = now
        self.execution_completed_at = None
        self.execution_error = None
        self.participants_total = self.population
        self.participants_processed = 0
        self.progress_base = 0
        self.progress_since = now + timedelta(seconds=options.pending_seconds)

    def cancel_execution(self, now: datetime) -> None:
        self.refresh_progress_base(now)
        self.execution_status = "failed"
        self.execution_error = "execution canceled"
        self.execution_completed_at = now
        self.progress_since = None

    def refresh_progress_base(self, now: datetime) -> None:
        if self.participants_processed is not None:
            self.progress_base = self.participants_processed

    def refresh(self, now: datetime, options: EmulatorOptions) -> None:
        """Bring this automation up to ``now``: fire due schedules, advance fan-outs."""
        if self.status == "active":
            self._fire_due(now, options)
        self._advance_execution(now, options)

    def _fire_due(self, now: datetime, options: EmulatorOptions) -> None:
        if self.trigger_type == "cron" and self.next_run_at is not None and self.next_run_at <= now:
            fired_at = self.next_run_at
            latest = fired_at
            upcoming = self.next_scheduled_after(fired_at)
            while upcoming <= now:  # missed firings collapse into the latest one
                latest, upcoming = upcoming, self.next_scheduled_after(upcoming)
            self.last_run_at = latest
            self.last_error = None
            self.next_run_at = upcoming
            if self.participant_scoped and not self.running:
                self.start_execution(latest, options)
        elif (
            self.trigger_type == "one_time"
            and self.trigger_at is not None
            and self.trigger_at <= now
            and self.processed_at is None
        ):
            self.processed_at = self.trigger_at
            if self.participant_scoped:
                self.start_execution(self.trigger_at, options)
            else:
                self.status = "completed"

    def _advance_execution(self, now: datetime, options: EmulatorOptions) -> None:
        if not self.running or self.progress_since is None:
            return
        if now < self.progress_since:
            return
        total = self.participants_total or 0
        done = self.progress_base + math.floor(
            (now - self.progress_since).total_seconds() * options.participants_per_second
        )
        self.execution_status = "executing"
        if done >= total:
            remaining = max(0, total - self.progress_base)
            self.participants_processed = total
            self.execution_status = "completed"
            self.execution_completed_at = self.progress_since + timedelta(
                seconds=remaining / options.participants_per_second
            )
            self.progress_since = None
            if self.trigger_type == "one_time" and self.status in ("active", "paused"):
                self.status = "completed"
        else:
            self.participants_processed = done
