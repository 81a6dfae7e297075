"""The emulated SFMC tenant: plain dataclasses and the state transitions the APIs drive.

Pure: no HTTP and no XML. Every transition takes ``now`` explicitly. Things that happen
with time (a run finishing, a journey pause reaching its end) are applied lazily by
:meth:`Tenant.tick`, which every request and every read accessor calls first.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sandbox.sfmc.schedule import Schedule

# --- automation status codes (reference §1.2) -------------------------------------------

SOAP_STATUS_NAMES = {
    -1: "Error",
    0: "BuildingError",
    1: "Building",
    2: "Ready",
    3: "Running",
    4: "Paused",
    5: "Stopped",
    6: "Scheduled",
    7: "Awaiting Trigger",
    8: "InactiveTrigger",
}
REST_STATUS_NAMES = {
    **SOAP_STATUS_NAMES,
    4: "PausedSchedule",
    7: "AwaitingTrigger",
}
READY, RUNNING, PAUSED, STOPPED, SCHEDULED, AWAITING_TRIGGER, INACTIVE_TRIGGER = 2, 3, 4, 5, 6, 7, 8
RUN_ONCE_FROM = frozenset({READY, STOPPED, SCHEDULED, AWAITING_TRIGGER, INACTIVE_TRIGGER})
SCHEDULE_START_FROM = frozenset({READY, PAUSED, STOPPED})

# --- error codes the emulator answers with (its own choice where SFMC's are unknown) -----

ERR_INVALID_VALUE = 10005  # bad or missing input (REST catalogue: "invalid value")
ERR_INVALID_STATE = 30002  # verb not allowed from the current status ("invalid state transition")
ERR_NOT_FOUND = 30003  # no such object ("object not found")
ERR_UNSUPPORTED = 30001  # unknown action / object type ("invalid operation")
ERR_NOT_PAUSED = 10000  # journey resume on a version that is not paused (documented)

# --- journeys -----------------------------------------------------------------------------

JOURNEY_STATUSES = frozenset(
    {"Draft", "Published", "Paused", "Stopped", "Unpublished", "ScheduledToPublish", "Deleted"}
)
STOPPABLE_JOURNEY_STATUSES = frozenset({"Published", "Paused", "Unpublished"})
GUARDRAIL_ACTIONS = ("none", "resume", "stop")
MAX_PAUSED_DAYS = 14

TOKEN_LIFETIME = timedelta(minutes=20)
TOKEN_EXPIRES_IN = 1079  # what the token response says (recorded mocks)


#: SFMC's system time: Central Standard Time, UTC-6 all year, written without an offset.
SFMC_TZ = timezone(timedelta(hours=-6))


def sfmc_time(dt: datetime | None) -> str | None:
    """A timestamp as SFMC writes it: CST (UTC-6), no offset, milliseconds."""
    if dt is None:
        return None
    return dt.astimezone(SFMC_TZ).replace(tzinfo=None).isoformat(timespec="milliseconds")


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome:
    """The result of one transition: OK, or an error code and message for the wire."""

    ok: bool
    message: str
    error_code: int | None = None

    @classmethod
    def success(cls, message: str) -> Outcome:
        return cls(True, message)

    @classmethod
    def error(cls, code: int, message: str) -> Outcome:
        return cls(False, message, code)


@dataclass
class Account:
    """An installed package: client credentials and the business units (MIDs) it may use."""

    client_id: str
    client_secret: str
    mids: list[int]
    scope: str = (
        "automations_read automations_write automations_execute "
        "journeys_read journeys_write journeys_execute"
    )


@dataclass
class Token:
    value: str
    client_id: str
    mid: int
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False

    def expired(self, now: datetime) -> bool:
        return self.revoked or now >= self.expires_at


@dataclass
class Automation:
    mid: int
    object_id: str
    key: str
    name: str
    status: int
    description: str = ""
    automation_type: str = "scheduled"  # scheduled | triggered
    schedule: Schedule | None = None
    created: datetime | None = None
    modified: datetime | None = None
    last_run_time: datetime | None = None
    last_run_instance_id: str | None = None
    category_id: int = 1
    run_ends_at: datetime | None = None  # while status is 3 Running
    status_after_run: int | None = None

    @property
    def schedule_status(self) -> str:
        """REST ``schedule.scheduleStatus``: active, paused or none."""
        if self.status == PAUSED:
            return "paused"
        if self.status == SCHEDULED or (self.status == RUNNING and self.status_after_run == 6):
            return "active"
        return "none"

    @property
    def status_name(self) -> str:
        return SOAP_STATUS_NAMES.get(self.status, str(self.status))


@dataclass
class JourneyPause:
    """One pause of one journey version. SFMC exposes none of this; the emulator keeps it."""

    paused_at: datetime
    paused_days: int
    guardrail_action: str  # none | resume | stop
    extend_wait_end_dates: bool = False
    retain_contact_injection: bool = False
    ended_at: datetime | None = None
    end_reason: str | None = None  # resumed | stopped | guardrail:resume | guardrail:stop
    guardrail_reached: bool = False

    @property
    def ends_at(self) -> datetime:
        return self.paused_at + timedelta(days=self.paused_days)


@dataclass
class JourneyVersion:
    mid: int
    key: str
    name: str
    version: int
    status: str
    id: str
    definition_id: str
    description: str = ""
    entry_mode: str = "MultipleEntries"
    definition_type: str = "Multistep"
    created: datetime | None = None
    modified: datetime | None = None
    last_published: datetime | None = None
    current_population: int = 0
    cumulative_population: int = 0
    pause: JourneyPause | None = None


# --- automation transitions -----------------------------------------------------------------


def _state_error(a: Automation, verb: str) -> Outcome:
    return Outcome.error(
        ERR_INVALID_STATE,
        f"Cannot {verb} automation '{a.key}': its status is {a.status} ({a.status_name}).",
    )


def perform_start(a: Automation, now: datetime, run_duration: timedelta) -> Outcome:
    """Run once now. Never unpauses a Paused (4) automation."""
    if a.status == PAUSED:
        return Outcome.error(
            ERR_INVALID_STATE,
            f"Cannot start automation '{a.key}': its status is 4 (Paused). "
            "Perform start does not unpause; use Schedule with the action 'start'.",
        )
    if a.status not in RUN_ONCE_FROM:
        return _state_error(a, "start")
    if a.status in (SCHEDULED, AWAITING_TRIGGER, INACTIVE_TRIGGER):
        a.status_after_run = a.status
    else:
        a.status_after_run = READY
    a.status = RUNNING
    a.last_run_time = now
    a.last_run_instance_id = new_guid()
    a.run_ends_at = now + run_duration
    return Outcome.success("Performed Activity")


def perform_stop(a: Automation, now: datetime) -> Outcome:
    """Stop a running or scheduled automation; its schedule is no longer active."""
    if a.status not in (RUNNING, SCHEDULED):
        return _state_error(a, "stop")
    a.status = STOPPED
    a.run_ends_at = None
    a.status_after_run = None
    a.modified = now
    return Outcome.success("Performed Activity")


PAUSE_MESSAGE = (
    "Schedule Paused. To reactivate the schedule use proxy.Schedule with the action 'start'."
)


def schedule_pause(a: Automation, now: datetime) -> Outcome:
    if a.status != SCHEDULED:
        return _state_error(a, "pause the schedule of")
    a.status = PAUSED
    a.modified = now
    return Outcome.success(PAUSE_MESSAGE)


def schedule_start(a: Automation, schedule: Schedule, now: datetime) -> Outcome:
    if a.automation_type != "scheduled":
        return Outcome.error(
            ERR_INVALID_STATE,
            f"Cannot schedule automation '{a.key}': it is a {a.automation_type} automation.",
        )
    if a.status not in SCHEDULE_START_FROM:
        return _state_error(a, "schedule")
    if a.schedule is not None:
        schedule.id = a.schedule.id  # the automation keeps its schedule object
    a.schedule = schedule
    a.status = SCHEDULED
    a.modified = now
    return Outcome.success("Program scheduled.")


def tick_automation(a: Automation, now: datetime) -> None:
    if a.status == RUNNING and a.run_ends_at is not None and now >= a.run_ends_at:
        a.status = a.status_after_run if a.status_after_run is not None else READY
        a.run_ends_at = None
        a.status_after_run = None


# --- journey transitions ----------------------------------------------------------------------


def journey_pause(v: JourneyVersion, now: datetime, pause: JourneyPause) -> Outcome:
    if v.status != "Published":
        return Outcome.error(
            ERR_NOT_PAUSED, "An interaction must be in published status to be paused."
        )
    v.status = "Paused"
    v.pause = pause
    v.modified = now
    return Outcome.success("Accepted")


def _end_pause(v: JourneyVersion, when: datetime, reason: str) -> None:
    if v.pause is not None and v.pause.ended_at is None:
        v.pause.ended_at = when
        v.pause.end_reason = reason


def journey_resume(v: JourneyVersion, now: datetime) -> Outcome:
    if v.status != "Paused":
        return Outcome.error(
            ERR_NOT_PAUSED, "An interaction must be in paused status to be resumed."
        )
    v.status = "Published"
    v.modified = now
    _end_pause(v, now, "resumed")
    return Outcome.success("Accepted")


def journey_stop(v: JourneyVersion, now: datetime) -> Outcome:
    if v.status not in STOPPABLE_JOURNEY_STATUSES:
        return Outcome.error(500, "Internal Server Error")
    v.status = "Stopped"
    v.modified = now
    v.current_population = 0
    _end_pause(v, now, "stopped")
    return Outcome.success("")


def tick_journey(v: JourneyVersion, now: datetime) -> None:
    """Apply the GuardrailAction once the clock passes the pause's end."""
    p = v.pause
    if v.status != "Paused" or p is None or p.guardrail_reached or now < p.ends_at:
        return
    p.guardrail_reached = True
    if p.guardrail_action == "resume":
        v.status = "Published"
        v.modified = p.ends_at
        _end_pause(v, p.ends_at, "guardrail:resume")
    elif p.guardrail_action == "stop":
        v.status = "Stopped"
        v.modified = p.ends_at
        v.current_population = 0
        _end_pause(v, p.ends_at, "guardrail:stop")


