"""Typed domain models: targets, states, pause options and operation results.

Pure data and rules: no Slack, HTTP or SQL here. Providers return these models and the
Slack, console and CLI layers render them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_JOURNEY_PAUSED_DAYS = 14


class TargetKind(StrEnum):
    """Which provider a target lives in."""

    AUTOMATION = "automation"  # SFMC Automation Studio (SOAP)
    JOURNEY = "journey"  # SFMC Journey Builder (REST)
    SCRIP = "scrip"  # scrip.dev automations (REST)

    @property
    def keyed_by_id(self) -> bool:
        """Whether the key is an opaque id (a scrip UUID), so people know it by name."""
        return self is TargetKind.SCRIP


_LABEL_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@#+-]*", re.ASCII)
_LABEL_RESERVED = frozenset(
    {"for", "until", "then", "paused", "all"}
    | {k.value for k in TargetKind}
    | {f"{k.value}s" for k in TargetKind}
)


def target_label(environment: str, kind: TargetKind, key: str, name: str, suffix: str = "") -> str:
    """``prod/journey:welcome v3``: what to type to name a target. A target whose key is an
    opaque id (scrip) is named by its name (``prod/scrip:"Nightly Points Expiry"``); the id
    is for small print, never shown alone."""
    word = key
    if kind.keyed_by_id and name.strip():
        word = name.strip()
        if not _LABEL_WORD_RE.fullmatch(word) or word.lower() in _LABEL_RESERVED:
            escaped = "".join(f"\\{c}" if c in '\\"' else c for c in word)
            word = f'"{escaped}"'
    return f"{environment}/{kind.value}:{word}{suffix}"


class Verb(StrEnum):
    HELP = "help"
    STATUS = "status"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    RUN = "run"
    LIST = "list"
    HISTORY = "history"


MUTATING_VERBS = frozenset({Verb.PAUSE, Verb.RESUME, Verb.STOP, Verb.RUN})


class Via(StrEnum):
    """Through what a request or a step arrived."""

    COMMAND = "command"
    MODAL = "modal"
    BUTTON = "button"
    REACTION = "reaction"
    CLI = "cli"
    CONSOLE = "console"
    SCHEDULER = "scheduler"
    SYSTEM = "system"  # e.g. recovery after a restart


class ThenAction(StrEnum):
    """What happens when a timed pause ends."""

    RESUME = "resume"
    STOP = "stop"  # journeys only
    KEEP = "keep"  # stay paused; the bot only reminds


class NormalState(StrEnum):
    """A provider-neutral view of a target's state."""

    ACTIVE = "active"  # scheduled / published / active: doing its job
    RUNNING = "running"  # a run is in progress right now
    PAUSED = "paused"
    STOPPED = "stopped"
    READY = "ready"  # built, no active schedule
    DRAFT = "draft"
    FINISHING = "finishing"  # old journey version draining, no new entries
    WAITING = "waiting"  # waiting for a trigger (file drop, event)
    INACTIVE = "inactive"
    BUILDING = "building"
    ERROR = "error"
    ARCHIVED = "archived"
    UNKNOWN = "unknown"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Model):
    """One thing the bot can act on, resolved in a provider."""

    environment: str
    kind: TargetKind
    key: str = Field(description="CustomerKey / journey key / scrip automation id")
    name: str
    id: str = Field(description="Provider id: SOAP ObjectID, journey id, scrip uuid")
    version: int | None = Field(default=None, description="Journey version, when relevant")

    def label(self) -> str:
        """Short qualified reference, e.g. ``prod/journey:welcome v3``."""
        version = f" v{self.version}" if self.version is not None else ""
        return target_label(self.environment, self.kind, self.key, self.name, version)

    def display(self) -> str:
        """The label plus the human name when the label does not say it."""
        if self.kind.keyed_by_id and self.name.strip():
            return self.label()
        if self.name and self.name.lower() != self.key.lower():
            return f'{self.label()} "{self.name}"'
        return self.label()


