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
from bot.service.notify import Note, NoteKind
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
    """A due end being handled: its job, pause, request and lateness prefix."""

    job: Job
    pause: PauseRecord
    request: OperationRequest
    late: str

    @property
    def late_tag(self) -> str:
        """`` (Late by 3m: ...)`` for a notice, or nothing."""
        return f" {self.late.strip()}" if self.late else ""


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
        announce: Callable[[OperationRequest, str], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._requests = requests
        self._ops = operations
        self._t = timings or PauseTimings()
        self._announce = announce
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

    async def release(
        self,
        pause: PauseRecord,
        *,
        reason: str,
        running: JobKind | None = None,
        outcome: str | None = None,
        still_paused: bool = False,
        audit: tuple[str, Mapping[str, Any]] | None = None,
        by: str | None = None,
    ) -> bool:
        """Stop watching a pause: close it, cancel its timers (but not ``running``), record
        ``outcome`` on its request (shown on the card, edited here) and ``audit``
        (action, detail) in the trail, all in one transaction. False when the pause was
        closed already (another run or process got there first): nothing is recorded."""
        text = outcome or f"ended: {reason}"
        closing = PauseClosing(
            pause_id=pause.id,
            request_id=pause.request_id,
            reason=reason,
            outcome=PauseOutcome(at=self._clock(), text=text, still_paused=still_paused, by=by),
            cancel_keys=self._timer_keys(pause, running=running),
            audit_action=None if audit is None else audit[0],
            audit_detail={} if audit is None else dict(audit[1]),
        )
        closed = pause.id in await self._store.end_pauses([closing])
        if closed:
            request = await self._store.get_request(pause.request_id)
            if request is not None:
                await self._requests.show_as(request)
        return closed

    async def let_it_end(self, *, request_id: str, user: str) -> str:
        """'Let it end' on a reminder: no more reminders; the end happens as planned."""
        pause = await self._store.pause_for_request(request_id)
        if pause is None or not pause.active:
            return "That pause is no longer running."
        for before in self._t.reminders:
            key = f"{pause.id}:{int(before.total_seconds())}"
            await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, key))
        await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"))
        request = await self._store.get_request(request_id)
        if request is not None:
            await self._requests.note(
                request,
                Note(
                    kind=NoteKind.INFO,
                    actor=user,
                    text=f"lets the pause end as planned ({pause.then.value}); no more reminders.",
                ),
            )
        return "No more reminders for this pause."

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
        pause, request, late = e.pause, e.request, e.late
        if pause.then is ThenAction.KEEP:
            await self._store.set_pause_end(pause.id, ends_at=None)
            outcome = PauseOutcome(
                at=self._clock(), text="time is up; it stays paused as asked", still_paused=True
            )
            await self._store.set_pause_outcome(request.id, outcome)
            await self._say(
                request,
                f"{late}The pause time is up; {pause.label} stays paused as asked. Use Resume now "
                "when it should run again.",
            )
            await self._requests.show_as(request.model_copy(update={"pause_outcome": outcome}))
            await self._announce_end(
                request, f"pause time is up; it stays paused (kept){e.late_tag}"
            )
            kept = await self._store.get_pause(pause.id)
            if kept is not None:
                await self.schedule(kept)
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
        if e.job.attempts <= 1:
            await self._say(
                e.request,
                f"{e.late}The pause time is up, but could not resume {label}: {reason} The bot "
                f"tries again (up to {MAX_ATTEMPTS} times) and says here when it is done.",
            )
        elif e.job.attempts >= MAX_ATTEMPTS:
            await self._say(
                e.request,
                f"Gave up resuming {label} after {e.job.attempts} tries: {reason} It is still "
                "paused: use Resume now once the problem is fixed.",
            )
            await self._announce_end(e.request, "pause did not end: the bot could not resume it")

    async def _nothing_to_resume(self, e: _Ending, exc: InvalidState) -> None:
        if await self.release(
            e.pause,
            running=JobKind.PAUSE_END,
            reason="already changed at the end",
            outcome=f"ended: it had already been changed ({exc.current_state or 'unknown'})",
            audit=("pause_ended", {"then": e.pause.then.value, "after": exc.current_state}),
        ):
            await self._say(
                e.request, f"{e.late}The pause time is up. Nothing to resume: {exc.user_message()}"
            )
            await self._announce_end(e.request, "pause ended: it had already been changed")

    async def _resumed(self, e: _Ending, state: TargetState, *, verified: bool) -> None:
        await self._resumed_many([(e, state, verified)])

    async def _resumed_many(self, ends: Sequence[tuple[_Ending, TargetState, bool]]) -> None:
        """Close resumed pauses in one transaction; then each thread, card and notice."""
        now = self._clock()
        closings = [
            PauseClosing(
                pause_id=e.pause.id,
                request_id=e.request.id,
                reason=f"ended: {state.describe()}",
                outcome=PauseOutcome(
                    at=now,
                    text=(
                        f"resumed: {state.describe()} (verified)"
                        if verified
                        else f"resume sent; the read-back still shows {state.describe()}"
                    ),
                    still_paused=state.state is NormalState.PAUSED,
                ),
                cancel_keys=self._timer_keys(e.pause, running=JobKind.PAUSE_END),
                audit_action="pause_ended",
                audit_detail={
                    "then": e.pause.then.value,
                    "after": state.describe(),
                    "verified": verified,
                    "late": e.late.strip(),
                },
            )
            for e, state, verified in ends
        ]
        # the pauses close, and their notes, card edits and notices are written to the
        # outbox, in one transaction: a crash keeps both or neither
        async with self._store.atomic():
            closed = await self._store.end_pauses(closings)
            for (e, state, verified), closing in zip(ends, closings, strict=True):
                if e.pause.id not in closed:
                    continue  # another run closed it and reported
                text = (
                    f"{e.late}The pause time is up. Resumed: it is now {state.describe()} "
                    "(verified by reading it back)."
                    if verified
                    else f"{e.late}The pause time is up. Sent the resume, but the read-back "
                    f"still shows {state.describe()}; check it with status."
                )
                await self._say(e.request, text)
                await self._requests.show_as(
                    e.request.model_copy(update={"pause_outcome": closing.outcome})
                )
                await self._announce_end(e.request, f"pause ended: {state.describe()}{e.late_tag}")

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
            if await self.release(
                pause,
                running=JobKind.JOURNEY_CHECK,
                reason="guardrail did not act",
                outcome=f"did not end as expected ({pause.then.value}): still {state.describe()}",
                still_paused=True,
                audit=(
                    "pause_ended",
                    {"then": pause.then.value, "after": state.describe(), "expected": False},
                ),
            ):
                await self._say(
                    request,
                    f"{late}Unexpected: the pause should have ended ({pause.then.value}) but "
                    f"{pause.label} is still {state.describe()}. Journey Builder's guardrail did "
                    "not act; resume or stop it yourself.",
                )
                await self._announce_end(request, "pause did not end as expected: still paused")
            return
        ok = state.state is expected
        what = {
            NormalState.ACTIVE: "Journey Builder resumed it",
            NormalState.STOPPED: "Journey Builder stopped it",
            NormalState.PAUSED: "it stays paused as asked",
        }.get(state.state, f"it is now {state.describe()}")
        flag = "" if ok else f" (expected {pause.then.value})"
        said = f"{late}The pause ended: {what}; read back: {state.describe()}{flag}."
        audit = (
            "pause_ended",
            {"then": pause.then.value, "after": state.describe(), "expected": ok},
        )
        if state.state is not NormalState.PAUSED:
            if not await self.release(
                pause,
                running=JobKind.JOURNEY_CHECK,
                reason=f"ended: {state.describe()}",
                outcome=f"{what}: {state.describe()}{flag}",
                audit=audit,
            ):
                return
        else:
            await self._store.set_pause_end(pause.id, ends_at=None)
            outcome = PauseOutcome(at=self._clock(), text=f"time is up; {what}", still_paused=True)
            await self._store.set_pause_outcome(request.id, outcome)
            await self._store.record(
                actor="bot",
                action=audit[0],
                via=Via.SCHEDULER,
                request_id=request.id,
                detail=audit[1],
            )
            await self._requests.show_as(request.model_copy(update={"pause_outcome": outcome}))
        await self._say(request, said)
        await self._announce_end(request, f"pause ended: {state.describe()}{flag}")

    # -- reminders and drift --------------------------------------------------------------

    async def remind(self, job: Job) -> None:
        pause, request = await self._load(job)
        if pause is None or request is None:
            return
        now = self._clock()
        if job.payload.get("open_ended"):
            since = format_timedelta(now - pause.started_at)
            text = f"Reminder: {pause.label} has been paused for {since}, with no end set."
            await self._store.schedule(
                kind=JobKind.PAUSE_REMINDER,
                key=job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"),
                due_at=now + self._t.open_ended_reminder_every,
                payload={"pause_id": pause.id, "open_ended": True},
            )
        else:
            if pause.ends_at is None or pause.ends_at <= now:
                return
            left = format_timedelta(pause.ends_at - now)
            text = f"Reminder: the pause of {pause.label} ends in {left}, then {pause.then.value}."
        await self._requests.note(
            request, Note(kind=NoteKind.REMINDER, text=text, pause_id=pause.id)
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
        if await self.release(
            pause,
            running=JobKind.DRIFT_CHECK,
            reason=f"changed outside the bot: {state.describe()}",
            outcome=f"changed outside the bot: now {state.describe()}",
            audit=("drift", {"now": state.describe()}),
        ):
            await self._say(
                request,
                f"{pause.label} is now {state.describe()}: it was changed outside the bot, so "
                "this pause is no longer tracked.",
            )
            await self._announce_end(request, f"changed outside the bot: now {state.describe()}")

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

    def _late(self, due: datetime) -> str:
        """Say so when an end is handled well after it was due, and why: the bot was not
        running then (it started after), or it was running but behind."""
        now = self._clock()
        late_by = now - due
        if late_by < LATE_AFTER:
            return ""
        why = (
            "the bot was not running when this was due"
            if due < self._started
            else "the bot was busy with other due work"
        )
        return f"(Late by {format_timedelta(late_by)}: {why}.) "

    async def _say(self, request: OperationRequest, text: str) -> None:
        await self._requests.note(request, Note(kind=NoteKind.INFO, text=text))

    async def _announce_end(self, request: OperationRequest, text: str) -> None:
        if self._announce is not None:
            try:
                await self._announce(request, text)
            except Exception:
                log.exception("announce_failed", request_id=request.id)
