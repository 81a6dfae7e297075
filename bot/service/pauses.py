"""Timed pauses: the bot owns the timeline of every pause it made.

At a verified pause the bot schedules, in the database (``jobs``): the end of the pause
(automations and scrip: the bot carries out the then-action itself; journeys: Journey
Builder applies ``GuardrailAction`` and the bot reads the journey shortly after to report
what it sees), reminders before the end, and periodic drift checks. Every handler is
idempotent: a job may run again after a process died holding its lease.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import BaseModel, ConfigDict

from bot.domain.commands import ResumeCommand, TargetRef
from bot.domain.errors import BotError, InvalidState
from bot.domain.jobs import Job, JobKind, job_key
from bot.domain.models import NormalState, TargetKind, TargetState, ThenAction, VersionSelector
from bot.domain.requests import OperationRequest, PauseRecord, Via, format_timedelta
from bot.service.notify import Note, NoteKind
from bot.service.operations import OperationService
from bot.service.requests import RequestService
from bot.store.repository import Store

log = structlog.get_logger(__name__)

#: An end handled this long after it was due is reported as late.
LATE_AFTER = timedelta(minutes=2)


def _utcnow() -> datetime:
    return datetime.now(UTC)


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

    def handlers(self) -> Mapping[JobKind, Callable[[Job], Awaitable[None]]]:
        return {
            JobKind.PAUSE_END: self.end_pause,
            JobKind.JOURNEY_CHECK: self.check_journey,
            JobKind.PAUSE_REMINDER: self.remind,
            JobKind.DRIFT_CHECK: self.check_drift,
        }

    # -- scheduling -----------------------------------------------------------------------

    async def schedule(self, pause: PauseRecord) -> None:
        """Plan the end, the reminders and the drift checks of a new (or moved) pause."""
        now = self._clock()
        payload = {"pause_id": pause.id}
        if pause.ends_at is not None:
            if pause.kind is TargetKind.JOURNEY:
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

    async def release(
        self, pause: PauseRecord, *, reason: str, running: JobKind | None = None
    ) -> PauseRecord | None:
        """Stop watching a pause: close it and cancel its timers (but not ``running``, the
        job calling this, which completes normally)."""
        closed = await self._store.close_pause(pause.id, reason=reason)
        for kind in (JobKind.PAUSE_END, JobKind.JOURNEY_CHECK, JobKind.DRIFT_CHECK):
            if kind is not running:
                await self._store.cancel_job(job_key(kind, pause.id))
        for before in self._t.reminders:
            key = f"{pause.id}:{int(before.total_seconds())}"
            await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, key))
        await self._store.cancel_job(job_key(JobKind.PAUSE_REMINDER, f"{pause.id}:open"))
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
        pause, request = await self._load(job)
        if pause is None or request is None or pause.ends_at is None:
            return
        late = self._late(pause.ends_at)
        if pause.then is ThenAction.KEEP:
            await self._store.set_pause_end(pause.id, ends_at=None)
            await self._say(
                request,
                f"{late}The pause time is up; {pause.key} stays paused as asked. Use Resume now "
                "when it should run again.",
            )
            await self._announce_end(request, f"pause time is up; it stays paused (kept){late}")
            kept = await self._store.get_pause(pause.id)
            if kept is not None:
                await self.schedule(kept)
            return
        await self._say(request, f"{late}The pause time is up: resuming {pause.key}…")
        try:
            state = await self._resume(pause)
        except InvalidState as exc:
            await self._say(request, f"Nothing to resume: {exc.user_message()}")
            await self.release(
                pause, running=JobKind.PAUSE_END, reason="already changed at the end"
            )
            await self._announce_end(request, "pause ended: it had already been changed")
            return
        except BotError as exc:
            await self._say(request, f"Could not resume it: {exc.user_message()}")
            raise  # the scheduler retries with backoff
        verified = state.state is not NormalState.PAUSED
        await self._store.record(
            actor="bot",
            action="pause_ended",
            via=Via.SCHEDULER,
            request_id=request.id,
            detail={"then": pause.then.value, "after": state.describe(), "late": late.strip()},
        )
        await self.release(pause, running=JobKind.PAUSE_END, reason=f"ended: {state.describe()}")
        outcome = (
            f"Resumed: it is now {state.describe()} (verified by reading it back)."
            if verified
            else f"Sent the resume, but the read-back still shows {state.describe()}."
        )
        await self._say(request, outcome)
        await self._announce_end(request, f"pause ended: {state.describe()}{late}")

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
            text = (
                f"{late}Unexpected: the pause should have ended ({pause.then.value}) but "
                f"{pause.key} is still {state.describe()}. Journey Builder's guardrail did not "
                "act; resume or stop it yourself."
            )
            await self._say(request, text)
            await self._announce_end(request, "pause did not end as expected: still paused")
            await self.release(pause, running=JobKind.JOURNEY_CHECK, reason="guardrail did not act")
            return
        ok = state.state is expected
        what = {
            NormalState.ACTIVE: "Journey Builder resumed it",
            NormalState.STOPPED: "Journey Builder stopped it",
            NormalState.PAUSED: "it stays paused as asked",
        }.get(state.state, f"it is now {state.describe()}")
        flag = "" if ok else f" (expected {pause.then.value})"
        await self._say(
            request, f"{late}The pause ended: {what}; read back: {state.describe()}{flag}."
        )
        await self._store.record(
            actor="bot",
            action="pause_ended",
            via=Via.SCHEDULER,
            request_id=request.id,
            detail={"then": pause.then.value, "after": state.describe(), "expected": ok},
        )
        await self._announce_end(request, f"pause ended: {state.describe()}{flag}")
        if state.state is not NormalState.PAUSED:
            await self.release(
                pause, running=JobKind.JOURNEY_CHECK, reason=f"ended: {state.describe()}"
            )
        else:
            await self._store.set_pause_end(pause.id, ends_at=None)

    # -- reminders and drift --------------------------------------------------------------

    async def remind(self, job: Job) -> None:
        pause, request = await self._load(job)
        if pause is None or request is None:
            return
        now = self._clock()
        if job.payload.get("open_ended"):
            since = format_timedelta(now - pause.started_at)
            text = f"Reminder: {pause.key} has been paused for {since}, with no end set."
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
            text = f"Reminder: the pause of {pause.key} ends in {left}, then {pause.then.value}."
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
        await self._say(
            request,
            f"{pause.key} is now {state.describe()}: it was changed outside the bot, so this "
            "pause is no longer tracked.",
        )
        await self._store.record(
            actor="bot",
            action="drift",
            via=Via.SCHEDULER,
            request_id=request.id,
            detail={"now": state.describe()},
        )
        await self.release(
            pause,
            running=JobKind.DRIFT_CHECK,
            reason=f"changed outside the bot: {state.describe()}",
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
        late_by = self._clock() - due
        if late_by < LATE_AFTER:
            return ""
        return f"(Late by {format_timedelta(late_by)}: the bot was not running when this was due.) "

    async def _say(self, request: OperationRequest, text: str) -> None:
        await self._requests.note(request, Note(kind=NoteKind.INFO, text=text))

    async def _announce_end(self, request: OperationRequest, text: str) -> None:
        if self._announce is not None:
            try:
                await self._announce(request, text)
            except Exception:
                log.exception("announce_failed", request_id=request.id)
