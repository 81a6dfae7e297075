"""The one use-case entry point: every front end parses, calls :meth:`Commands.handle`, and
renders the typed :data:`Outcome` it gets back.

Slack (``bot.slack.handlers``), the console (``bot.console``) and ``automation-bot exec``
(``bot.cli``) pick no service themselves: this module chooses between reading a target
(operations), the bot's records (the store) and a change (the requests service, which
records the request and its audit lines with ``via``, plans a timed pause's timers and asks
for a production approval). So one command gives the same records and the same outcome
whichever front end it came from; only the wording differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import BotConfig
from bot.domain.approvals import Decision
from bot.domain.bulk import Batch, BatchPlan, BatchStatus
from bot.domain.commands import (
    BulkCommand,
    Command,
    HelpCommand,
    HistoryCommand,
    ListCommand,
    OpenPauseModal,
    ResumeBatchCommand,
    StatusCommand,
)
from bot.domain.errors import AmbiguousTarget, BotError
from bot.domain.events import VoteRefused
from bot.domain.models import Target, TargetKind, TargetState, TargetSummary, Verb
from bot.domain.requests import (
    AuditEvent,
    OperationRequest,
    PauseRecord,
    RequestStatus,
    Via,
)
from bot.service.approvals import ApprovalService, VoteAnswer
from bot.service.bulk import (
    BatchDone,
    BatchPreview,
    BatchProgress,
    BatchStarted,
    BatchVote,
    BulkService,
    ProgressHook,
)
from bot.service.notify import CardRef
from bot.service.operations import MutatingCommand, OperationService
from bot.service.requests import RequestService
from bot.store.repository import Store

#: A paused target the bot watches, by (environment, kind, key).
Watched = Mapping[tuple[str, TargetKind, str], PauseRecord]


@dataclass(frozen=True)
class StatusOutcome:
    """``status``: the target as read from its provider just now."""

    state: TargetState


@dataclass(frozen=True)
class ListOutcome:
    """``list``: the targets of every environment (or the one named), and which of them
    the bot watches as paused (who paused them, until when)."""

    command: ListCommand
    states: tuple[TargetState, ...]
    at: datetime
    """When the list was read (the time left of each watched pause is counted from it)."""
    watched: Watched = field(default_factory=dict)

    @property
    def title(self) -> str:
        title = f"{self.command.scope.value.capitalize()} targets"
        return title + (f" matching '{self.command.filter}'" if self.command.filter else "")


@dataclass(frozen=True)
class HistoryOutcome:
    """``history``: the audit trail of one target, as the bot's database has it."""

    target: Target
    label: str
    events: tuple[AuditEvent, ...]


@dataclass(frozen=True)
class SubmittedRequest:
    """A change, as recorded: carried out and read back (succeeded, failed, unverified),
    or awaiting approval on production. ``events`` are its audit lines so far and ``card``
    where its card was posted (None: nowhere to post it)."""

    request: OperationRequest
    events: tuple[AuditEvent, ...]
    card: CardRef | None
    #: What the provider calls itself when it ends a timed pause by itself (Journey
    #: Builder); None: the bot carries out the end.
    ends_natively: str | None = None


@dataclass(frozen=True)
class HelpOutcome:
    """``help [verb]``."""

    topic: Verb | None


@dataclass(frozen=True)
class PickTarget:
    """A bare name matched several targets: the front end lets the user pick one and runs
    ``command`` again for it."""

    command: Command
    error: AmbiguousTarget

    @property
    def matches(self) -> list[TargetSummary]:
        return self.error.matches


@dataclass(frozen=True)
class FormNeeded:
    """``pause`` without a target: the pause form (a Slack modal)."""

    command: OpenPauseModal


@dataclass(frozen=True)
class Reacted:
    """A reaction on a card (a request's or a batch's) taken as a vote."""

    counted: bool
    #: Why it did not count, for the person who reacted alone (None: nothing to tell them
    #: privately; a non-approver's reaction is noted once in the card's thread instead).
    tell: VoteRefused | None = None


