"""Timed pauses: the bot owns the timeline of every pause it made.

At a verified pause the bot schedules, in the database (``jobs``): the end of the pause
(automations and scrip: the bot carries out the then-action itself; journeys: Journey
Builder applies ``GuardrailAction`` and the bot reads the journey shortly after to report
what it sees), reminders before the end, and periodic drift checks. Every handler is
idempotent: a job may run again after a process died holding its lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from bot.domain import rules
from bot.domain.commands import ResumeCommand, TargetRef
from bot.domain.errors import BotError, InvalidState, NotFound, ProviderError
from bot.domain.events import (
    Event,
    Late,
    LetItEnd,
    PauseEnded,
    PauseReminder,
    ResumeGaveUp,
    ResumeRetrying,
)
from bot.domain.jobs import MAX_ATTEMPTS, Job, JobKind, job_key
from bot.domain.models import (
    NormalState,
    TargetKind,
    TargetState,
    ThenAction,
    Verb,
    VersionSelector,
)
from bot.domain.requests import (
    OperationRequest,
    PauseOutcome,
    PauseRecord,
    Via,
    format_timedelta,
)
from bot.domain.traits import ProviderTraits
from bot.service.operations import OperationService
from bot.service.ports import BatchResumes, Provider
from bot.service.requests import RequestService
from bot.store.repository import PauseClosing, Store

log = structlog.get_logger(__name__)

#: An end handled this long after it was due is reported as late.
LATE_AFTER = timedelta(minutes=2)


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: Ends of other kinds (scrip, kept pauses) handled at once within one batch.
_SINGLE_ENDS_AT_ONCE = 20


@dataclass(frozen=True, slots=True)
class _Ending:
    """A due end being handled: its job, pause, request and how late it is."""

    job: Job
    pause: PauseRecord
    request: OperationRequest
    late: Late | None


class PauseTimings(BaseModel):
    """When reminders go out and how the bot watches a pause."""

    model_config = ConfigDict(frozen=True)

    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    open_ended_reminder_every: timedelta = timedelta(hours=24)
    journey_grace: timedelta = timedelta(minutes=10)
    journey_checks: int = 6
    journey_check_every: timedelta = timedelta(minutes=5)
    drift_every: timedelta = timedelta(minutes=30)


class PauseService:
    """Schedules and carries out everything that happens to a pause after it was made."""

    def __init__(
        self,
        *,
        store: Store,
        requests: RequestService,
        operations: OperationService,
        timings: PauseTimings | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._requests = requests
        self._ops = operations
        self._t = timings or PauseTimings()
        self._clock = clock
        #: When this service started: an end due before it was missed while the bot was down.
        self._started = clock()

    def handlers(self) -> Mapping[JobKind, Callable[[Job], Awaitable[None]]]:
        return {
            JobKind.PAUSE_END: self.end_pause,  # batched too: see batch_handlers
            JobKind.JOURNEY_CHECK: self.check_journey,
            JobKind.PAUSE_REMINDER: self.remind,
            JobKind.DRIFT_CHECK: self.check_drift,
        }

    def batch_handlers(
        self,
    ) -> Mapping[JobKind, Callable[[Sequence[Job]], Awaitable[Mapping[int, BaseException | None]]]]:
        """Kinds whose due jobs the scheduler hands over together."""
        return {JobKind.PAUSE_END: self.end_pauses}

    # -- scheduling -----------------------------------------------------------------------

    async def schedule(self, pause: PauseRecord) -> None:
        """Plan the end, the reminders and the drift checks of a new (or moved) pause."""
        now = self._clock()
        payload = {"pause_id": pause.id}
        if pause.ends_at is not None:
            if self._traits(pause).ends_pause_natively:
                await self._store.schedule(
                    kind=JobKind.JOURNEY_CHECK,
                    key=job_key(JobKind.JOURNEY_CHECK, pause.id),
                    due_at=pause.ends_at + self._t.journey_grace,
                    payload={**payload, "check": 1},
                )
            else:
                await self._store.schedule(
                    kind=JobKind.PAUSE_END,
                    key=job_key(JobKind.PAUSE_END, pause.id),
                    due_at=pause.ends_at,
                    payload=payload,
                )
            for before in self._t.reminders:
                at = pause.ends_at - before
                key = job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:{int(before.total_seconds())}")
                if at > now:
                    await self._store.schedule(
                        kind=JobKind.PAUSE_REMINDER,
                        key=key,
                        due_at=at,
                        payload={**payload, "before_s": int(before.total_seconds())},
                    )
                else:
                    await self._store.cancel_job(key)
        else:
            await self._store.schedule(
                kind=JobKind.PAUSE_REMINDER,
                key=job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"),
                due_at=now + self._t.open_ended_reminder_every,
                payload={**payload, "open_ended": True},
            )
        await self._store.schedule(
            kind=JobKind.DRIFT_CHECK,
            key=job_key(JobKind.DRIFT_CHECK, pause.id),
            due_at=now + self._t.drift_every,
            payload=payload,
        )

    def _timer_keys(self, pause: PauseRecord, *, running: JobKind | None = None) -> tuple[str, ...]:
        """Every timer key a pause may have, but ``running`` (the job calling, which
        completes normally)."""
        keys = [
            job_key(kind, pause.id)
            for kind in (JobKind.PAUSE_END, JobKind.JOURNEY_CHECK, JobKind.DRIFT_CHECK)
            if kind is not running
        ]
        keys += [
            job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:{int(before.total_seconds())}")
            for before in self._t.reminders
        ]
        keys.append(job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"))
        return tuple(keys)

    async def close(
        self,
        pause: PauseRecord,
        *,
        reason: str,
        event: PauseEnded,
        running: JobKind | None = None,
        audit: tuple[str, Mapping[str, Any]] | None = None,
        by: str | None = None,
        still_paused: bool = False,
        tell: OperationRequest | None = None,
    ) -> OperationRequest | None:
        """Stop watching a pause: close it, cancel its timers (but not ``running``), record
        ``event`` as how it ended on its request and ``audit`` (action, detail) in the
        trail, and publish ``event`` in ``tell``'s thread, all in one transaction (store
        calls only: it joins the caller's). The request with its outcome (to show again);
        None when the pause was closed already (another run or process got there first):
        nothing is recorded."""
        closing = PauseClosing(
            pause_id=pause.id,
            request_id=pause.request_id,
            reason=reason,
            outcome=PauseOutcome(at=self._clock(), event=event, still_paused=still_paused, by=by),
            cancel_keys=self._timer_keys(pause, running=running),
            audit_action=None if audit is None else audit[0],
            audit_detail={} if audit is None else dict(audit[1]),
        )
        async with self._store.atomic():
            if pause.id not in await self._store.end_pauses([closing]):
                return None
            request = await self._store.get_request(pause.request_id)
            if tell is not None:
                await self._requests.publish(tell, event)
        return request

    async def release(
        self,
        pause: PauseRecord,
        *,
        reason: str,
        event: PauseEnded,
        running: JobKind | None = None,
        audit: tuple[str, Mapping[str, Any]] | None = None,
        still_paused: bool = False,
        tell: OperationRequest | None = None,
    ) -> bool:
        """:meth:`close`, and show the request's card as it is now (in the same
        transaction). False when the pause was closed already."""
        async with self._store.atomic():
            request = await self.close(
                pause,
                reason=reason,
                event=event,
                running=running,
                audit=audit,
                still_paused=still_paused,
                tell=tell,
            )
            if request is not None:
                await self._requests.show_as(request)
        return request is not None

    async def let_it_end(self, *, request_id: str, user: str) -> bool:
        """'Let it end' on a reminder: no more reminders; the end happens as planned.
        False when the pause is no longer running."""
        pause = await self._store.pause_for_request(request_id)
        if pause is None or not pause.active:
            return False
        async with self._store.atomic():
            for before in self._t.reminders:
                key = f"{pause.id}:{int(before.total_seconds())}"
                await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, key))
            await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"))
            request = await self._store.get_request(request_id)
            if request is not None:
                await self._requests.publish(request, LetItEnd(actor=user, then=pause.then))
        return True

    # -- the end of a pause ---------------------------------------------------------------

    async def end_pause(self, job: Job) -> None:
        """Automations and scrip: the bot carries out the then-action itself."""
        outcome = (await self.end_pauses([job]))[job.id]
        if outcome is not None:
            raise outcome

    async def end_pauses(self, jobs: Sequence[Job]) -> dict[int, BaseException | None]:
        """End many pauses at once (the scheduler hands over every due end of a pass):
        the pauses and their requests are read in one query; automations of one business
        unit are checked with one read, resumed concurrently within the account's call
        limit, verified with one read and closed in one transaction; other kinds end one by
        one. Each job's outcome: None (done) or the error to retry it for."""
        outcomes: dict[int, BaseException | None] = {}
        loaded = await self._store.pauses_with_requests(
            [int(job.payload["pause_id"]) for job in jobs]
        )
        groups: dict[tuple[str, TargetKind] | None, list[_Ending]] = {}
        for job in jobs:
            item = loaded.get(int(job.payload["pause_id"]))
            ends_at = None if item is None else item[0].ends_at
            if item is None or ends_at is None:
                outcomes[job.id] = None  # closed meanwhile, or no end any more: nothing to do
                continue
            pause, request = item
            batch = (pause.environment, pause.kind) if self._batched(pause) else None
            groups.setdefault(batch, []).append(
                _Ending(job=job, pause=pause, request=request, late=self._late(ends_at))
            )
        singles = groups.pop(None, [])
        limit = asyncio.Semaphore(_SINGLE_ENDS_AT_ONCE)

        async def single(ending: _Ending) -> None:
            async with limit:
                try:
                    await self._end_one(ending)
                    outcomes[ending.job.id] = None
                except Exception as exc:
                    outcomes[ending.job.id] = exc

        await asyncio.gather(
            *(single(e) for e in singles),
            *(
                self._end_batch(where, group, outcomes)
                for where, group in groups.items()
                if where is not None
            ),
        )
        return outcomes

    def _provider(self, pause: PauseRecord) -> Provider:
        return self._ops.environment(pause.environment).provider(pause.kind)

    def _traits(self, pause: PauseRecord) -> ProviderTraits:
        return self._provider(pause).traits

    def _batched(self, pause: PauseRecord) -> bool:
        """Pauses resumed at the end by a provider that declares batch resumes go through
        the batch path."""
        if pause.then is not ThenAction.RESUME:
            return False
        try:
            return isinstance(self._provider(pause), BatchResumes)
        except BotError:
            return False  # no such provider any more: the single path reports it

    async def _end_one(self, e: _Ending) -> None:
        pause, request = e.pause, e.request
        if pause.then is ThenAction.KEEP:
            event = PauseEnded(how="kept", label=pause.label, then=pause.then, late=e.late)
            outcome = PauseOutcome(at=self._clock(), event=event, still_paused=True)
            async with self._store.atomic():
                await self._store.set_pause_end(pause.id, ends_at=None)
                await self._store.set_pause_outcome(request.id, outcome)
                await self._requests.publish(request, event)
                kept = await self._store.get_pause(pause.id)
                if kept is not None:
                    await self.schedule(kept)
                await self._requests.show_as(request.model_copy(update={"pause_outcome": outcome}))
            return
        try:
            state = await self._resume(pause)
        except InvalidState as exc:
            await self._nothing_to_resume(e, exc)
            return
        except BotError as exc:
            await self._could_not_resume(e, exc)
            raise  # the scheduler retries with backoff
        await self._resumed(e, state, verified=state.state is not NormalState.PAUSED)

    async def _end_batch(
        self,
        where: tuple[str, TargetKind],
        group: list[_Ending],
        outcomes: dict[int, BaseException | None],
    ) -> None:
        """Resume the automations of one environment whose pauses end now (see
        :meth:`end_pauses`)."""
        environment, kind = where
        provider = self._ops.environment(environment).provider(kind)
        if not isinstance(provider, BatchResumes):
            for e in group:
                try:
                    await self._end_one(e)
                    outcomes[e.job.id] = None
                except Exception as exc:
                    outcomes[e.job.id] = exc
            return

        async def failed(e: _Ending, exc: BotError) -> None:
            outcomes[e.job.id] = exc
            await self._could_not_resume(e, exc)

        try:
            before: dict[str, TargetState] = await provider.get_many([e.pause.key for e in group])
        except BotError as exc:
            await asyncio.gather(*(failed(e, exc) for e in group))
            return
        go: list[tuple[_Ending, TargetState]] = []
        for e in group:
            state = before.get(e.pause.key)
            if state is None:
                await failed(
                    e, NotFound(f"No {kind.value} with key {e.pause.key!r} in {environment}.")
                )
                continue
            try:
                rules.check_allowed(provider.traits, Verb.RESUME, state, VersionSelector())
            except InvalidState as exc:
                await self._nothing_to_resume(e, exc)
                outcomes[e.job.id] = None
                continue
            go.append((e, state))
        if not go:
            return
        receipts = await provider.resume_many([state for _, state in go])
        sent: list[tuple[_Ending, TargetState]] = []
        for (e, state), receipt in zip(go, receipts, strict=True):
            if isinstance(receipt, InvalidState):
                await self._nothing_to_resume(e, receipt)
                outcomes[e.job.id] = None
            elif isinstance(receipt, BotError):
                await failed(e, receipt)
            else:
                sent.append((e, state))
        after: dict[str, TargetState] = {}
        waiting = {e.pause.key for e, _ in sent}
        for delay in self._ops.readback_delays:
            if delay:
                await self._ops.sleep(delay)
            try:
                read = await provider.get_many(sorted(waiting))
            except BotError as exc:
                log.warning("pause_end_readback_failed", error=exc.user_message())
                continue
            after.update(read)
            waiting = {k for k in waiting if k not in read or read[k].state is NormalState.PAUSED}
            if not waiting:
                break
        closings: list[tuple[_Ending, TargetState, bool]] = []
        for e, state in sent:
            seen = after.get(e.pause.key)
            if seen is None:
                # Sent, but never read back: retried; the next run reads it first.
                await failed(
                    e,
                    ProviderError(
                        f"Sent the resume of {e.pause.label}, but could not read it back",
                        provider="SFMC",
                        retryable=True,
                    ),
                )
                continue
            verified = rules.is_verified(
                provider.traits, Verb.RESUME, state, seen, VersionSelector()
            )
            closings.append((e, seen, verified))
            outcomes[e.job.id] = None
        await self._resumed_many(closings)

    async def _could_not_resume(self, e: _Ending, exc: BotError) -> None:
        """Say so in the thread on the first failed try and when the bot gives up; the
        tries in between are only logged (by the scheduler), not posted."""
        label, reason = e.pause.label, exc.user_message()
        event: Event | None = None
        if e.job.attempts <= 1:
            event = ResumeRetrying(
                label=label, message=reason, attempts_max=MAX_ATTEMPTS, late=e.late
            )
        elif e.job.attempts >= MAX_ATTEMPTS:
            event = ResumeGaveUp(label=label, message=reason, tries=e.job.attempts)
        if event is not None:
            await self._requests.publish(e.request, event)

    async def _nothing_to_resume(self, e: _Ending, exc: InvalidState) -> None:
        await self.release(
            e.pause,
            running=JobKind.PAUSE_END,
            reason="already changed at the end",
            event=PauseEnded(
                how="already_changed",
                label=e.pause.label,
                then=e.pause.then,
                state=exc.current_state,
                late=e.late,
                detail=exc.user_message(),
            ),
            audit=("pause_ended", {"then": e.pause.then.value, "after": exc.current_state}),
            tell=e.request,
        )

    async def _resumed(self, e: _Ending, state: TargetState, *, verified: bool) -> None:
        await self._resumed_many([(e, state, verified)])

    async def _resumed_many(self, ends: Sequence[tuple[_Ending, TargetState, bool]]) -> None:
        """Close resumed pauses in one transaction; then each thread, card and notice."""
        now = self._clock()
        events = [
            PauseEnded(
                how="resumed",
                label=e.pause.label,
                then=e.pause.then,
                state=state.describe(),
                normal=state.state,
                verified=verified,
                late=e.late,
            )
            for e, state, verified in ends
        ]
        closings = [
            PauseClosing(
                pause_id=e.pause.id,
                request_id=e.request.id,
                reason=f"ended: {state.describe()}",
                outcome=PauseOutcome(
                    at=now, event=event, still_paused=state.state is NormalState.PAUSED
                ),
                cancel_keys=self._timer_keys(e.pause, running=JobKind.PAUSE_END),
                audit_action="pause_ended",
                audit_detail={
                    "then": e.pause.then.value,
                    "after": state.describe(),
                    "verified": verified,
                    "late": _late_detail(e.late),
                },
            )
            for (e, state, verified), event in zip(ends, events, strict=True)
        ]
        # the pauses close, and their notes, notices and card edits are written to the
        # outbox, in one transaction: a crash keeps both or neither
        async with self._store.atomic():
            closed = await self._store.end_pauses(closings)
            for (e, _, _), event, closing in zip(ends, events, closings, strict=True):
                if e.pause.id in closed:  # else another run closed it and reported
                    await self._requests.publish(e.request, event)
                    await self._requests.show_as(
                        e.request.model_copy(update={"pause_outcome": closing.outcome})
                    )

    async def check_journey(self, job: Job) -> None:
        """Journeys end by themselves (GuardrailAction): read and report what happened."""
        pause, request = await self._load(job)
        if pause is None or request is None:
            return
        state = await self._read(pause)
        late = self._late((pause.ends_at or self._clock()) + self._t.journey_grace)
        expected = {
            ThenAction.RESUME: NormalState.ACTIVE,
            ThenAction.STOP: NormalState.STOPPED,
            ThenAction.KEEP: NormalState.PAUSED,
        }[pause.then]
        if state.state is NormalState.PAUSED and pause.then is not ThenAction.KEEP:
            attempt = int(job.payload.get("check", 1))
            if attempt < self._t.journey_checks:
                await self._store.schedule(
                    kind=JobKind.JOURNEY_CHECK,
                    key=job_key(JobKind.JOURNEY_CHECK, pause.id),
                    due_at=self._clock() + self._t.journey_check_every,
                    payload={"pause_id": pause.id, "check": attempt + 1},
                )
                return
            await self.release(
                pause,
                running=JobKind.JOURNEY_CHECK,
                reason="guardrail did not act",
                event=PauseEnded(
                    how="guardrail_missed",
                    label=pause.label,
                    then=pause.then,
                    state=state.describe(),
                    normal=state.state,
                    expected=False,
                    late=late,
                    product=self._traits(pause).product,
                ),
                still_paused=True,
                audit=(
                    "pause_ended",
                    {"then": pause.then.value, "after": state.describe(), "expected": False},
                ),
                tell=request,
            )
            return
        ok = state.state is expected
        event = PauseEnded(
            how="ended_by_provider",
            label=pause.label,
            then=pause.then,
            state=state.describe(),
            normal=state.state,
            expected=ok,
            late=late,
            product=self._traits(pause).product,
        )
        audit = (
            "pause_ended",
            {"then": pause.then.value, "after": state.describe(), "expected": ok},
        )
        if state.state is not NormalState.PAUSED:
            await self.release(
                pause,
                running=JobKind.JOURNEY_CHECK,
                reason=f"ended: {state.describe()}",
                event=event,
                audit=audit,
                tell=request,
            )
            return
        outcome = PauseOutcome(at=self._clock(), event=event, still_paused=True)
        async with self._store.atomic():
            await self._store.set_pause_end(pause.id, ends_at=None)
            await self._store.set_pause_outcome(request.id, outcome)
            await self._store.record(
                actor="bot",
                action=audit[0],
                via=Via.SCHEDULER,
                request_id=request.id,
                detail=audit[1],
            )
            await self._requests.publish(request, event)
            await self._requests.show_as(request.model_copy(update={"pause_outcome": outcome}))

    # -- reminders and drift --------------------------------------------------------------

    async def remind(self, job: Job) -> None:
        pause, request = await self._load(job)
        if pause is None or request is None:
            return
        now = self._clock()
        if job.payload.get("open_ended"):
            async with self._store.atomic():
                await self._store.schedule(
                    kind=JobKind.PAUSE_REMINDER,
                    key=job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"),
                    due_at=now + self._t.open_ended_reminder_every,
                    payload={"pause_id": pause.id, "open_ended": True},
                )
                reminder = PauseReminder(
                    label=pause.label,
                    pause_id=pause.id,
                    then=pause.then,
                    paused_for=now - pause.started_at,
                )
                await self._requests.publish(request, reminder)
            return
        if pause.ends_at is None or pause.ends_at <= now:
            return
        await self._requests.publish(
            request,
            PauseReminder(
                label=pause.label, pause_id=pause.id, then=pause.then, ends_in=pause.ends_at - now
            ),
        )

    async def check_drift(self, job: Job) -> None:
        """Read an active pause back; a target changed outside the bot closes the record."""
        pause, request = await self._load(job)
        if pause is None or request is None:
            return
        if pause.ends_at is not None and self._clock() >= pause.ends_at:
            return  # the end of the pause is being handled; that handler reports
        state = await self._read(pause)
        if state.state is NormalState.PAUSED:
            await self._store.schedule(
                kind=JobKind.DRIFT_CHECK,
                key=job_key(JobKind.DRIFT_CHECK, pause.id),
                due_at=self._clock() + self._t.drift_every,
                payload={"pause_id": pause.id},
            )
            return
        await self.release(
            pause,
            running=JobKind.DRIFT_CHECK,
            reason=f"changed outside the bot: {state.describe()}",
            event=PauseEnded(
                how="drifted",
                label=pause.label,
                then=pause.then,
                state=state.describe(),
                normal=state.state,
            ),
            audit=("drift", {"now": state.describe()}),
            tell=request,
        )

    # -- helpers --------------------------------------------------------------------------

    async def _load(self, job: Job) -> tuple[PauseRecord | None, OperationRequest | None]:
        pause = await self._store.get_pause(int(job.payload["pause_id"]))
        if pause is None or not pause.active:
            return None, None
        return pause, await self._store.get_request(pause.request_id)

    def _ref(self, pause: PauseRecord) -> TargetRef:
        return TargetRef(environment=pause.environment, kind=pause.kind, name=pause.key)

    async def _read(self, pause: PauseRecord) -> TargetState:
        return await self._ops.resolve(self._ref(pause), version=pause.version)

    async def _resume(self, pause: PauseRecord) -> TargetState:
        command = ResumeCommand(
            target=self._ref(pause),
            versions=VersionSelector(
                version=None if pause.all_versions else pause.version,
                all_versions=pause.all_versions,
            ),
        )
        before = await self._ops.check(command, allow_production=True)
        result = await self._ops.perform(command, before)
        return result.after

    def _late(self, due: datetime) -> Late | None:
        """An end handled well after it was due, and why: the bot was not running then (it
        started after), or it was running but behind."""
        late_by = self._clock() - due
        if late_by < LATE_AFTER:
            return None
        return Late(by=late_by, bot_was_down=due < self._started)


def _late_detail(late: Late | None) -> str:
    """How late, for the audit trail (``3m``, or nothing)."""
    return "" if late is None else format_timedelta(late.by)
