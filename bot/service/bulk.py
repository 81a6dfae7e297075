"""Bulk (emergency) requests: resolve a pattern, preview, confirm, (approve), execute, verify.

``pause prod/automation:bf25-* for 2d`` resolves its set from every provider's
``list_states`` (through the Provider port, never by kind), plans it
(:func:`bot.domain.bulk.plan`) and records it as a batch with its frozen set: the preview.
The requester confirms; on production one approval covers exactly that set (a set that
changed since the preview is refused: it is a new request). Execution works on at most
``traits.parallel_targets`` targets at once per provider instance, or per business unit of
a provider that spans several (:class:`bot.service.ports.Lanes`; the adapters keep their
own call limits under it), retries transient provider failures (tenacity), then records
each failure with its provider code, and counts a target done only once a read-back shows
it. ``resume batch <id>`` puts back exactly the targets that batch paused and still holds;
a timed bulk pause ends as one batch, from one scheduler job.

What happens to a batch is told to its front end as typed events
(:class:`BatchListener`: previewed, changed, progressed, ended), inside the store
transaction of the change (Slack writes its card and notes to the outbox there); the
service words nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from bot.domain import rules
from bot.domain.approvals import (
    ApprovalPolicy,
    Decision,
    Outcome,
    Vote,
    is_group_id,
    reaction_decision,
    refusal,
    tally,
)
from bot.domain.bulk import (
    Batch,
    BatchChanged,
    BatchEnded,
    BatchEvent,
    BatchPlan,
    BatchPreviewed,
    BatchProgressed,
    BatchReactionIgnored,
    BatchStatus,
    BatchTarget,
    BulkPattern,
    Progress,
    Skip,
    SkipCode,
    TargetStatus,
    frozen_targets,
    plan,
    skip_reason,
)
from bot.domain.commands import (
    BulkCommand,
    PauseCommand,
    ResumeCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import (
    BadInput,
    BotError,
    InvalidState,
    NotFound,
    ProductionRefused,
    ProviderError,
)
from bot.domain.events import VoteRefused
from bot.domain.jobs import Job, JobKind
from bot.domain.models import PauseOptions, TargetState, ThenAction, Verb
from bot.domain.requests import Via
from bot.service.directory import Directory, StaticDirectory
from bot.service.operations import MutatingCommand, OperationService
from bot.service.ports import Environment, Provider, lane_of
from bot.service.requests import (
    EXECUTION_LEASE,
    failed_event,
    failure_detail,
    process_owner,
)
from bot.store.batches import BatchStore

log = structlog.get_logger(__name__)

#: Told the batch's counts after each target settles.
ProgressHook = Callable[[Batch, Progress], Awaitable[None]]


class BatchListener(Protocol):
    """A front end told what happens to batches (Slack: the batch's card and thread). Called
    inside the store transaction of the change it reports (what it writes, e.g. the Slack
    outbox, is kept exactly when the change is), except for progress."""

    async def batch_event(self, batch: Batch, event: BatchEvent) -> None: ...


#: A preview not confirmed within this long expires (confirm it again: a new preview).
PREVIEW_TTL = timedelta(hours=1)

#: Tries per target (the first one included) when the provider fails transiently.
DEFAULT_ATTEMPTS = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


@dataclass(frozen=True)
class BatchVote:
    """What happened to a vote on a batch; ``refused`` says why it did not count (for the
    voter alone)."""

    counted: bool
    refused: VoteRefused | None
    batch: Batch


class BulkService:
    """Bulk requests, from preview to the last verified target."""

    def __init__(
        self,
        *,
        operations: OperationService,
        batches: BatchStore,
        policies: Callable[[str], ApprovalPolicy | None] = lambda _: None,
        directory: Directory | None = None,
        clock: Callable[[], datetime] = _utcnow,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_wait: float = 0.5,
        owner: str | None = None,
        lease: timedelta = EXECUTION_LEASE,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        #: This process, as the owner of the batches it executes (leased, renewed).
        self.owner = owner or process_owner()
        self.lease = lease
        self._ops = operations
        self._batches = batches
        self._policies = policies
        self._directory: Directory = directory or StaticDirectory()
        self._clock = clock
        self._attempts = attempts
        #: The first wait before trying a target again (then doubling).
        self.retry_wait = retry_wait
        #: Told (ending batch, source batch) when a timed bulk pause has ended (set by a
        #: front end: Slack notes it in the card's thread).
        self.on_end: Callable[[Batch, Batch], Awaitable[None]] | None = None
        #: Told a batch that recovery moved on (expired, or carried on to its end).
        self.on_change: Callable[[Batch], Awaitable[None]] | None = None
        #: Told every event of every batch (set by a front end: Slack's batch cards).
        self.listener: BatchListener | None = None

    @property
    def batches(self) -> BatchStore:
        return self._batches

    def required_approvals(self, environment: str) -> int:
        """How many approvals a batch in ``environment`` needs (1 without a policy)."""
        policy = self._policies(environment)
        return policy.required if policy is not None else 1

    async def _emit(self, batch: Batch, event: BatchEvent) -> None:
        if self.listener is not None:
            await self.listener.batch_event(batch, event)

    async def _move(self, batch_id: str, *, to: BatchStatus, **fields: Any) -> Batch | None:
        """Move the batch to ``to`` (None: its status did not allow it), and say so in the
        same transaction."""
        async with self._batches.store.atomic():
            moved = await self._batches.transition(batch_id, to=to, **fields)
            if moved is not None:
                await self._emit(moved, BatchChanged(status=moved.status))
        return moved

    # -- preview ----------------------------------------------------------------------

    async def preview(
        self, command: BulkCommand, *, actor: str, via: Via, channel: str | None
    ) -> tuple[Batch, BatchPlan]:
        """Resolve the pattern, plan it and record it (nothing is changed yet)."""
        found = await self._plan(Verb(command.action), command.pattern, command.options)
        if not found.targets:
            raise NotFound(f"No target in {found.environment} matches {command.pattern.label()}.")
        batch = await self._record(found, actor=actor, via=via, channel=channel, card=True)
        return batch, found

    async def preview_resume(
        self, batch_id: str, *, actor: str, via: Via, channel: str | None
    ) -> tuple[Batch, BatchPlan]:
        """``resume batch <id>``: the preview of putting back what batch ``id`` paused."""
        source = await self._require(batch_id)
        found = await self._resume_plan(source)
        if not found.targets:
            raise InvalidState(
                f"Batch {source.id} holds no pause any more: nothing to put back.",
                current_state="nothing held",
            )
        batch = await self._record(
            found, actor=actor, via=via, channel=channel, source_batch_id=source.id, card=True
        )
        return batch, found

    async def _plan(
        self, verb: Verb, pattern: BulkPattern, options: PauseOptions | None
    ) -> BatchPlan:
        env = self._ops.environment(pattern.environment)
        kinds = [pattern.kind] if pattern.kind is not None else list(env.providers)
        providers = [env.provider(kind) for kind in kinds]
        listed = await asyncio.gather(*(p.list_states() for p in providers))
        traits = {p.kind: p.traits for p in providers}
        states = [s for states in listed for s in states]
        return plan(verb, pattern, options, states, traits, self._clock())

    async def _resume_plan(self, source: Batch) -> BatchPlan:
        """Resume exactly the targets ``source`` paused and still holds, as they are now."""
        env = self._ops.environment(source.environment)
        held = [t for t in source.targets if t.holds_pause]
        states = await asyncio.gather(*(self._read(env.provider(t.kind), t.key) for t in held))
        traits = {kind: provider.traits for kind, provider in env.providers.items()}
        return plan(
            Verb.RESUME,
            source.pattern,
            None,
            [s for s in states if s is not None],
            traits,
            self._clock(),
        )

    @staticmethod
    async def _read(provider: Provider, key: str) -> TargetState | None:
        try:
            return await provider.get(key)
        except NotFound:
            return None

    async def _record(
        self,
        found: BatchPlan,
        *,
        actor: str,
        via: Via,
        channel: str | None,
        source_batch_id: str | None = None,
        status: BatchStatus = BatchStatus.PREVIEWED,
        card: bool = False,
    ) -> Batch:
        """Record the batch (``card``: and its preview card to show, in one transaction)."""
        async with self._batches.store.atomic():
            batch = await self._batches.create(
                verb=found.verb,
                pattern=found.pattern,
                options=found.options,
                digest=found.digest,
                status=status,
                requested_by=actor,
                via=via,
                channel=channel,
                targets=frozen_targets(found),
                source_batch_id=source_batch_id,
            )
            if card and channel:
                await self._emit(batch, BatchPreviewed(plan=found.summary()))
        return batch

    # -- confirmation and approval ----------------------------------------------------

    async def confirm(
        self, batch_id: str, *, actor: str, via: Via, progress: ProgressHook | None = None
    ) -> Batch:
        """The requester confirms the preview: carried out now, or put to the approvers on
        production. A set that changed since the preview is refused (nothing is done)."""
        batch = await self._require(batch_id)
        if batch.status is not BatchStatus.PREVIEWED:
            raise InvalidState(
                f"Batch {batch.id} is {batch.status.value}: it cannot be confirmed.",
                current_state=batch.status.value,
            )
        if actor != batch.requested_by:
            raise BadInput("Only the person who asked for this batch can confirm it.")
        env = self._ops.environment(batch.environment)
        policy = self._policies(env.name) if env.production else None
        if env.production and policy is None:
            raise ProductionRefused(
                f"{env.name} is a production environment and has no approvers configured: "
                "nothing was changed."
            )
        if policy is not None and not policy.may_request(
            actor, await self._groups_of(actor, policy)
        ):
            raise ProductionRefused(
                f"You are not among the people who may ask for changes in {env.name}. "
                "Nothing was changed."
            )
        now_plan = await self._replan(batch)
        if now_plan.digest != batch.digest:
            await self._move(batch.id, to=BatchStatus.CANCELLED)
            raise InvalidState(
                f"The targets matching {batch.pattern.label()} changed since the preview "
                f"(batch {batch.id}): nothing was done. Ask again for a new preview.",
                current_state="changed",
            )
        if policy is not None:
            waiting = await self._move(
                batch.id,
                to=BatchStatus.AWAITING_APPROVAL,
                expires_at=policy.expires_at(self._clock()),
            )
            return waiting or await self._require(batch.id)
        return await self.execute(batch.id, progress=progress)

    async def _replan(self, batch: Batch) -> BatchPlan:
        if batch.source_batch_id is not None:
            return await self._resume_plan(await self._require(batch.source_batch_id))
        return await self._plan(batch.verb, batch.pattern, batch.options)

    async def cancel(self, batch_id: str, *, actor: str) -> Batch:
        batch = await self._require(batch_id)
        if actor != batch.requested_by:
            raise BadInput("Only the person who asked for this batch can cancel it.")
        cancelled = await self._move(batch.id, to=BatchStatus.CANCELLED)
        if cancelled is None:
            raise InvalidState(
                f"Batch {batch.id} is {batch.status.value}: too late to cancel it.",
                current_state=batch.status.value,
            )
        return cancelled

    async def vote(
        self,
        *,
        batch_id: str,
        voter: str,
        decision: Decision,
        via: Via,
        progress: ProgressHook | None = None,
    ) -> BatchVote:
        """An approver's vote on a production batch: the same policy, refusals and tally as
        single requests; approved means executed once, whoever votes at the same time."""
        batch = await self._require(batch_id)
        policy = self._policies(batch.environment)
        said = decision.value
        if policy is None:
            return BatchVote(False, VoteRefused(why="no_approval_needed", decision=said), batch)
        while True:
            if batch.status is not BatchStatus.AWAITING_APPROVAL:
                status = batch.status.value
                decided = VoteRefused(why="already_decided", decision=said, status=status)
                return BatchVote(False, decided, batch)
            if batch.expires_at is not None and self._clock() >= batch.expires_at:
                expired = await self._move(batch.id, to=BatchStatus.EXPIRED)
                late = VoteRefused(why="already_decided", decision=said, status="expired")
                return BatchVote(False, late, expired or batch)
            why = refusal(
                policy,
                voter=voter,
                requester=batch.requested_by,
                is_approver=await self._is_approver(policy, voter),
                decision=decision,
            )
            if why is not None:
                if via is Via.REACTION and why == "not_an_approver":
                    await self._note_once(batch, voter)
                refused = VoteRefused(why=why, decision=said, environment=batch.environment)
                return BatchVote(False, refused, batch)
            async with self._batches.store.atomic():
                voted = await self._batches.add_vote(
                    batch, Vote(voter=voter, decision=decision, via=via, at=self._clock())
                )
                if voted is not None:
                    await self._emit(voted, BatchChanged(status=voted.status))
            if voted is not None:
                break
            batch = await self._require(batch_id)  # changed meanwhile: read it again
        match tally(policy, voted.votes).outcome:
            case Outcome.DENIED:
                denied = await self._move(voted.id, to=BatchStatus.DENIED)
                return BatchVote(True, None, denied or await self._require(voted.id))
            case Outcome.APPROVED:
                return BatchVote(True, None, await self.execute(voted.id, progress=progress))
            case Outcome.PENDING:
                return BatchVote(True, None, voted)

    async def vote_by_reaction(
        self,
        *,
        channel: str,
        card_ts: str,
        voter: str,
        reaction: str,
        progress: ProgressHook | None = None,
    ) -> BatchVote | None:
        """A reaction on a batch's card: a vote when it is the policy's approve or deny emoji
        (None: not a batch card, or another emoji). The same policy and refusals as a
        button."""
        found = await self._reaction_on(channel, card_ts, reaction)
        if found is None:
            return None
        batch, decision = found
        return await self.vote(
            batch_id=batch.id,
            voter=voter,
            decision=decision,
            via=Via.REACTION,
            progress=progress,
        )

    async def _note_once(self, batch: Batch, voter: str) -> None:
        """A non-approver's reaction is ignored, and said so once per person per batch."""
        store = self._batches.store
        async with store.atomic():
            if await store.claim_event(f"ignored-reaction:batch:{batch.id}:{voter}"):
                await self._emit(batch, BatchReactionIgnored(actor=voter))

    async def _reaction_on(
        self, channel: str, card_ts: str, reaction: str
    ) -> tuple[Batch, Decision] | None:
        """The batch whose card got ``reaction`` and the vote it means (None: not a batch
        card, or not its policy's approve or deny emoji)."""
        batch = await self._batches.find_by_card(channel=channel, card_ts=card_ts)
        if batch is None:
            return None
        decision = reaction_decision(self._policies(batch.environment), reaction)
        return None if decision is None else (batch, decision)

    async def withdraw_by_reaction(
        self, *, channel: str, card_ts: str, voter: str, reaction: str
    ) -> Batch | None:
        """Removing an approve (or deny) reaction from a batch's card before the decision
        withdraws that vote: the batch, or None when there was no such vote to withdraw."""
        found = await self._reaction_on(channel, card_ts, reaction)
        if found is None:
            return None
        batch, decision = found
        while batch.status is BatchStatus.AWAITING_APPROVAL:
            if not any(v.voter == voter and v.decision is decision for v in batch.votes):
                return None
            async with self._batches.store.atomic():
                withdrawn = await self._batches.withdraw_vote(batch, voter=voter, decision=decision)
                if withdrawn is not None:
                    await self._emit(withdrawn, BatchChanged(status=withdrawn.status))
            if withdrawn is not None:
                return withdrawn
            batch = await self._require(batch.id)  # changed meanwhile: read it again
        return None

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

    async def _is_approver(self, policy: ApprovalPolicy, voter: str) -> bool:
        if voter in policy.user_ids:
            return True
        for group in sorted(policy.group_ids):
            try:
                if voter in await self._directory.members(group):
                    return True
            except BotError as exc:
                log.warning("group_lookup_failed", group=group, error=exc.user_message())
        return False

    # -- execution --------------------------------------------------------------------

    async def execute(self, batch_id: str, *, progress: ProgressHook | None = None) -> Batch:
        """Carry out a confirmed (or approved) batch, once: every acted-on target is read
        first, acted on, read back; a timed pause gets one job for its end."""
        current = await self._require(batch_id)
        ends_at = None
        if current.verb is Verb.PAUSE and current.options is not None:
            ends_at = current.options.ends_at(self._clock())
        batch = await self._move(
            batch_id,
            to=BatchStatus.EXECUTING,
            ends_at=ends_at,
            owner=self.owner,
            lease_until=self._clock() + self.lease,
        )
        if batch is None:  # another confirmation, vote or process got there first
            return current
        return await self._carry_on(batch, progress)

    async def _carry_on(
        self, batch: Batch, progress: ProgressHook | None, *, resumed: bool = False
    ) -> Batch:
        """Act on the batch's pending targets (leased all along), then settle it."""
        async with self._leased(batch.id):
            await self._run(batch, progress, resumed=resumed)
        async with self._batches.store.atomic():
            if batch.source_batch_id is not None:
                # put back, or found no longer paused: the source batch holds them no more
                settled = await self._require(batch.id)
                await self._batches.drop_holds(
                    batch.source_batch_id,
                    [
                        (t.kind, t.key)
                        for t in settled.targets
                        if t.status is not TargetStatus.FAILED
                    ],
                )
            done = await self._move(batch.id, to=BatchStatus.DONE)
            if done is not None and done.source_batch_id is not None:
                source = await self._require(done.source_batch_id)
                if done.via is Via.SCHEDULER:  # the timed end of the source's pause
                    await self._emit(source, BatchEnded(ending=done))
                else:  # what the source holds changed (its Resume button)
                    await self._emit(source, BatchChanged(status=source.status))
        finished = done or await self._require(batch.id)
        if (
            finished.ends_at is not None
            and finished.options is not None
            and finished.options.then is not ThenAction.KEEP
            and any(t.holds_pause for t in finished.targets)
        ):
            await self._batches.schedule_end(finished)
        log.info("batch_done", batch_id=batch.id, **finished.progress().model_dump())
        return finished

    @contextlib.asynccontextmanager
    async def _leased(self, batch_id: str) -> AsyncIterator[None]:
        """Renew this process's lease on the batch every third of it while the body runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                try:
                    held = await self._batches.renew(
                        batch_id, owner=self.owner, until=self._clock() + self.lease
                    )
                except Exception:
                    log.exception("batch_lease_renewal_failed", batch_id=batch_id)
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

    async def recover(self, *, now: datetime | None = None) -> list[Batch]:
        """What a stopped process left: previews not confirmed within :data:`PREVIEW_TTL`
        and approvals past their expiry are expired, and an
        executing batch whose owner's lease ran out is carried on (each pending target read
        first: one already in its expected state counts, once read back). Safe in several
        processes: every step is a conditional update. ``now``: the clock's time."""
        now = now or self._clock()
        done: list[Batch] = []
        stale = await self._batches.stale_previews(now - PREVIEW_TTL)
        for batch_id in [*stale, *await self._batches.overdue_approvals(now)]:
            expired = await self._move(batch_id, to=BatchStatus.EXPIRED)
            if expired is not None:
                done.append(expired)
        for batch_id in await self._batches.stalled(now):
            taken = await self._batches.take_over(
                batch_id, owner=self.owner, now=now, until=now + self.lease
            )
            if taken is None:
                continue
            log.info("batch_taken_over", batch_id=batch_id)
            try:
                done.append(await self._carry_on(taken, None, resumed=True))
            except Exception:
                log.exception("batch_recovery_failed", batch_id=batch_id)
        for batch in done:
            if self.on_change is not None:
                try:
                    await self.on_change(batch)
                except Exception:
                    log.exception("batch_change_notify_failed", batch_id=batch.id)
        return done

    async def _run(
        self, batch: Batch, progress: ProgressHook | None, *, resumed: bool = False
    ) -> None:
        env = self._ops.environment(batch.environment)
        # targets in flight per lane: per provider, or per business unit of one
        limits: dict[int, asyncio.Semaphore] = {}
        counts = batch.progress()
        lock = asyncio.Lock()

        def limit_of(provider: Provider, key: str) -> asyncio.Semaphore:
            lane = lane_of(provider, key)
            return limits.setdefault(id(lane), asyncio.Semaphore(lane.traits.parallel_targets))

        async def one(target: BatchTarget) -> None:
            nonlocal counts
            provider = env.provider(target.kind)
            async with limit_of(provider, target.key):
                status = await self._one(batch, env, provider, target, resumed=resumed)
            async with lock:
                update: dict[str, int] = {"left": counts.left - 1}
                if status is TargetStatus.DONE:
                    update["done"] = counts.done + 1
                elif status is TargetStatus.FAILED:
                    update["failed"] = counts.failed + 1
                else:
                    update["skipped"] = counts.skipped + 1
                counts = counts.model_copy(update=update)
                seen = counts
            try:  # the card is stale (only what the store holds is shown: nothing is lost)
                await self._emit(batch, BatchProgressed(progress=seen))
            except Exception:
                log.exception("batch_progress_failed", batch_id=batch.id)
            if progress is not None:
                try:
                    await progress(batch, seen)
                except Exception:
                    log.exception("batch_progress_failed", batch_id=batch.id)

        pending = [t for t in batch.targets if t.act and t.status is TargetStatus.PENDING]
        await asyncio.gather(*(one(t) for t in pending))

    async def _one(
        self,
        batch: Batch,
        env: Environment,
        provider: Provider,
        target: BatchTarget,
        *,
        resumed: bool = False,
    ) -> TargetStatus:
        """Act on one target: read it, act, read back; transient failures are tried again
        (an action that took effect before its answer was lost counts once read back)."""
        verb = batch.verb
        busy = await self._batches.store.request_changing(env.name, target.kind, target.key)
        if busy is not None:  # a single request got there first: leave the target to it
            await self._batches.settle_target(
                batch.id,
                target.kind,
                target.key,
                status=TargetStatus.SKIPPED,
                skip_reason=Skip(code=SkipCode.BUSY, request_id=busy.id),
            )
            return TargetStatus.SKIPPED
        command = _command(verb, env.name, target, batch.options)
        expected = rules.expected_after(provider.traits, verb)
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self.retry_wait, max=30 * self.retry_wait),
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    before = await provider.get(target.key)
                    if (attempts > 1 or resumed) and before.state in expected:
                        # an earlier try (or a stopped process) acted before its answer
                        # was lost: the read-back shows it done
                        return await self._settle(batch, target, before, attempts)
                    why = skip_reason(provider.traits, verb, before, batch.options, self._clock())
                    if why is not None:
                        await self._batches.settle_target(
                            batch.id,
                            target.kind,
                            target.key,
                            status=TargetStatus.SKIPPED,
                            attempts=attempts,
                            skip_reason=why.model_copy(update={"changed": True}),
                            state_after=before.describe(),
                        )
                        return TargetStatus.SKIPPED
                    result = await self._ops.perform(command, before)
                    if not result.verified:
                        wanted = " or ".join(sorted(s.value for s in result.expected))
                        unverified = InvalidState(
                            f"the read-back shows {result.after.describe()}, not {wanted}",
                            current_state=result.after.describe(),
                        )
                        return await self._failed(
                            batch,
                            target,
                            attempts,
                            unverified,
                            state_after=result.after.describe(),
                        )
                    return await self._settle(batch, target, result.after, attempts)
        except BotError as exc:
            return await self._failed(batch, target, attempts, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _audit(
        self, batch: Batch, target: BatchTarget, action: str, **detail: str | int | None
    ) -> None:
        """One line in the target's history (``history`` shows bulk actions too)."""
        try:
            await self._batches.store.record(
                actor=batch.requested_by,
                action=action,
                via=batch.via,
                environment=batch.environment,
                kind=target.kind,
                target_key=target.key,
                detail={"batch": batch.id, "verb": batch.verb.value, **detail},
            )
        except Exception:
            log.exception("batch_audit_failed", batch_id=batch.id, key=target.key)

    async def _settle(
        self, batch: Batch, target: BatchTarget, after: TargetState, attempts: int
    ) -> TargetStatus:
        await self._audit(
            batch, target, "bulk_verified", before=target.state_before, after=after.describe()
        )
        await self._batches.settle_target(
            batch.id,
            target.kind,
            target.key,
            status=TargetStatus.DONE,
            attempts=attempts,
            state_after=after.describe(),
            holds_pause=batch.verb is Verb.PAUSE,
        )
        # no other batch puts it back any more (paused again, or put back by this one)
        await self._batches.release_holds(
            batch.environment, [(target.kind, target.key)], but=batch.id
        )
        return TargetStatus.DONE

    async def _failed(
        self,
        batch: Batch,
        target: BatchTarget,
        attempts: int,
        error: BotError,
        *,
        state_after: str | None = None,
    ) -> TargetStatus:
        """Record a target's failure as a request's is (:func:`failed_event`: the error's
        words and the provider's code)."""
        event = failed_event(error)
        code = event.provider_code
        log.info("batch_target_failed", batch_id=batch.id, key=target.key, code=code)
        await self._audit(
            batch, target, "bulk_failed", **failure_detail(event, error), tries=attempts
        )
        await self._batches.settle_target(
            batch.id,
            target.kind,
            target.key,
            status=TargetStatus.FAILED,
            attempts=attempts,
            error=event.message,
            error_code=code,
            state_after=state_after,
        )
        return TargetStatus.FAILED

    # -- the timed end ----------------------------------------------------------------

    def handlers(self) -> Mapping[JobKind, Callable[[Job], Awaitable[None]]]:
        return {JobKind.BATCH_END: self.end_job}

    async def end_job(self, job: Job) -> None:
        """A timed bulk pause is over: one batch puts back (or stops) every target the
        pause still holds, once."""
        batch = await self._batches.get(str(job.payload["batch_id"]))
        if batch is None or batch.options is None:
            return
        if not await self._batches.mark_ended(batch.id):
            return
        await self.end(batch)

    async def end(self, batch: Batch) -> Batch | None:
        """The end of ``batch``'s pause as a batch of its own (None: nothing held)."""
        assert batch.options is not None
        verb = Verb.STOP if batch.options.then is ThenAction.STOP else Verb.RESUME
        found = await self._resume_plan(batch)
        if verb is Verb.STOP:
            env = self._ops.environment(batch.environment)
            states = [
                s
                for s in await asyncio.gather(
                    *(
                        self._read(env.provider(t.kind), t.key)
                        for t in batch.targets
                        if t.holds_pause
                    )
                )
                if s is not None
            ]
            traits = {kind: p.traits for kind, p in env.providers.items()}
            found = plan(verb, batch.pattern, None, states, traits, self._clock())
        if not found.targets:
            return None
        ending = await self._record(
            found,
            actor="bot",
            via=Via.SCHEDULER,
            channel=batch.channel,
            source_batch_id=batch.id,
        )
        ended = await self.execute(ending.id)
        if self.on_end is not None:
            try:
                await self.on_end(ended, await self._require(batch.id))
            except Exception:
                log.exception("batch_end_notify_failed", batch_id=batch.id)
        return ended

    async def _require(self, batch_id: str) -> Batch:
        batch = await self._batches.get(batch_id)
        if batch is None:
            raise NotFound(f"No batch {batch_id!r}.")
        return batch


def _command(
    verb: Verb, environment: str, target: BatchTarget, options: PauseOptions | None
) -> MutatingCommand:
    ref = TargetRef(environment=environment, kind=target.kind, name=target.key)
    match verb:
        case Verb.PAUSE:
            return PauseCommand(target=ref, options=options or PauseOptions())
        case Verb.RESUME:
            return ResumeCommand(target=ref)
        case Verb.STOP:
            return StopCommand(target=ref)
    raise ValueError(f"not a bulk verb: {verb}")


# -- outcomes (what Commands.handle and the batch use cases return) ------------------------


@dataclass(frozen=True)
class BatchPreview:
    """A bulk command, resolved and recorded, not carried out: what it will do."""

    batch: Batch
    plan: BatchPlan
    production: bool
    #: Approvals it will need (production).
    required: int = 1


@dataclass(frozen=True)
class BatchStarted:
    """A confirmed batch not finished here: awaiting its approval, or executing."""

    batch: Batch
    #: Approvals it needs (when awaiting them).
    required: int = 1


@dataclass(frozen=True)
class BatchProgress:
    """Where an executing batch is (done / failed / left)."""

    batch: Batch
    progress: Progress


@dataclass(frozen=True)
class BatchDone:
    """A batch whose every target settled: each one's result (verified or failed)."""

    batch: Batch
