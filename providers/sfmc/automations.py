"""SFMC Automation Studio automations: state over SOAP (+ a REST read), verbs over SOAP.

Facts (reference sfmc.md §0, §1, §7):

* state: SOAP ``Retrieve`` of ``Automation`` (``Status`` codes -1..8); the schedule, last
  run and type come from ``GET {rest}/automation/v1/automations/{ObjectID}``. A failed
  REST read never fails :meth:`get`; it is noted in ``details["rest_error"]``.
* pause: snapshot the schedule first, then ``Schedule`` Action ``pause`` with an empty
  ``<Schedule/>`` and the automation as ``Interaction xsi:type="Automation"``.
* resume: ``Schedule`` Action ``start`` with a full ScheduleDefinition rebuilt from the
  snapshot (or, after a restart, from the REST read). ``Perform start`` does not unpause.
* run once: ``Perform`` Action ``start``; stop: ``Perform`` Action ``stop``.

Which verb is allowed from which state is checked by the service (``bot.domain.rules``)
before these methods are called.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import zeep.xsd

from bot.domain.errors import BotError, InvalidState, NotFound, ProviderError
from bot.domain.models import (
    ActionReceipt,
    NormalState,
    PauseOptions,
    Schedule,
    Target,
    TargetKind,
    TargetState,
    TargetSummary,
    Verb,
    VersionSelector,
)
from bot.domain.traits import ProviderTraits
from providers.http import CallLimit
from providers.sfmc.auth import TokenProvider
from providers.sfmc.recurrence import (
    ScheduleError,
    build_spec,
    next_run,
    schedule_from_rest,
    system_time,
)
from providers.sfmc.rest import SfmcRestClient, segment
from providers.sfmc.snapshots import InMemoryScheduleSnapshots, ScheduleSnapshots
from providers.sfmc.soap import DEFAULT_SOAP_TIMEOUT, SimpleFilter, SoapClient, SoapResponse

PROVIDER = "SFMC"

#: SOAP ``Automation.Status`` -> (name, normalised state) (sfmc.md §1.2).
STATUS_CODES: dict[int, tuple[str, NormalState]] = {
    -1: ("Error", NormalState.ERROR),
    0: ("BuildingError", NormalState.ERROR),
    1: ("Building", NormalState.BUILDING),
    2: ("Ready", NormalState.READY),
    3: ("Running", NormalState.RUNNING),
    4: ("Paused", NormalState.PAUSED),
    5: ("Stopped", NormalState.STOPPED),
    6: ("Scheduled", NormalState.ACTIVE),
    7: ("Awaiting Trigger", NormalState.WAITING),
    8: ("InactiveTrigger", NormalState.INACTIVE),
}
PAUSED_STATUS = 4

#: Keys in one ``CustomerKey IN (...)`` Retrieve (:meth:`SfmcAutomationProvider.get_many`).
IN_CHUNK = 100

#: Properties asked for in every Retrieve (the documented set, sfmc.md §1.3).
PROPERTIES = ("ObjectID", "CustomerKey", "Name", "Status")

_GUID = re.compile(
    r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def describe_status(code: int | None) -> tuple[str, NormalState]:
    """``(raw_status, state)``, e.g. ``("6 Scheduled", ACTIVE)``."""
    if code is None:
        return "unknown", NormalState.UNKNOWN
    name, state = STATUS_CODES.get(code, ("Unknown", NormalState.UNKNOWN))
    return f"{code} {name}", state


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


S = NormalState

#: What Automation Studio automations can do (reference sfmc.md §1.2 and §3).
AUTOMATION_TRAITS = ProviderTraits(
    product="Automation Studio",
    allowed_from={
        # Schedule/pause only makes sense for an active schedule (6 Scheduled).
        Verb.PAUSE: frozenset({S.ACTIVE}),
        # Only Schedule/start unpauses (4 Paused); Perform start does not.
        Verb.RESUME: frozenset({S.PAUSED}),
        # Run once: Ready, Scheduled, Stopped, or waiting for a trigger; never while running
        # or paused (Perform start does not unpause).
        Verb.RUN: frozenset({S.READY, S.ACTIVE, S.STOPPED, S.WAITING, S.INACTIVE}),
        # Perform stop: a running instance or an active schedule; it fails on a paused one.
        Verb.STOP: frozenset({S.RUNNING, S.ACTIVE}),
    },
    expected_after={
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE}),
        Verb.RUN: frozenset({S.RUNNING}),
        Verb.STOP: frozenset({S.STOPPED, S.READY}),
    },
    # a bulk request's targets in flight: as many as a business unit's 20 concurrent calls,
    # so one kind alone (or the one left when the other is done) keeps all 20 busy; the
    # pooled call limit holds automations and journeys together to 20
    parallel_targets=20,
)


class SfmcAutomationProvider:
    """Automation Studio automations of one SFMC business unit (one environment).

    ``tokens`` is the business unit's :class:`TokenProvider`; ``http`` is shared with it and
    belongs to the caller (never closed here). ``wsdl_path`` defaults to the project's own
    minimal WSDL; the full partner WSDL works too. ``snapshots`` keeps schedules between
    pause and resume (default: in memory, so after a restart resume reads the schedule
    back over REST). ``timeout`` applies to every SOAP and REST call; ``read_attempts`` and
    ``backoff`` bound the retries of SOAP reads; ``clock`` and ``sleep`` are for tests.
    """

    kind = TargetKind.AUTOMATION
    traits: ProviderTraits = AUTOMATION_TRAITS

    def __init__(
        self,
        *,
        environment: str,
        tokens: TokenProvider,
        http: httpx.AsyncClient,
        wsdl_path: Path | None = None,
        snapshots: ScheduleSnapshots | None = None,
        timeout: httpx.Timeout | float = DEFAULT_SOAP_TIMEOUT,
        read_attempts: int = 3,
        backoff: float = 1.0,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        limit: CallLimit | None = None,
    ) -> None:
        self.environment = environment
        self._tokens = tokens
        self._http = http
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._clock = clock
        self.snapshots: ScheduleSnapshots = snapshots or InMemoryScheduleSnapshots()
        self._rest = SfmcRestClient(tokens=tokens, http=http, sleep=sleep, limit=limit)
        self.soap = SoapClient(
            tokens=tokens,
            http=http,
            wsdl_path=wsdl_path,
            timeout=self._timeout,
            read_attempts=read_attempts,
            backoff=backoff,
            sleep=sleep,
            limit=limit,
        )

    # ------------------------------------------------------------------ reads

    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        row = await self._retrieve_one(key)
        state = self._state(row)
        return await self._with_rest(state)

    async def get_many(self, keys: Sequence[str]) -> dict[str, TargetState]:
        """Read many automations by CustomerKey with as few SOAP Retrieves as possible
        (``CustomerKey IN (...)``, :data:`IN_CHUNK` keys a call, the chunks concurrently).
        SOAP only: ``Status`` is all a check or a read-back of a verb needs, so there is no
        REST read of the schedule. Keys not found are missing from the answer."""
        wanted = list(dict.fromkeys(k.strip() for k in keys if k.strip()))
        chunks = [wanted[i : i + IN_CHUNK] for i in range(0, len(wanted), IN_CHUNK)]
        answers = await asyncio.gather(
            *(
                self.soap.retrieve(
                    "Automation", PROPERTIES, filter=SimpleFilter.in_("CustomerKey", chunk)
                )
                for chunk in chunks
            )
        )
        found: dict[str, TargetState] = {}
        for response in answers:
            for row in response.results:
                key = _text(row.get("CustomerKey"))
                if key is not None and _text(row.get("ObjectID")) and key not in found:
                    found[key] = self._state(row)
        return {k: found[k] for k in wanted if k in found}

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        wanted = name.strip().casefold()
        response = await self.soap.retrieve(
            "Automation", PROPERTIES, filter=SimpleFilter.equals("Name", name.strip())
        )
        rows = [r for r in response.results if (_text(r.get("Name")) or "").casefold() == wanted]
        if not rows:
            rows = [
                r
                for r in await self._all_rows()
                if (_text(r.get("Name")) or "").casefold() == wanted
            ]
        return [self._summary(r) for r in rows]

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        needle = text.strip().casefold()
        hits = [
            self._summary(r)
            for r in await self._all_rows()
            if not needle
            or needle in (_text(r.get("Name")) or "").casefold()
            or needle in (_text(r.get("CustomerKey")) or "").casefold()
        ]
        hits.sort(key=lambda s: (s.name.casefold(), s.key))
        return hits[: max(0, limit)]

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        rows: list[dict[str, Any]] | None = None
        if paused_only:
            try:
                response = await self.soap.retrieve(
                    "Automation",
                    PROPERTIES,
                    filter=SimpleFilter.equals("Status", str(PAUSED_STATUS)),
                )
                rows = response.results
            except ProviderError as exc:
                if exc.retryable or exc.http_status != 200:
                    raise
                # The tenant refused a Status filter ("Error: ..."): filter client-side.
        if rows is None:
            rows = await self._all_rows()
        states = [self._state(r) for r in rows if _text(r.get("ObjectID"))]
        if paused_only:
            states = [s for s in states if s.state is NormalState.PAUSED]
        return sorted(states, key=lambda s: (s.target.name.casefold(), s.target.key))

    # ------------------------------------------------------------------ verbs

    async def pause(
        self, state: TargetState, *, options: PauseOptions, versions: VersionSelector
    ) -> ActionReceipt:
        """Snapshot the schedule, then ``Schedule pause`` (an empty ``<Schedule/>``). The
        schedule is the one ``state`` was read with (:meth:`get` reads it over REST just
        before an action); a state without one (a SOAP-only read) reads it now."""
        target = state.target
        schedule = state.schedule if state.schedule and state.schedule.ical_recur else None
        if schedule is None:
            schedule = await self._current_schedule(target.id)
        if schedule is None or not schedule.ical_recur:
            raise ProviderError(
                f"Did not pause {target.label()}: its schedule could not be read, so a "
                "later resume could not restore it",
                provider=PROVIDER,
                retryable=True,
            )
        await self.snapshots.put(self._tokens.account_id, target.id, schedule)
        make = await self.soap.factory()
        empty = make("ScheduleDefinition", Recurrence=zeep.xsd.SkipValue)
        response = await self.soap.schedule(
            "pause", empty, [make("Automation", ObjectID=target.id)]
        )
        return self._receipt(response)

    async def resume(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        """``Schedule start`` with the full schedule from the snapshot (or the REST read)."""
        snapshot = await self.snapshots.get(self._tokens.account_id, state.target.id)
        return await self._resume(state, snapshot)

    async def _resume(self, state: TargetState, snapshot: Schedule | None) -> ActionReceipt:
        target = state.target
        schedule = snapshot
        if schedule is None or not schedule.ical_recur:
            # The state was read (with its REST schedule) just before: no second read.
            schedule = state.schedule
        if schedule is None or not schedule.ical_recur:
            schedule = await self._current_schedule(target.id)
        if schedule is None or not schedule.ical_recur:
            raise InvalidState(
                f"Cannot resume {target.label()}: no schedule is known for it (no snapshot "
                "from the pause and none in SFMC). Resuming needs a schedule; the bot will "
                "not run it once instead. Set a schedule in Automation Studio.",
                current_state=state.raw_status,
            )
        try:
            spec = build_spec(schedule, now=self._clock())
        except ScheduleError as exc:
            raise InvalidState(
                f"Cannot resume {target.label()}: {exc}.", current_state=state.raw_status
            ) from exc
        make = await self.soap.factory()
        fields: dict[str, Any] = {
            "Recurrence": make(spec.recurrence_xsi, **spec.recurrence),
            "RecurrenceType": spec.recurrence_type,
            "StartDateTime": spec.start,
        }
        if spec.range_type is not None:
            fields["RecurrenceRangeType"] = spec.range_type
        if spec.end is not None:
            fields["EndDateTime"] = spec.end
        if spec.occurrences is not None:
            fields["Occurrences"] = spec.occurrences
        if spec.timezone_id is not None:
            fields["TimeZone"] = make("TimeZone", ID=spec.timezone_id)
        definition = make("ScheduleDefinition", **fields)
        response = await self.soap.schedule(
            "start", definition, [make("Automation", ObjectID=target.id)]
        )
        return self._receipt(response)

    async def resume_many(self, states: Sequence[TargetState]) -> list[ActionReceipt | BotError]:
        """:meth:`resume` for many automations (one snapshot query, the ``Schedule start``
        calls concurrently within the account's call limit); each one's receipt or error,
        in order."""
        snapshots = await self.snapshots.get_many(
            self._tokens.account_id, [s.target.id for s in states]
        )

        async def one(state: TargetState) -> ActionReceipt | BotError:
            try:
                return await self._resume(state, snapshots.get(state.target.id.lower()))
            except BotError as exc:
                return exc

        return list(await asyncio.gather(*(one(s) for s in states)))

    async def run(self, state: TargetState) -> ActionReceipt:
        """Run once now: ``Perform start`` (never used to unpause)."""
        return await self._perform("start", state)

    async def stop(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        return await self._perform("stop", state)

    async def aclose(self) -> None:
        """The HTTP client belongs to the caller; only the SOAP client state is dropped."""
        await self.soap.aclose()

    # ------------------------------------------------------------------ helpers

    async def _perform(self, action: str, state: TargetState) -> ActionReceipt:
        make = await self.soap.factory()
        response = await self.soap.perform(action, [make("Automation", ObjectID=state.target.id)])
        return self._receipt(response)

    @staticmethod
    def _receipt(response: SoapResponse) -> ActionReceipt:
        return ActionReceipt(request_id=response.request_id, message=response.status_message)

    async def _retrieve_one(self, key: str) -> dict[str, Any]:
        key = key.strip()
        response = await self.soap.retrieve(
            "Automation", PROPERTIES, filter=SimpleFilter.equals("CustomerKey", key)
        )
        rows = [r for r in response.results if _text(r.get("ObjectID"))]
        if not rows and _GUID.match(key):
            response = await self.soap.retrieve(
                "Automation", PROPERTIES, filter=SimpleFilter.equals("ObjectID", key.strip("{}"))
            )
            rows = [r for r in response.results if _text(r.get("ObjectID"))]
        if not rows:
            raise NotFound(f"No automation with key {key!r} in {self.environment}.")
        exact = [r for r in rows if _text(r.get("CustomerKey")) == key]
        return (exact or rows)[0]

    async def _all_rows(self) -> list[dict[str, Any]]:
        response = await self.soap.retrieve("Automation", PROPERTIES)
        return [r for r in response.results if _text(r.get("ObjectID"))]

    def _target(self, row: dict[str, Any]) -> Target:
        object_id = _text(row.get("ObjectID")) or ""
        key = _text(row.get("CustomerKey")) or object_id
        return Target(
            environment=self.environment,
            kind=self.kind,
            key=key,
            name=_text(row.get("Name")) or key,
            id=object_id,
        )

    def _summary(self, row: dict[str, Any]) -> TargetSummary:
        target = self._target(row)
        raw_status, _ = describe_status(_int_or_none(row.get("Status")))
        return TargetSummary(
            kind=self.kind, key=target.key, name=target.name, id=target.id, raw_status=raw_status
        )

    def _state(self, row: dict[str, Any]) -> TargetState:
        raw_status, state = describe_status(_int_or_none(row.get("Status")))
        return TargetState(target=self._target(row), state=state, raw_status=raw_status)

    async def _with_rest(self, state: TargetState) -> TargetState:
        try:
            body = await self._rest_automation(state.target.id)
        except ProviderError as exc:
            return state.model_copy(update={"details": {"rest_error": exc.user_message()}})
        details: dict[str, Any] = {}
        for source, name in (
            ("type", "automation_type"),
            ("status", "rest_status"),
            ("lastRunInstanceId", "last_run_instance_id"),
        ):
            if body.get(source) is not None:
                details[name] = body[source]
        schedule = schedule_from_rest(body.get("schedule"))
        upcoming = None
        if schedule is not None and state.state is NormalState.ACTIVE:
            upcoming = next_run(schedule, now=self._clock())
        return state.model_copy(
            update={
                "schedule": schedule,
                "next_run": upcoming,
                "last_run": system_time(body.get("lastRunTime")),
                "details": details,
            }
        )

    async def _current_schedule(self, object_id: str) -> Schedule | None:
        """The automation's schedule from the REST read, or None when it cannot be read."""
        try:
            body = await self._rest_automation(object_id)
        except ProviderError:
            return None
        return schedule_from_rest(body.get("schedule"))

    async def _rest_automation(self, object_id: str) -> dict[str, Any]:
        """``GET {rest}/automation/v1/automations/{id}`` (the schedule lives only here)."""
        data = await self._rest.get_json(
            f"automation/v1/automations/{segment(object_id)}",
            what="read the automation's schedule over REST",
        )
        if not isinstance(data, dict):
            raise ProviderError(
                "SFMC's automation REST read did not return an object",
                provider=PROVIDER,
                http_status=200,
                retryable=True,
            )
        return data
