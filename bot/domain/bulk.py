"""Bulk (emergency) requests: one command, many targets, one approval (pure, no I/O).

A bulk target is a pattern, ``<env>/<kind>:<glob>`` or ``<env>/*:<glob>`` (every kind),
whose ``*`` (any run of characters) and ``?`` (one character) match a target's name or key
the way names match elsewhere (:func:`bot.domain.names.normalize`: case, width and runs of
spaces, hyphens and underscores folded), so ``bf25-*`` matches ``BF25 Flash Sale`` and the
key ``bf25_flash``.

:func:`plan` turns the targets a pattern matched (their states as read just now) into a
:class:`BatchPlan`: per target whether it will be acted on or skipped and why (already
paused, not pausable...: the rules read each provider's declared traits), the counts per
kind, the provider calls it will take, and a :attr:`BatchPlan.digest` of the frozen set: a
confirmation or an approval binds to that digest, so a set that changed is a new request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain import rules
from bot.domain.approvals import Vote
from bot.domain.errors import InvalidState, Unsupported
from bot.domain.models import (
    NormalState,
    PauseOptions,
    TargetKind,
    TargetState,
    ThenAction,
    Verb,
    VersionSelector,
    target_label,
)
from bot.domain.names import normalize
from bot.domain.requests import Via
from bot.domain.traits import ProviderTraits

__all__ = [
    "Batch",
    "BatchChanged",
    "BatchEnded",
    "BatchEvent",
    "BatchPlan",
    "BatchPreviewed",
    "BatchProgressed",
    "BatchStatus",
    "BatchTarget",
    "BulkPattern",
    "Counts",
    "PlanSummary",
    "PlannedTarget",
    "Skip",
    "SkipCode",
    "TargetStatus",
    "has_wildcards",
    "plan",
]

_WILDCARDS_RE = re.compile(r"[*?]")


def has_wildcards(text: str) -> bool:
    """Whether ``text`` holds a ``*`` or ``?`` (a bulk pattern, not one name)."""
    return _WILDCARDS_RE.search(text) is not None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BulkPattern(_Frozen):
    """``<env>/<kind>:<glob>``; ``kind`` None is ``<env>/*:<glob>`` (every kind)."""

    environment: str = Field(min_length=1)
    kind: TargetKind | None = None
    glob: str = Field(min_length=1)

    def label(self) -> str:
        kind = self.kind.value if self.kind is not None else "*"
        return f"{self.environment}/{kind}:{self.glob}"

    def _compiled(self) -> str:
        # '[' is literal: only '*' and '?' are wildcards (fnmatch would read '[...]' as a set)
        return normalize(self.glob).replace("[", "[[]")

    def matches(self, kind: TargetKind, key: str, name: str) -> bool:
        """Whether a target of ``kind`` named ``name`` (key ``key``) is in the pattern."""
        if self.kind is not None and kind is not self.kind:
            return False
        wanted = self._compiled()
        return fnmatchcase(normalize(name), wanted) or fnmatchcase(normalize(key), wanted)


class SkipCode(StrEnum):
    """Why a batch leaves a target alone (worded by the front ends, like ``VoteRefused``)."""

    UNSUPPORTED = "unsupported"  # the provider cannot do the verb (``detail``: its words)
    NO_STOP_AT_END = "no_stop_at_end"  # 'then stop' where the pause cannot end with a stop
    PAUSE_TOO_LONG = "pause_too_long"  # longer than the provider's longest pause
    ALREADY_PAUSED = "already_paused"
    ALREADY_STOPPED = "already_stopped"
    NOT_PAUSED = "not_paused"  # resume of something not paused (``state``)
    WRONG_STATE = "wrong_state"  # the verb is not allowed from ``state``
    BUSY = "busy"  # a single request is changing it (``request_id``)


class Skip(_Frozen):
    """Why a target is skipped: a code and what its wording needs (no sentence)."""

    code: SkipCode
    verb: Verb | None = None
    product: str | None = None
    noun: str | None = None
    days: int | None = None
    state: str | None = None
    request_id: str | None = None
    #: The provider's own words (``UNSUPPORTED``), when it declares some.
    detail: str | None = None
    #: Found at execution: the target changed since the preview.
    changed: bool = False


class PlannedTarget(_Frozen):
    """One matched target: its state now, and whether the batch acts on it."""

    kind: TargetKind
    key: str
    name: str
    target_id: str
    version: int | None = None
    state: NormalState
    raw_status: str
    described: str = Field(description="the state as the provider says it, for people")
    act: bool
    skip_reason: Skip | None = None

    def label(self, environment: str) -> str:
        return target_label(environment, self.kind, self.key, self.name)


class Counts(_Frozen):
    """How many targets of one kind the batch acts on and skips."""

    act: int = 0
    skip: int = 0


class PlanSummary(_Frozen):
    """What a preview card shows of its plan: targets per kind and provider calls."""

    counts: dict[TargetKind, Counts] = Field(default_factory=dict)
    provider_calls: dict[TargetKind, int] = Field(default_factory=dict)


class BatchPlan(_Frozen):
    """What a bulk request will do, before it does anything (the preview)."""

    verb: Verb
    pattern: BulkPattern
    options: PauseOptions | None = None
    targets: tuple[PlannedTarget, ...]
    #: Provider calls each acted-on target takes at least (a read, the action, a read-back).
    calls_per_target: int = 3

    @property
    def environment(self) -> str:
        return self.pattern.environment

    @property
    def acting(self) -> tuple[PlannedTarget, ...]:
        return tuple(t for t in self.targets if t.act)

    @property
    def skipped(self) -> tuple[PlannedTarget, ...]:
        return tuple(t for t in self.targets if not t.act)

    @property
    def counts(self) -> dict[TargetKind, Counts]:
        out: dict[TargetKind, Counts] = {}
        for t in self.targets:
            c = out.get(t.kind, Counts())
            out[t.kind] = (
                c.model_copy(update={"act": c.act + 1})
                if t.act
                else c.model_copy(update={"skip": c.skip + 1})
            )
        return out

    def summary(self) -> PlanSummary:
        return PlanSummary(counts=self.counts, provider_calls=self.provider_calls)

    @property
    def provider_calls(self) -> dict[TargetKind, int]:
        """Provider calls per kind, at least: a read, the action and a read-back per
        target."""
        return {k: c.act * self.calls_per_target for k, c in self.counts.items() if c.act}

    @property
    def digest(self) -> str:
        """A stable hash of the verb, the options and the frozen set (which target is
        acted on, which skipped)."""
        return digest_of(
            self.verb,
            self.pattern,
            self.options,
            ((t.kind, t.key, t.version, t.act) for t in self.targets),
        )

    def describe(self) -> str:
        """One line: ``pause prod/automation:bf25-* for 2d, then resume``."""
        words = [self.verb.value, self.pattern.label()]
        o = self.options
        if o is not None:
            if o.duration is not None:
                from bot.domain.requests import format_timedelta

                words.append(f"for {format_timedelta(o.duration)}")
            elif o.until is not None:
                words.append(f"until {o.until.strftime('%Y-%m-%d %H:%M %Z').strip()}")
            if o.timed:
                words.append(f"then {o.then.value}")
        return " ".join(words)


def digest_of(
    verb: Verb,
    pattern: BulkPattern,
    options: PauseOptions | None,
    targets: Iterable[tuple[TargetKind, str, int | None, bool]],
) -> str:
    frozen = {
        "verb": verb.value,
        "pattern": pattern.label(),
        "options": None if options is None else options.model_dump(mode="json"),
        "targets": sorted([k.value, key, v, act] for k, key, v, act in targets),
    }
    return hashlib.sha256(json.dumps(frozen, sort_keys=True).encode()).hexdigest()


def skip_reason(
    traits: ProviderTraits,
    verb: Verb,
    state: TargetState,
    options: PauseOptions | None,
    now: datetime,
) -> Skip | None:
    """Why the batch leaves ``state`` alone (None: it acts on it), read from the traits."""
    product = traits.product
    if not traits.supports(verb):
        why = traits.unsupported.get(verb)
        detail = why.rstrip(".") if why else None
        return Skip(code=SkipCode.UNSUPPORTED, verb=verb, product=product, detail=detail)
    if verb is Verb.PAUSE and options is not None:
        if options.then is ThenAction.STOP and not traits.ends_pause_natively:
            return Skip(code=SkipCode.NO_STOP_AT_END, product=product)
        too_long = rules.pause_too_long(traits, options, now)
        if too_long is not None:
            return Skip(
                code=SkipCode.PAUSE_TOO_LONG,
                product=product,
                noun=traits.noun,
                days=traits.max_pause_days,
            )
    try:
        rules.check_allowed(traits, verb, state, VersionSelector())
    except (InvalidState, Unsupported):
        already = {
            (Verb.PAUSE, NormalState.PAUSED): SkipCode.ALREADY_PAUSED,
            (Verb.STOP, NormalState.STOPPED): SkipCode.ALREADY_STOPPED,
        }.get((verb, state.state))
        if already is not None:
            return Skip(code=already)
        if verb is Verb.RESUME and state.state is not NormalState.PAUSED:
            return Skip(code=SkipCode.NOT_PAUSED, state=state.describe())
        return Skip(code=SkipCode.WRONG_STATE, verb=verb, state=state.describe())
    return None


def plan(
    verb: Verb,
    pattern: BulkPattern,
    options: PauseOptions | None,
    states: Iterable[TargetState],
    traits: Mapping[TargetKind, ProviderTraits],
    now: datetime,
) -> BatchPlan:
    """The preview of a bulk ``verb`` over the ``states`` the pattern matches (the others
    are left out); kinds without traits (no provider) are left out too."""
    targets: list[PlannedTarget] = []
    seen: set[tuple[TargetKind, str]] = set()
    for state in states:
        t = state.target
        kind_traits = traits.get(t.kind)
        if kind_traits is None or not pattern.matches(t.kind, t.key, t.name):
            continue
        if (t.kind, t.key) in seen:
            continue
        seen.add((t.kind, t.key))
        why = skip_reason(kind_traits, verb, state, options, now)
        targets.append(
            PlannedTarget(
                kind=t.kind,
                key=t.key,
                name=t.name,
                target_id=t.id,
                version=t.version,
                state=state.state,
                raw_status=state.raw_status,
                described=state.describe(),
                act=why is None,
                skip_reason=why,
            )
        )
    targets.sort(key=lambda p: (p.kind.value, normalize(p.name), p.key))
    return BatchPlan(verb=verb, pattern=pattern, options=options, targets=tuple(targets))


# -- a batch as recorded -----------------------------------------------------------------


class BatchStatus(StrEnum):
    PREVIEWED = "previewed"  # shown, waiting for the requester's confirmation
    AWAITING_APPROVAL = "awaiting_approval"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the requester cancelled, or the set changed before confirming
    EXECUTING = "executing"
    DONE = "done"  # every target settled (some may have failed: see the targets)


#: status -> statuses it may move to; every write is a conditional transition.
BATCH_TRANSITIONS: Mapping[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.PREVIEWED: frozenset(
        {
            BatchStatus.AWAITING_APPROVAL,
            BatchStatus.EXECUTING,
            BatchStatus.CANCELLED,
            BatchStatus.EXPIRED,  # a preview nobody confirmed in time
        }
    ),
    BatchStatus.AWAITING_APPROVAL: frozenset(
        {BatchStatus.EXECUTING, BatchStatus.DENIED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
    ),
    BatchStatus.EXECUTING: frozenset({BatchStatus.DONE}),
}


class TargetStatus(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"
    DONE = "done"  # acted on and verified by a read-back
    FAILED = "failed"  # the provider refused (after retries), or the read-back disagreed


class BatchTarget(_Frozen):
    """One target of a recorded batch and what happened to it."""

    position: int
    kind: TargetKind
    key: str
    name: str
    target_id: str
    version: int | None = None
    state_before: str
    act: bool
    #: Why it is skipped; a sentence in batches recorded before reasons were codes.
    skip_reason: Skip | str | None = None
    status: TargetStatus = TargetStatus.PENDING
    attempts: int = 0
    error: str | None = None
    error_code: str | None = None
    state_after: str | None = None
    #: Paused by this batch and not put back since (what ``resume batch`` puts back).
    holds_pause: bool = False

    def label(self, environment: str) -> str:
        return target_label(environment, self.kind, self.key, self.name)


class Batch(_Frozen):
    """A bulk request as recorded, with its frozen set of targets."""

    id: str
    verb: Verb
    pattern: BulkPattern
    options: PauseOptions | None = None
    digest: str
    status: BatchStatus
    requested_by: str
    via: Via
    channel: str | None = None
    card_ts: str | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    ends_at: datetime | None = Field(default=None, description="a timed bulk pause's end")
    ended_at: datetime | None = Field(default=None, description="when its timed end ran")
    source_batch_id: str | None = Field(
        default=None, description="the batch whose pauses this one puts back"
    )
    votes: tuple[Vote, ...] = ()
    targets: tuple[BatchTarget, ...] = ()

    @property
    def environment(self) -> str:
        return self.pattern.environment

    @property
    def acting(self) -> tuple[BatchTarget, ...]:
        return tuple(t for t in self.targets if t.act)

    def progress(self) -> Progress:
        acting = self.acting
        done = sum(1 for t in acting if t.status is TargetStatus.DONE)
        failed = sum(1 for t in acting if t.status is TargetStatus.FAILED)
        skipped = sum(1 for t in self.targets if t.status is TargetStatus.SKIPPED)
        left = sum(1 for t in acting if t.status is TargetStatus.PENDING)
        return Progress(done=done, failed=failed, left=left, skipped=skipped)

    def describe(self) -> str:
        if self.source_batch_id is not None:
            return f"resume batch {self.source_batch_id} ({self.pattern.label()})"
        return BatchPlan(
            verb=self.verb, pattern=self.pattern, options=self.options, targets=()
        ).describe()


class Progress(_Frozen):
    """Where a batch is: targets done (verified), failed, left; skipped ones apart."""

    done: int = 0
    failed: int = 0
    left: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed + self.left


def frozen_targets(plan_: BatchPlan) -> list[BatchTarget]:
    """A plan's targets as a batch records them (skipped ones already settled)."""
    return [
        BatchTarget(
            position=i,
            kind=t.kind,
            key=t.key,
            name=t.name,
            target_id=t.target_id,
            version=t.version,
            state_before=t.described,
            act=t.act,
            skip_reason=t.skip_reason,
            status=TargetStatus.PENDING if t.act else TargetStatus.SKIPPED,
        )
        for i, t in enumerate(plan_.targets)
    ]


# -- what happens to a batch (the service emits these; front ends word them) --------------


class BatchPreviewed(_Frozen):
    """A batch was recorded as a preview: its card is to be shown."""

    kind: Literal["previewed"] = "previewed"
    plan: PlanSummary = Field(default_factory=PlanSummary)


class BatchChanged(_Frozen):
    """The batch moved on (status, votes, holds): its card is stale."""

    kind: Literal["changed"] = "changed"
    status: BatchStatus


class BatchProgressed(_Frozen):
    """A target of the executing batch settled: its card is stale (may be coalesced)."""

    kind: Literal["progressed"] = "progressed"
    progress: Progress


class BatchEnded(_Frozen):
    """The timed pause of the batch ended: ``ending`` put back (or stopped) its targets."""

    kind: Literal["ended"] = "ended"
    ending: Batch


class BatchReactionIgnored(_Frozen):
    """Someone who may not approve the batch reacted on its card with an approval emoji
    (said once per person per batch, in the card's thread)."""

    kind: Literal["reaction_ignored"] = "reaction_ignored"
    actor: str


BatchEvent = BatchPreviewed | BatchChanged | BatchProgressed | BatchEnded | BatchReactionIgnored