class Schedule(_Model):
    """An automation's schedule as the provider describes it (iCal recurrence)."""

    ical_recur: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    timezone_id: int | None = None
    timezone_name: str | None = None
    status: str | None = None


class VersionState(_Model):
    """One version of a journey."""

    version: int
    id: str
    status: str
    state: NormalState


class TargetState(_Model):
    """What the provider says about a target right now."""

    target: Target
    state: NormalState
    raw_status: str = Field(description="The provider's own status, e.g. '6 Scheduled'")
    schedule: Schedule | None = None
    next_run: datetime | None = None
    last_run: datetime | None = None
    versions: tuple[VersionState, ...] = ()
    population: int | None = None
    execution_status: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> str:
        """``paused (4 Paused)``; just ``paused`` when the provider says the same word."""
        if self.raw_status.lower() == self.state.value:
            return self.state.value
        return f"{self.state.value} ({self.raw_status})"

    def summary(self) -> TargetSummary:
        """The target as a search hit (a picker's choice)."""
        t = self.target
        return TargetSummary(
            kind=t.kind, key=t.key, name=t.name, id=t.id, raw_status=self.raw_status
        )


class TargetSummary(_Model):
    """A search hit: enough to show in a picker and to resolve later."""

    kind: TargetKind
    key: str
    name: str
    id: str
    raw_status: str | None = None


class VersionSelector(_Model):
    """Which journey version(s) a verb applies to: one, all, or (None) the latest."""

    version: int | None = Field(default=None, ge=1)
    all_versions: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> VersionSelector:
        if self.version is not None and self.all_versions:
            raise ValueError("choose either a version or all versions, not both")
        return self

    def describe(self) -> str:
        if self.all_versions:
            return "all versions"
        if self.version is not None:
            return f"version {self.version}"
        return "latest version"


class PauseOptions(_Model):
    """How long a pause lasts and what happens at its end."""

    duration: timedelta | None = None
    until: datetime | None = None
    then: ThenAction = ThenAction.RESUME
    extend_waits: bool = False  # journeys: ExtendWaitEndDates
    queue_entries: bool = False  # journeys: RetainContactInjectionWhileJourneyPaused
    reason: str | None = None

    @model_validator(mode="after")
    def _check(self) -> PauseOptions:
        if self.duration is not None and self.until is not None:
            raise ValueError("give either a length ('for 3d') or an end ('until ...'), not both")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("the pause length must be positive")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("the end time needs a timezone")
        return self

    @property
    def timed(self) -> bool:
        return self.duration is not None or self.until is not None

    def ends_at(self, now: datetime) -> datetime | None:
        if self.duration is not None:
            return now + self.duration
        return self.until

    def journey_paused_days(self, now: datetime) -> int:
        """PausedDays for a journey pause: whole days, rounded up (an untimed pause: 14)."""
        end = self.ends_at(now)
        if end is None:
            return MAX_JOURNEY_PAUSED_DAYS
        return max(1, math.ceil((end - now) / timedelta(days=1)))


class ActionReceipt(_Model):
    """What a provider said when it accepted a mutating call."""

    request_id: str | None = None
    message: str | None = None


class OperationResult(_Model):
    """The outcome of one verb: the state before and the state read back after it."""

    verb: Verb
    target: Target
    before: TargetState
    after: TargetState
    expected: frozenset[NormalState]
    verified: bool = Field(description="True only when the read-back showed the expected state")
    request_id: str | None = None
    provider_message: str | None = None
    note: str | None = None

    def summary(self) -> str:
        head = (
            f"{self.verb.value} {self.target.display()}: "
            f"{self.before.describe()} -> {self.after.describe()}"
        )
        if self.verified:
            return f"{head} (verified)"
        wanted = " or ".join(sorted(s.value for s in self.expected))
        return f"{head} (NOT verified: expected {wanted})"