Outcome = (
    StatusOutcome
    | ListOutcome
    | HistoryOutcome
    | SubmittedRequest
    | HelpOutcome
    | PickTarget
    | FormNeeded
    | BatchPreview
    | BatchStarted
    | BatchProgress
    | BatchDone
)


class Commands:
    """The use cases behind every front end."""

    def __init__(
        self,
        *,
        config: BotConfig,
        operations: OperationService,
        requests: RequestService,
        approvals: ApprovalService,
        store: Store,
        bulk: BulkService | None = None,
    ) -> None:
        self._config = config
        self._bulk = bulk
        self._ops = operations
        self._requests = requests
        self._approvals = approvals
        self._store = store

    async def handle(
        self, command: Command, *, actor: str, via: Via, channel: str | None
    ) -> Outcome:
        """Carry out ``command`` for ``actor`` (who asked, from which front end, and the
        channel a change's card goes to: None posts it to the environment's approval
        channel on production, or nowhere). A refusal raises a :class:`BotError` that
        carries the command's verb and target."""
        try:
            return await self._handle(command, actor=actor, via=via, channel=channel)
        except AmbiguousTarget as exc:
            return PickTarget(command=command, error=exc)
        except BotError as exc:
            target = getattr(command, "target", None)
            if isinstance(command, BulkCommand):
                exc.in_context(verb=command.action.value, target=command.pattern.label())
            elif isinstance(command, ResumeBatchCommand):
                exc.in_context(verb="resume", target=f"batch {command.batch_id}")
            exc.in_context(
                verb=str(command.verb), target=target.label() if target is not None else None
            )
            raise  # as raised, its cause kept for the log

    async def _handle(
        self, command: Command, *, actor: str, via: Via, channel: str | None
    ) -> Outcome:
        match command:
            case HelpCommand(topic=topic):
                return HelpOutcome(topic=topic)
            case OpenPauseModal():
                return FormNeeded(command=command)
            case StatusCommand(target=ref):
                return StatusOutcome(state=await self._ops.status(ref))
            case ListCommand():
                states = await self._list(command)
                watched = {
                    (p.environment, p.kind, p.key): p for p in await self._store.active_pauses()
                }
                return ListOutcome(
                    command=command, states=tuple(states), at=self._store.now(), watched=watched
                )
            case HistoryCommand(target=ref):
                t = (await self._ops.resolve(ref)).target
                events = await self._store.history(
                    environment=t.environment, kind=t.kind, target_key=t.key
                )
                return HistoryOutcome(target=t, label=t.label(), events=tuple(events))
            case BulkCommand():
                batch, plan = await self._bulk_service().preview(
                    command, actor=actor, via=via, channel=channel
                )
                return self._preview(batch, plan)
            case ResumeBatchCommand(batch_id=batch_id):
                batch, plan = await self._bulk_service().preview_resume(
                    batch_id, actor=actor, via=via, channel=channel
                )
                return self._preview(batch, plan)
            case _ if isinstance(command, MutatingCommand):
                return await self._submit(command, actor=actor, via=via, channel=channel)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    async def _submit(
        self, command: MutatingCommand, *, actor: str, via: Via, channel: str | None
    ) -> SubmittedRequest:
        """A change: recorded, then carried out and read back, or on production put to
        its approvers (the requests service keeps every recording rule)."""
        request = await self._requests.submit(command, requester=actor, via=via, channel=channel)
        events = await self._store.request_events(request.id)
        card = (
            CardRef(channel=request.channel, ts=request.card_ts)
            if request.channel and request.card_ts
            else None
        )
        spec = request.spec
        traits = self._ops.environment(spec.environment).provider(spec.kind).traits
        return SubmittedRequest(
            request=request,
            events=tuple(events),
            card=card,
            ends_natively=traits.product if traits.ends_pause_natively else None,
        )

    async def vote(
        self, *, request_id: str, voter: str, decision: Decision, via: Via
    ) -> VoteAnswer:
        """Approve or deny a production request (Slack's buttons, the console's
        ``approve``/``deny``): the approvals service decides whether it counts."""
        return await self._approvals.vote(
            request_id=request_id, voter=voter, decision=decision, via=via
        )

    async def react(
        self, *, channel: str, card_ts: str, user: str, reaction: str
    ) -> Reacted | None:
        """A reaction added to a message: a vote when the message is a request's or a
        batch's card awaiting approval and the emoji is its policy's approve or deny (None:
        neither). The requester reacting on their own card is told privately why it does
        not count."""
        answer = await self._approvals.vote_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction
        )
        if answer is not None:
            request = answer.request
            own = (
                request is not None
                and request.requested_by == user
                and request.status is RequestStatus.AWAITING_APPROVAL
            )
            return Reacted(answer.counted, _private(answer.refused, own=own))
        if self._bulk is None:
            return None
        voted = await self._bulk.vote_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction
        )
        if voted is None:
            return None
        batch = voted.batch
        own = batch.requested_by == user and batch.status is BatchStatus.AWAITING_APPROVAL
        return Reacted(voted.counted, _private(voted.refused, own=own))

    async def unreact(self, *, channel: str, card_ts: str, user: str, reaction: str) -> bool:
        """A reaction removed from a card before its decision: the vote it cast withdrawn
        (False: it cast none, or the card is not awaiting approval)."""
        if await self._approvals.withdraw_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction
        ):
            return True
        if self._bulk is None:
            return False
        withdrawn = await self._bulk.withdraw_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction
        )
        return withdrawn is not None

    # -- bulk requests: preview (through handle), then confirm, vote or cancel -------------

    def _bulk_service(self) -> BulkService:
        if self._bulk is None:
            raise BotError("Bulk requests are not available here.")
        return self._bulk

    def _preview(self, batch: Batch, plan: BatchPlan) -> BatchPreview:
        env = self._ops.environment(batch.environment)
        required = self._bulk_service().required_approvals(env.name)
        return BatchPreview(batch=batch, plan=plan, production=env.production, required=required)

    async def confirm_batch(
        self, batch_id: str, *, actor: str, via: Via, progress: ProgressHook | None = None
    ) -> BatchStarted | BatchDone:
        """The requester confirms a previewed batch: done here (``BatchDone``), or waiting
        for its approval on production (``BatchStarted``)."""
        batch = await self._bulk_service().confirm(
            batch_id, actor=actor, via=via, progress=progress
        )
        if batch.status is BatchStatus.DONE:
            return BatchDone(batch=batch)
        return BatchStarted(batch, self._bulk_service().required_approvals(batch.environment))

    async def cancel_batch(self, batch_id: str, *, actor: str) -> Batch:
        return await self._bulk_service().cancel(batch_id, actor=actor)

    async def vote_batch(
        self,
        *,
        batch_id: str,
        voter: str,
        decision: Decision,
        via: Via,
        progress: ProgressHook | None = None,
    ) -> BatchVote:
        """Approve or deny a production batch (one approval covers its frozen set)."""
        return await self._bulk_service().vote(
            batch_id=batch_id, voter=voter, decision=decision, via=via, progress=progress
        )

    async def _list(self, command: ListCommand) -> Sequence[TargetState]:
        """Every configured environment (the default first) unless the command names one;
        an environment without the asked kind is skipped."""
        if command.environment is not None:
            return await self._ops.list_targets(command)
        default = self._config.default_environment
        names = sorted(self._config.environments, key=lambda n: (n != default, n))
        states: list[TargetState] = []
        for name in names:
            if (
                command.kind is not None
                and command.kind not in self._ops.environment(name).providers
            ):
                continue
            states.extend(
                await self._ops.list_targets(command.model_copy(update={"environment": name}))
            )
        return states


def _private(refused: VoteRefused | None, *, own: bool) -> VoteRefused | None:
    """What a refused reaction's author alone should hear: only on their own card while
    it awaits approval, and not that they are no approver (the thread notes that once)."""
    if refused is None or not own or refused.why == "not_an_approver":
        return None
    return refused
