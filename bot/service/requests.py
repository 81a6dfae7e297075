"""The request use case: request -> (approval) -> execute -> verify -> notify -> record.

Everything that must survive a restart is written to the store before the next step, and
every status change is a conditional transition, so a request executes at most once however
many replicas, retries or double clicks there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from bot.domain.approvals import ApprovalPolicy, ApprovalView, is_group_id
from bot.domain.commands import (
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import (
    BadInput,
    BotError,
    InvalidState,
    ProductionRefused,
    ProviderError,
)
from bot.domain.events import (
    ApprovalNeeded,
    Event,
    Executing,
    PauseEnded,
    PauseExtended,
    Progress,
    RecoveryReadBack,
    RecoverySending,
    RequestFailed,
    Succeeded,
    Unverified,
)
from bot.domain.models import (
    NormalState,
    OperationResult,
    TargetState,
    Verb,
    VersionSelector,
)
from bot.domain.requests import (
    ExecutionPhase,
    OperationRequest,
    PauseRecord,
    RequestSpec,
    RequestStatus,
    Via,
    duplicate_of,
)
from bot.faults import CrashPoint, crash_point
from bot.metrics import Metrics
from bot.service.directory import Directory, StaticDirectory
from bot.service.notify import Notifier
from bot.service.operations import MutatingCommand, OperationService
from bot.store.repository import Store

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: How long a process holds a request it executes; renewed every third of it while it
#: runs. Recovery takes over an executing request only once its lease has run out, and
#: leaves received or approved requests this young to the process that has them.
EXECUTION_LEASE = timedelta(seconds=60)


def process_owner() -> str:
    """A name for this process, unique among replicas: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class PauseWatcher(Protocol):
    async def schedule(self, pause: PauseRecord) -> None: ...

    async def close(
        self, pause: PauseRecord, *, reason: str, event: PauseEnded, by: str | None = None
    ) -> OperationRequest | None:
        """Close ``pause`` and record how it ended on its request (store calls only: joins
        the caller's transaction); the request to show again, None when already closed."""
        ...


def spec_for(command: MutatingCommand, state: TargetState) -> RequestSpec:
    """The exact parameters of a checked command, bound to the resolved target."""
    versions = command.versions if not isinstance(command, RunCommand) else VersionSelector()
    version = None if versions.all_versions else (versions.version or state.target.version)
    return RequestSpec(
        verb=Verb(command.verb),
        environment=state.target.environment,
        kind=state.target.kind,
        key=state.target.key,
        name=state.target.name,
        target_id=state.target.id,
        version=version,
        all_versions=versions.all_versions,
        pause=command.options if isinstance(command, PauseCommand) else None,
    )


