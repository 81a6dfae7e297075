"""Production approvals: votes by button or reaction, quorum, deny, expiry, execution.

Every vote is checked at the moment it is cast (approver set, self-approval), recorded once
per person, and the request moves on only through conditional transitions, so two
approvers clicking at once, Slack retries and several bot processes still lead to exactly
one execution.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from bot.domain.approvals import (
    ApprovalPolicy,
    Decision,
    Outcome,
    reaction_decision,
    refusal,
    tally,
)
from bot.domain.errors import BadInput, BotError
from bot.domain.events import Decided, ReactionIgnored, RefusedWhy, VoteCast, VoteRefused
from bot.domain.jobs import Job, JobKind
from bot.domain.requests import OperationRequest, RequestStatus, Via
from bot.faults import CrashPoint, crash_point
from bot.service.directory import Directory
from bot.service.requests import RequestService, command_for
from bot.store.repository import Store

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VoteAnswer:
    """What happened to a vote; ``refused`` (why it did not count) is for the voter alone."""

    counted: bool
    refused: VoteRefused | None
    request: OperationRequest | None


class ApprovalService:
    def __init__(
        self,
        *,
        store: Store,
        requests: RequestService,
        policies: Callable[[str], ApprovalPolicy | None],
        directory: Directory,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._requests = requests
        self._policies = policies
        self._directory = directory
        self._clock = clock

    # -- votes ----------------------------------------------------------------------------

    async def vote(
        self, *, request_id: str, voter: str, decision: Decision, via: Via
    ) -> VoteAnswer:
        """A vote from a button (or a reaction already matched to its request)."""
        said = "approve" if decision is Decision.APPROVE else "deny"
        request = await self._store.get_request(request_id)
        if request is None:
            return VoteAnswer(False, VoteRefused(why="unknown_request", decision=said), None)
        environment = request.spec.environment

        def refused(why: RefusedWhy, status: RequestStatus | None = None) -> VoteRefused:
            return VoteRefused(
                why=why,
                decision=said,
                environment=environment,
                status=None if status is None else status.value,
            )

        policy = self._policies(environment)
        if policy is None:
            return VoteAnswer(False, refused("no_approval_needed"), request)
        if request.status is not RequestStatus.AWAITING_APPROVAL:
            return VoteAnswer(False, refused("already_decided", request.status), request)
        if request.expires_at is not None and self._clock() >= request.expires_at:
            expired = await self._expire(request) or request
            return VoteAnswer(False, refused("already_decided", expired.status), expired)

        is_approver = await self._is_approver(policy, voter)
        why_not = refusal(
            policy,
            voter=voter,
            requester=request.requested_by,
            is_approver=is_approver,
            decision=decision,
        )
        if why_not is not None:
            await self._store.record(
                actor=voter,
                action="vote_refused",
                via=via,
                request_id=request.id,
                detail={"decision": decision.value, "why": why_not},
            )
            if via is Via.REACTION and not is_approver:
                await self._note_once(request, voter)
            return VoteAnswer(False, refused(why_not), request)

        _, changed = await self._store.cast_vote(
            request.id, voter=voter, decision=decision, via=via
        )
        if not changed:
            return VoteAnswer(False, refused("already_counted"), request)
        crash_point(CrashPoint.AFTER_VOTE)
        current = await self._store.get_request(request.id)
        if current is not None and current.status is not RequestStatus.AWAITING_APPROVAL:
            # another vote (or the expiry) decided it between our check and our vote
            return VoteAnswer(False, refused("already_decided", current.status), current)
        async with self._store.atomic():
            await self._store.record(
                actor=voter, action=f"{decision.value}d", via=via, request_id=request.id
            )
            votes = await self._store.votes(request.id)
            result = tally(policy, votes)
            await self._requests.publish(
                request,
                VoteCast(
                    actor=voter,
                    decision=said,
                    done=len(result.approvals),
                    total=policy.required,
                ),
            )
        # after the commit: the card of a request awaiting approval names who may approve
        # (a directory lookup, not to be made inside a transaction); its decision's edit,
        # which shows the final state, is written with the decision
        await self._requests.show(request)
        match result.outcome:
            case Outcome.DENIED:
                await self._decide(request, RequestStatus.DENIED, actor=voter, via=via)
            case Outcome.APPROVED:
                await self._approve(request, actor=voter, via=via)
            case Outcome.PENDING:
                pass
        return VoteAnswer(True, None, await self._store.get_request(request.id))

    async def vote_by_reaction(
        self, *, channel: str, card_ts: str, voter: str, reaction: str
    ) -> VoteAnswer | None:
        """A reaction on a card; None when it is not a card or not an approval emoji."""
        request = await self._store.find_by_card(channel=channel, card_ts=card_ts)
        if request is None:
            return None
        policy = self._policies(request.spec.environment)
        decision = reaction_decision(policy, reaction)
        if policy is None or decision is None:
            return None
        return await self.vote(
            request_id=request.id, voter=voter, decision=decision, via=Via.REACTION
        )

    async def withdraw_by_reaction(
        self, *, channel: str, card_ts: str, voter: str, reaction: str
    ) -> bool:
        """Removing an approval (or deny) reaction before the decision withdraws that vote."""
        request = await self._store.find_by_card(channel=channel, card_ts=card_ts)
        if request is None or request.status is not RequestStatus.AWAITING_APPROVAL:
            return False
        policy = self._policies(request.spec.environment)
        decision = reaction_decision(policy, reaction)
        if policy is None or decision is None:
            return False
        async with self._store.atomic():
            if not await self._store.withdraw_vote(request.id, voter=voter, decision=decision):
                return False
            await self._store.record(
                actor=voter,
                action="withdrew",
                via=Via.REACTION,
                request_id=request.id,
                detail={"decision": decision.value},
            )
            votes = await self._store.votes(request.id)
            await self._requests.publish(
                request,
                VoteCast(
                    actor=voter,
                    decision="withdraw-approve"
                    if decision is Decision.APPROVE
                    else "withdraw-deny",
                    done=len(tally(policy, votes).approvals),
                    total=policy.required,
                ),
            )
        await self._requests.show(request)  # after the commit (see vote)
        return True

    # -- decisions ------------------------------------------------------------------------

    async def _approve(self, request: OperationRequest, *, actor: str, via: Via) -> None:
        async with self._store.atomic():
            approved = await self._store.transition(request.id, to=RequestStatus.APPROVED)
            if approved is None:
                return  # another approver's vote (or process) got there first
            await self._store.record(actor=actor, action="approved", via=via, request_id=request.id)
            await self._requests.publish(approved, Decided(actor=actor, decision="approved"))
        await self._requests.execute(approved.id, actor=actor, via=via)

    async def _decide(
        self, request: OperationRequest, status: RequestStatus, *, actor: str, via: Via
    ) -> OperationRequest | None:
        async with self._store.atomic():
            decided = await self._store.transition(request.id, to=status)
            if decided is None:
                return None
            await self._store.record(
                actor=actor, action=status.value, via=via, request_id=request.id
            )
            await self._requests.publish(
                decided,
                Decided(
                    actor=actor,
                    decision="denied" if status is RequestStatus.DENIED else "expired",
                ),
            )
            await self._requests.show(decided)
        return decided

    async def _expire(self, request: OperationRequest) -> OperationRequest | None:
        return await self._decide(request, RequestStatus.EXPIRED, actor="bot", via=Via.SCHEDULER)

    def handlers(self) -> Mapping[JobKind, Callable[[Job], Awaitable[None]]]:
        """The scheduler's jobs for approvals: each pending approval's expiry (written with
        the request, :meth:`bot.store.repository.Store.create_request`)."""
        return {JobKind.APPROVAL_EXPIRY: self.expire_job}

    async def expire_job(self, job: Job) -> None:
        """A pending approval's time is up: expire it, once (an approval or a denial that
        landed first wins; an expiry that moved later is scheduled again)."""
        request = await self._store.get_request(str(job.payload["request_id"]))
        if request is None or request.status is not RequestStatus.AWAITING_APPROVAL:
            return
        if request.expires_at is not None and request.expires_at > self._clock():
            await self._store.schedule(
                kind=JobKind.APPROVAL_EXPIRY,
                key=job.key,
                due_at=request.expires_at,
                payload=job.payload,
            )
            return
        await self._expire(request)

    async def expire_due(self) -> list[OperationRequest]:
        """End every pending approval whose time is up (safe to run in several processes)."""
        expired = []
        for request in await self._store.due_expiries(self._clock()):
            done = await self._expire(request)
            if done is not None:
                expired.append(done)
        return expired

    async def recover(self) -> list[OperationRequest]:
        """Act on votes a stopped process recorded but did not act on: every request
        awaiting approval whose active votes already decide it (approved: executed once;
        denied: closed) and whose last vote is older than the execution lease (a younger
        one may be in the hands of the live process that took it). The conditional
        transitions keep each decision, and each execution, once across replicas."""
        decided: list[OperationRequest] = []
        now = self._clock()
        for request in await self._store.awaiting_approval():
            policy = self._policies(request.spec.environment)
            if policy is None:
                continue
            if request.expires_at is not None and now >= request.expires_at:
                continue  # its expiry job ends it
            try:
                votes = await self._store.votes(request.id)
                if not votes or max(v.at for v in votes) > now - self._requests.lease:
                    continue
                result = tally(policy, votes)
                last = votes[-1]
                match result.outcome:
                    case Outcome.APPROVED:
                        log.info("approval_recovered", request_id=request.id)
                        await self._approve(request, actor=last.voter, via=Via.SYSTEM)
                    case Outcome.DENIED:
                        await self._decide(
                            request, RequestStatus.DENIED, actor=last.voter, via=Via.SYSTEM
                        )
                    case Outcome.PENDING:
                        continue
            except Exception:
                log.exception("approval_recovery_failed", request_id=request.id)
                continue
            current = await self._store.get_request(request.id)
            if current is not None:
                decided.append(current)
        return decided

    async def request_again(self, *, request_id: str, requester: str, via: Via) -> OperationRequest:
        """A new request with exactly the same parameters (after expiry or denial)."""
        old = await self._store.get_request(request_id)
        if old is None:
            raise BadInput("That request is no longer known to the bot.")
        if not old.terminal:
            raise BadInput("That request is still open; it cannot be asked again yet.")
        return await self._requests.submit(
            command_for(old.spec), requester=requester, via=via, channel=old.channel
        )

    # -- helpers --------------------------------------------------------------------------

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

    async def _note_once(self, request: OperationRequest, voter: str) -> None:
        """A non-approver's reaction is ignored, and said so once per person per request."""
        async with self._store.atomic():
            if await self._store.claim_event(f"ignored-reaction:{request.id}:{voter}"):
                await self._requests.publish(
                    request, ReactionIgnored(actor=voter, environment=request.spec.environment)
                )