# --- the store ---------------------------------------------------------------------------------


@dataclass
class Continuation:
    """What a ``MoreDataAvailable`` RetrieveRequest still has to return."""

    mid: int
    object_type: str
    properties: list[str]
    object_ids: list[str]


@dataclass
class Tenant:
    """Everything the emulator knows. Guard every access with :attr:`lock`."""

    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    automations: list[Automation] = field(default_factory=list)
    journeys: list[JourneyVersion] = field(default_factory=list)
    continuations: dict[str, Continuation] = field(default_factory=dict)
    token_requests: int = 0
    tokens_issued: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def reset(self) -> None:
        """Forget everything (the lock stays the same object)."""
        self.accounts.clear()
        self.tokens.clear()
        self.automations.clear()
        self.journeys.clear()
        self.continuations.clear()
        self.token_requests = self.tokens_issued = 0

    def tick(self, now: datetime) -> None:
        for a in self.automations:
            tick_automation(a, now)
        for v in self.journeys:
            tick_journey(v, now)

    # tokens
    def issue_token(self, account: Account, mid: int, scope: str, now: datetime) -> Token:
        token = Token(
            value=secrets.token_urlsafe(48),
            client_id=account.client_id,
            mid=mid,
            scope=scope,
            issued_at=now,
            expires_at=now + TOKEN_LIFETIME,
        )
        self.tokens[token.value] = token
        self.tokens_issued += 1
        return token

    def expire_all_tokens(self) -> None:
        for token in self.tokens.values():
            token.revoked = True

    # automations
    def automations_of(self, mid: int) -> list[Automation]:
        return [a for a in self.automations if a.mid == mid]

    def automation_by_id(self, mid: int, object_id: str) -> Automation | None:
        wanted = object_id.lower()
        return next((a for a in self.automations_of(mid) if a.object_id == wanted), None)

    def automation_by_key(self, mid: int, key: str) -> Automation | None:
        return next((a for a in self.automations_of(mid) if a.key == key), None)

    # journeys
    def journey_versions(self, mid: int, definition_id: str) -> list[JourneyVersion]:
        found = [v for v in self.journeys if v.mid == mid and v.definition_id == definition_id]
        return sorted(found, key=lambda v: v.version)

    def journey_by_key(self, mid: int, key: str) -> list[JourneyVersion]:
        """Every version of the journey with ``key`` (oldest first), or []."""
        first = next((v for v in self.journeys if v.mid == mid and v.key == key), None)
        return self.journey_versions(mid, first.definition_id) if first else []

    def journey_by_id(self, mid: int, some_id: str) -> tuple[list[JourneyVersion], int | None]:
        """Versions of the journey with a version id or definitionId ``some_id``.

        Also returns the version number when ``some_id`` named one version.
        """
        wanted = some_id.lower()
        for v in self.journeys:
            if v.mid == mid and wanted in (v.id, v.definition_id):
                named = v.version if v.id == wanted else None
                return self.journey_versions(mid, v.definition_id), named
        return [], None

    def journey_definitions(self, mid: int) -> list[list[JourneyVersion]]:
        seen: dict[str, None] = {}
        for v in self.journeys:
            if v.mid == mid:
                seen.setdefault(v.definition_id)
        return [self.journey_versions(mid, d) for d in seen]