def run_detail(result: OperationResult) -> dict[str, str]:
    """What the read-back after a run shows of it (last run before and after, the next
    run, the execution; those known), for the audit trail and the CLI."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat()

    found = {
        "last_run_before": when(result.before.last_run),
        "last_run": when(result.after.last_run),
        "next_run": when(result.after.next_run),
        "execution": result.after.execution_status,
    }
    return {key: value for key, value in found.items() if value is not None}


def failed_event(error: BotError, error_type: str | None = None) -> RequestFailed:
    """What a failure tells people: the error's words, and the provider's own code."""
    provider = error if isinstance(error, ProviderError) else None
    return RequestFailed(
        message=error.user_message(),
        provider=None if provider is None else provider.provider,
        provider_code=None if provider is None else provider.code,
        error_type=error_type,
    )


def failure_detail(event: RequestFailed, error: BotError) -> dict[str, str]:
    """What the audit trail keeps of a failure (a request's, or a batch target's)."""
    detail = {"error": event.message, "type": type(error).__name__}
    if event.provider_code is not None:
        detail["code"] = event.provider_code
    return detail


def command_for(spec: RequestSpec) -> MutatingCommand:
    """The command that carries out ``spec`` exactly (never re-resolved by name)."""
    target = TargetRef(environment=spec.environment, kind=spec.kind, name=spec.key)
    versions = VersionSelector(
        version=None if spec.all_versions else spec.version, all_versions=spec.all_versions
    )
    match spec.verb:
        case Verb.PAUSE:
            assert spec.pause is not None
            return PauseCommand(target=target, options=spec.pause, versions=versions)
        case Verb.RESUME:
            return ResumeCommand(target=target, versions=versions)
        case Verb.STOP:
            return StopCommand(target=target, versions=versions)
        case Verb.RUN:
            return RunCommand(target=target)
    raise ValueError(f"not a mutating verb: {spec.verb}")


class RequestService:
    """Creates requests, executes them exactly once, and keeps card and thread current."""

    def __init__(
        self,
        *,
        operations: OperationService,
        store: Store,
        notifier: Notifier,
        clock: Callable[[], datetime] = _utcnow,
        metrics: Metrics | None = None,
        policies: Callable[[str], ApprovalPolicy | None] = lambda _: None,
        directory: Directory | None = None,
        owner: str | None = None,
        lease: timedelta = EXECUTION_LEASE,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("the execution lease must be positive")
        #: This process, as the owner of the requests it executes.
        self.owner = owner or process_owner()
        self.lease = lease
        self._metrics = metrics
        #: Plans and cancels a pause's timers (set by the composition root).
        self.pause_watcher: PauseWatcher | None = None
        self._policies = policies
        self._directory: Directory = directory or StaticDirectory()
        self._ops = operations
        self._store = store
        self._notifier = notifier
        self._clock = clock

    @property
    def operations(self) -> OperationService:
        return self._ops

    # -- intake -------------------------------------------------------------------------

    async def submit(
        self,
        command: MutatingCommand,
        *,
        requester: str,
        via: Via,
        channel: str | None,
    ) -> OperationRequest:
        """Check the command now (errors reach the requester, nothing is recorded), then
        record it, post its card and carry it out, or, on production, ask for approval."""
        env = self._ops.environment(command.target.environment)
        policy = self._policies(env.name) if env.production else None
        try:
            before = await self._ops.check(command, allow_production=policy is not None)
            spec = spec_for(command, before)
        except InvalidState:
            if not isinstance(command, PauseCommand):
                raise
            before = await self._extension_base(command)
            spec = spec_for(command, before).model_copy(update={"extend": True})
        reason = command.options.reason if isinstance(command, PauseCommand) else None
        if policy is not None:
            return await self._ask_approval(
                spec, policy, requester=requester, via=via, channel=channel, reason=reason
            )
        request = await self._store.create_request(
            spec=spec, requested_by=requester, via=via, reason=reason, channel=channel
        )
        try:
            await self._store.record(
                actor=requester,
                action="requested",
                via=via,
                request_id=request.id,
                detail={"spec": spec.describe(), "state": before.describe()},
            )
            request = await self._post_card(request)
        except Exception as exc:
            # Not carried out, and never to be carried out later as if asked: a request
            # left "received" would be executed by the next start's recovery.
            raise await self._abandon(request, exc, actor=requester, via=via) from exc
        return await self.execute(request.id, actor=requester, via=via)

    async def _abandon(
        self, request: OperationRequest, exc: Exception, *, actor: str, via: Via
    ) -> BotError:
        """A submission failed before execution: mark its request failed with the reason
        (so recovery leaves it alone) and return the error for the requester."""
        error = (
            exc
            if isinstance(exc, BotError)
            else BotError(
                f"The request could not be recorded completely ({type(exc).__name__}), so it "
                "was not carried out and will not be. Nothing was changed."
            )
        )
        log.error("request_submission_failed", request_id=request.id, exc_info=exc)
        async with self._store.atomic():
            failed = await self._store.transition(
                request.id, to=RequestStatus.FAILED, error=error.user_message()
            )
            if failed is not None:
                await self._store.record(
                    actor=actor,
                    action="failed",
                    via=via,
                    request_id=request.id,
                    detail={"error": error.user_message(), "type": type(exc).__name__},
                )
                await self.publish(failed, failed_event(error, type(exc).__name__))
                await self.show(failed)
        if failed is not None:
            self._count(failed, "failed")
        return error

    async def _extension_base(self, command: PauseCommand) -> TargetState:
        """Pausing what the bot already paused moves the end of that pause (an extension)."""
        state = await self._ops.resolve(command.target, version=command.versions.version)
        t = state.target
        watched = await self._store.active_pause_for_target(
            environment=t.environment, kind=t.kind, key=t.key
        )
        if state.state is not NormalState.PAUSED or watched is None:
            raise InvalidState(
                f"Cannot pause {t.display()}: it is {state.describe()}.",
                current_state=state.raw_status,
            )
        traits = self._ops.environment(t.environment).provider(t.kind).traits
        if not traits.extends_running_pause:
            raise BadInput(
                f"{traits.product} cannot lengthen a pause that is running: resume the "
                f"{traits.noun} and pause it again for the new length."
            )
        if not command.options.timed:
            raise BadInput("To extend a pause, give its new length ('for 2d') or end ('until …').")
        return state

    async def _extend(self, request: OperationRequest) -> OperationResult:
        """Carry out an extension: no provider call, the bot moves its own timer."""
        spec = request.spec
        state = await self._ops.resolve(
            TargetRef(environment=spec.environment, kind=spec.kind, name=spec.key),
            version=spec.version,
        )
        watched = await self._store.active_pause_for_target(
            environment=spec.environment, kind=spec.kind, key=spec.key
        )
        if state.state is not NormalState.PAUSED or watched is None or spec.pause is None:
            raise InvalidState(
                f"Nothing to extend: {state.target.display()} is {state.describe()} and the "
                "bot is not watching a pause of it any more.",
                current_state=state.raw_status,
            )
        ends_at = spec.pause.ends_at(self._clock())
        async with self._store.atomic():
            moved = await self._store.set_pause_end(watched.id, ends_at=ends_at)
            if moved is None:
                raise InvalidState(
                    "The pause ended meanwhile; nothing to extend.", current_state="ended"
                )
            if self.pause_watcher is not None:
                await self.pause_watcher.schedule(moved)
            original = await self._store.get_request(watched.request_id)
            if original is not None and ends_at is not None:
                await self.publish(
                    original, PauseExtended(actor=request.requested_by, ends_at=ends_at)
                )
        return OperationResult(
            verb=Verb.PAUSE,
            target=state.target,
            before=state,
            after=state,
            expected=frozenset({NormalState.PAUSED}),
            verified=True,
            provider_message="The pause was extended; no provider call was needed.",
        )

    async def _ask_approval(
        self,
        spec: RequestSpec,
        policy: ApprovalPolicy,
        *,
        requester: str,
        via: Via,
        channel: str | None,
        reason: str | None,
    ) -> OperationRequest:
        if not policy.may_request(requester, await self._groups_of(requester, policy)):
            raise ProductionRefused(
                f"You are not among the people who may ask for changes in {policy.environment}. "
                "Nothing was changed."
            )
        eligible = await self._eligible(policy, requester)
        if eligible is not None and len(eligible) < policy.required:
            # Recorded all the same: its card says at once who could approve it and what
            # to change in the configuration; the requester can still withdraw it (deny).
            log.warning(
                "approval_short_of_approvers",
                environment=policy.environment,
                requester=requester,
                required=policy.required,
                eligible=sorted(eligible),
            )
        first = await self._store.pending_approval(spec)
        if first is not None:  # the same thing asked twice: one card, one decision
            raise duplicate_of(first)
        now = self._clock()
        request = await self._store.create_request(
            spec=spec,
            requested_by=requester,
            via=via,
            reason=reason,
            channel=channel or policy.channel,
            status=RequestStatus.AWAITING_APPROVAL,
            expires_at=policy.expires_at(now),
        )
        await self._store.record(
            actor=requester,
            action="requested",
            via=via,
            request_id=request.id,
            detail={"spec": spec.describe(), "approval": f"{policy.required} needed"},
        )
        request = await self._post_card(request)
        # Published once the card is posted: the reply goes in its thread.
        await self.publish(
            request,
            ApprovalNeeded(
                required=policy.required,
                approval=ApprovalView.of(policy, (), request.expires_at, eligible=eligible),
            ),
        )
        return request

    async def _groups_of(self, user: str, policy: ApprovalPolicy) -> frozenset[str]:
        """The requester groups of ``policy`` that ``user`` belongs to."""
        found: set[str] = set()
        for group in sorted(g for g in (policy.requesters or ()) if is_group_id(g)):
            try:
                if user in await self._directory.members(group):
                    found.add(group)
            except BotError as exc:
                log.warning("group_lookup_failed", group=group, error=exc.user_message())
        return frozenset(found)

    async def approver_members(self, policy: ApprovalPolicy) -> frozenset[str]:
        """Every user in the policy's approver groups (read now: membership can change).

        A group that cannot be read (no user groups on the plan, a deleted group, Slack
        down) is logged and counts as empty: the explicitly listed approvers still count.
        """
        members: set[str] = set()
        for group in sorted(policy.group_ids):
            try:
                members |= await self._directory.members(group)
            except BotError as exc:
                log.warning("group_lookup_failed", group=group, error=exc.user_message())
        return frozenset(members)

    async def approval_view(self, request: OperationRequest) -> ApprovalView | None:
        """What the card shows about the request's approval (None: no approval involved)."""
        policy = self._policies(request.spec.environment)
        if policy is None or request.expires_at is None:
            return None
        votes = await self._store.votes(request.id)
        eligible = None
        if request.status is RequestStatus.AWAITING_APPROVAL:
            eligible = await self._eligible(policy, request.requested_by)
        return ApprovalView.of(policy, votes, request.expires_at, eligible=eligible)

    async def _eligible(self, policy: ApprovalPolicy, requester: str) -> set[str] | None:
        """Who could approve ``requester``'s request now; None when a group could not be
        read for a passing reason (Slack down): the card then says nothing about it."""
        members: set[str] = set()
        for group in sorted(policy.group_ids):
            try:
                members |= await self._directory.members(group)
            except ProviderError as exc:
                if exc.retryable:
                    return None
            except BotError:
                return None
        return policy.eligible_approvers(requester, members)

    # -- execution ----------------------------------------------------------------------

    async def execute(self, request_id: str, *, actor: str, via: Via) -> OperationRequest:
        """Carry out a received or approved request, once. A caller that loses the race
        gets the request as the winner left it.

        The request is leased to this process (``owner``, renewed while it runs) and its
        phase is recorded: "not sent" with the move to executing, "may have been sent"
        just before the provider call, so recovery knows what it may do after a crash.
        """
        now = self._clock()
        async with self._store.atomic():
            request = await self._store.transition(
                request_id,
                to=RequestStatus.EXECUTING,
                owner=self.owner,
                lease_until=now + self.lease,
                execution_phase=ExecutionPhase.NOT_SENT.value,
            )
            if request is not None:
                await self._store.record(
                    actor=actor, action="executing", via=via, request_id=request.id
                )
                await self.publish(request, Executing())
                await self.show(request)
        if request is None:
            current = await self._store.get_request(request_id)
            if current is None:
                raise LookupError(f"no request {request_id}")
            return current
        crash_point(CrashPoint.AFTER_EXECUTING_AUDIT)
        return await self._carry_out(request, actor=actor, via=via)

    async def _carry_out(
        self, request: OperationRequest, *, actor: str, via: Via
    ) -> OperationRequest:
        """Check, send (once: only while this process holds the request), read back,
        settle; the lease is renewed all along."""
        command = command_for(request.spec)

        async def progress(attempt: int, attempts: int) -> None:
            await self.publish(request, Progress(done=attempt, total=attempts, noun="tries"))

        async with self._leased(request.id):
            try:
                if request.spec.extend:
                    if not await self._may_send(request):
                        return await self._require(request.id)
                    result = await self._extend(request)
                else:
                    before = await self._ops.check(command, allow_production=True)
                    if not await self._may_send(request):
                        return await self._require(request.id)
                    crash_point(CrashPoint.BEFORE_PROVIDER_CALL)
                    result = await self._ops.perform(command, before, progress=progress)
            except BotError as exc:
                return await self._fail(request, exc, actor=actor, via=via)
            return await self._settle(request, result, actor=actor, via=via)

    async def _may_send(self, request: OperationRequest) -> bool:
        """Record "may have been sent" just before the call; False (send nothing) when
        another process took the request over meanwhile."""
        if await self._store.mark_maybe_sent(request.id, owner=self.owner):
            return True
        log.warning("request_taken_over", request_id=request.id, owner=self.owner)
        return False

    @contextlib.asynccontextmanager
    async def _leased(self, request_id: str) -> AsyncIterator[None]:
        """Renew this process's lease on ``request_id`` every third of the lease while
        the body runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                try:
                    held = await self._store.renew_execution(
                        request_id, owner=self.owner, until=self._clock() + self.lease
                    )
                except Exception:
                    log.exception("execution_lease_renewal_failed", request_id=request_id)
                    continue
                if not held:
                    return

        renewals = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals

    async def _fail(
        self, request: OperationRequest, exc: BotError, *, actor: str, via: Via
    ) -> OperationRequest:
        event = failed_event(exc)
        message = event.message
        async with self._store.atomic():
            failed = await self._store.transition(
                request.id,
                to=RequestStatus.FAILED,
                expected=(RequestStatus.EXECUTING,),
                error=message,
            )
            if failed is not None:
                await self._store.record(
                    actor=actor,
                    action="failed",
                    via=via,
                    request_id=request.id,
                    detail=failure_detail(event, exc),
                )
                await self.publish(failed, event)
                await self.show(failed)
        if failed is None:  # settled by another process (it took over): it told the thread
            return await self._require(request.id)
        crash_point(CrashPoint.AFTER_SETTLED)
        log.info("request_failed", request_id=request.id, error=message)
        self._count(failed, "failed")
        return failed

    async def _settle(
        self,
        request: OperationRequest,
        result: OperationResult,
        *,
        actor: str,
        via: Via,
        interrupted: bool = False,
    ) -> OperationRequest:
        """Record what the read-back showed (``interrupted``: recovery read back a call
        whose process stopped while sending it, and did not send it again)."""
        spec = request.spec
        ends_at = None
        if spec.verb is Verb.PAUSE and spec.pause is not None and result.verified:
            ends_at = spec.pause.ends_at(self._clock())
        status = RequestStatus.SUCCEEDED if result.verified else RequestStatus.UNVERIFIED
        event: Event = (
            Succeeded(state_after=result.after.describe(), provider_request_id=result.request_id)
            if result.verified
            else Unverified(state_after=result.after.describe(), interrupted=interrupted)
        )
        phase: dict[str, Any] = (
            {"execution_phase": ExecutionPhase.INTERRUPTED.value}
            if interrupted and not result.verified
            else {}
        )
        async with self._store.atomic():
            settled = await self._store.transition(
                request.id,
                to=status,
                state_before=result.before.describe(),
                state_after=result.after.describe(),
                provider_request_id=result.request_id,
                pause_ends_at=ends_at,
                **phase,
            )
            if settled is None:  # settled by another process (it took over): it told
                return await self._require(request.id)
            await self._store.record(
                actor=actor,
                action="verified" if result.verified else "unverified",
                via=via,
                request_id=request.id,
                detail={
                    "before": result.before.describe(),
                    "after": result.after.describe(),
                    "provider_request_id": result.request_id,
                    "provider_message": result.provider_message,
                    **(run_detail(result) if spec.verb is Verb.RUN else {}),
                },
            )
            ended = await self._track_pause(settled, result)
            await self.publish(settled, event)
            if ended is not None:
                await self.show_as(ended)
            await self.show(settled)
        crash_point(CrashPoint.AFTER_SETTLED)
        self._count(settled, status.value)
        return settled

    async def _track_pause(
        self, request: OperationRequest, result: OperationResult
    ) -> OperationRequest | None:
        """Open a pause record after a verified pause (and plan its timers); close it when
        the target moved on. Store calls only (the caller's transaction); the request whose
        pause it ended, to show again."""
        if not result.verified or request.spec.extend:
            return None
        spec = request.spec
        existing = await self._store.active_pause_for_target(
            environment=spec.environment, kind=spec.kind, key=spec.key
        )
        ended = None
        if spec.verb is Verb.PAUSE:
            if existing is not None:
                ended = await self._close(
                    existing,
                    reason="paused again",
                    event=PauseEnded(how="replaced", label=existing.label, then=existing.then),
                )
            pause = await self._store.open_pause(
                request=request, started_at=self._clock(), ends_at=request.pause_ends_at
            )
            if self.pause_watcher is not None:
                await self.pause_watcher.schedule(pause)
        elif existing is not None and result.after.state is not NormalState.PAUSED:
            ended = await self._close(
                existing,
                reason=f"{spec.verb.value} by bot",
                event=PauseEnded(
                    how="ended_early",
                    label=existing.label,
                    then=existing.then,
                    state=result.after.describe(),
                    normal=result.after.state,
                    verb=spec.verb,
                ),
                by=request.requested_by,
            )
        return ended

    async def _close(
        self, pause: PauseRecord, *, reason: str, event: PauseEnded, by: str | None = None
    ) -> OperationRequest | None:
        if self.pause_watcher is not None:
            return await self.pause_watcher.close(pause, reason=reason, event=event, by=by)
        await self._store.close_pause(pause.id, reason=reason)
        return None

    # -- recovery -----------------------------------------------------------------------

    async def recover(self) -> list[OperationRequest]:
        """Finish what a stopped process left (at start and periodically).

        A received or approved request untouched for ``lease`` is executed (younger ones
        may be in the hands of a live process; the conditional transition keeps it once
        anyway). An executing request is taken over only when its owner's lease has run
        out: a call not sent yet is sent, once; a call that may have been sent is not sent
        again: its target is read back and the thread told what the read-back shows.
        """
        done: list[OperationRequest] = []
        now = self._clock()
        for request in await self._store.unfinished_requests():
            try:
                idle = request.updated_at <= now - self.lease
                if request.channel and not request.card_ts:
                    # its process stopped before the card was posted: post it now, so the
                    # thread and the card edits have somewhere to go; once (claimed first:
                    # another pass that loses the claim leaves the request to this one)
                    claimed = idle and await self._store.claim_card_post(
                        request.id, idle_before=now - self.lease
                    )
                    if not claimed:
                        continue
                    request = await self._post_card(request)
                if request.status in (RequestStatus.RECEIVED, RequestStatus.APPROVED):
                    if not idle:
                        continue
                    done.append(await self.execute(request.id, actor="bot", via=Via.SYSTEM))
                elif request.status is RequestStatus.EXECUTING:
                    taken = await self._store.take_over(
                        request.id, owner=self.owner, now=now, until=now + self.lease
                    )
                    if taken is not None:
                        done.append(await self._resume(taken))
            except Exception:
                log.exception("recovery_failed", request_id=request.id)
        return done

    async def _resume(self, request: OperationRequest) -> OperationRequest:
        """Carry on with an executing request taken over from a stopped process."""
        not_sent = request.execution_phase is ExecutionPhase.NOT_SENT
        async with self._store.atomic():
            await self._store.record(
                actor="bot",
                action="taken_over",
                via=Via.SYSTEM,
                request_id=request.id,
                detail={
                    "phase": (request.execution_phase or ExecutionPhase.MAYBE_SENT).value,
                    "from": request.owner,
                },
            )
            if not_sent:
                await self.publish(request, RecoverySending())
        if not_sent:
            return await self._carry_out(request, actor="bot", via=Via.SYSTEM)
        async with self._leased(request.id):
            return await self._settle_interrupted(request)

    async def _settle_interrupted(self, request: OperationRequest) -> OperationRequest:
        from bot.domain import rules

        spec = request.spec
        versions = VersionSelector(
            version=None if spec.all_versions else spec.version, all_versions=spec.all_versions
        )
        try:
            after = await self._ops.resolve(
                TargetRef(environment=spec.environment, kind=spec.kind, name=spec.key),
                version=versions.version,
            )
        except BotError as exc:
            return await self._fail(request, exc, actor="bot", via=Via.SYSTEM)
        traits = self._ops.environment(spec.environment).provider(spec.kind).traits
        expected = rules.expected_after(traits, spec.verb)
        verified = after.state in expected
        seen = after.describe()
        await self.publish(request, RecoveryReadBack(state=seen))
        result = OperationResult(
            verb=spec.verb,
            target=after.target,
            before=after,
            after=after,
            expected=expected,
            verified=verified,
            note="settled after a restart",
        )
        return await self._settle(request, result, actor="bot", via=Via.SYSTEM, interrupted=True)

    # -- notifications ------------------------------------------------------------------

    def _count(self, request: OperationRequest, outcome: str) -> None:
        if self._metrics is not None:
            spec = request.spec
            self._metrics.requests.labels(
                verb=spec.verb.value, kind=spec.kind.value, outcome=outcome
            ).inc()

    async def _post_card(self, request: OperationRequest) -> OperationRequest:
        crash_point(CrashPoint.BEFORE_CARD_POST)
        try:
            ref = await self._notifier.post_card(request, await self.approval_view(request))
        except Exception:
            log.exception("card_post_failed", request_id=request.id)
            return request
        if ref is None:
            return request
        return await self._store.set_card(request.id, channel=ref.channel, card_ts=ref.ts)

    async def show(self, request: OperationRequest) -> None:
        """Have the card show the request as it is now. Called in the transaction of the
        change it shows (so the edit is kept exactly when the change is), except for a
        request awaiting approval, whose card names who may approve (a directory lookup:
        after the commit). The request and its votes are read again (the caller's copy
        may be older than what another voter or process stored); the edit itself draws
        them once more when it is sent."""

        async def edit() -> None:
            current = await self._store.get_request(request.id) or request
            await self._notifier.update_card(current, await self.approval_view(current))

        await self._safely(edit())

    async def show_as(self, request: OperationRequest) -> None:
        """Edit the card to show ``request`` as given: the caller just wrote it (e.g. how
        its pause ended), so it is not read again."""

        async def edit() -> None:
            await self._notifier.update_card(request, await self.approval_view(request))

        await self._safely(edit())

    async def publish(self, request: OperationRequest, event: Event) -> None:
        """Tell people what happened (inside the transaction of the change it reports)."""
        await self._safely(self._notifier.publish(request, event))

    @staticmethod
    async def _safely(call: Awaitable[None]) -> None:
        """Slack being down must not lose an operation: the store is the truth."""
        try:
            await call
        except Exception:
            log.exception("notify_failed")

    async def _require(self, request_id: str) -> OperationRequest:
        current = await self._store.get_request(request_id)
        if current is None:
            raise LookupError(f"no request {request_id}")
        return current
