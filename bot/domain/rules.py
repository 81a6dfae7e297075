"""Which verb is allowed from which state, and what a verified result looks like.

Pure rules over the traits each provider adapter declares (:class:`ProviderTraits`: the
states and verbs of a kind, versions, the longest pause); no rule tests which kind a
target is, so a new kind of provider needs no change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.errors import InvalidState, Unsupported
from bot.domain.models import (
    NormalState,
    PauseOptions,
    TargetKind,
    TargetState,
    Verb,
    VersionSelector,
)
from bot.domain.traits import ProviderTraits

S = NormalState

_HINTS: Mapping[tuple[Verb, NormalState], str] = {
    (
        Verb.RUN,
        S.PAUSED,
    ): "a paused automation must be resumed, running it once does not unpause it",
    (Verb.PAUSE, S.PAUSED): "it is already paused",
    (Verb.RESUME, S.ACTIVE): "it is not paused",
    (Verb.RESUME, S.RUNNING): "it is not paused",
    (Verb.PAUSE, S.RUNNING): "a run is in progress; try again when it has finished",
    (Verb.RUN, S.RUNNING): "a run is already in progress",
    (Verb.STOP, S.STOPPED): "it is already stopped",
    (Verb.STOP, S.PAUSED): "it is paused; resume it first or leave it paused",
    (Verb.STOP, S.ACTIVE): "no run is in progress",
}


def supports(traits: ProviderTraits, verb: Verb) -> bool:
    return traits.supports(verb)


def check_supported(traits: ProviderTraits, kind: TargetKind, verb: Verb) -> None:
    if not traits.supports(verb):
        why = traits.unsupported.get(verb)
        raise Unsupported(why or f"{kind.value} targets do not support {verb.value}.")


def pause_longer_than(
    max_days: int, product: str, noun: str, options: PauseOptions, now: datetime
) -> str | None:
    """Why a pause with ``options`` is longer than ``product`` pauses a ``noun``
    (``max_days`` whole days, rounded up), or None."""
    if not options.timed:
        return None
    days = options.journey_paused_days(now)
    if days <= max_days:
        return None
    return (
        f"{product} pauses a {noun} for at most {max_days} days and "
        f"this pause would last {days}: pause for {max_days}d or less "
        "(and pause again later)"
    )


def pause_too_long(traits: ProviderTraits, options: PauseOptions, now: datetime) -> str | None:
    """Why a pause with ``options`` cannot be carried out by a provider with ``traits``, or
    None (e.g. Journey Builder pauses a journey for whole days, at most 14: reference
    sfmc.md; a longer ``for`` or a later ``until`` is refused up front)."""
    if traits.max_pause_days is None:
        return None
    return pause_longer_than(traits.max_pause_days, traits.product, traits.noun, options, now)


def _refuse(
    traits: ProviderTraits, verb: Verb, state: TargetState, current: NormalState, what: str
) -> InvalidState:
    hint = _HINTS.get((verb, current)) or traits.refused.get(verb)
    suffix = f": {hint}" if hint else ""
    return InvalidState(
        f"Cannot {verb.value} {what}: it is {state.describe()}{suffix}.",
        current_state=state.raw_status,
    )


def check_allowed(
    traits: ProviderTraits, verb: Verb, state: TargetState, versions: VersionSelector
) -> None:
    """Raise :class:`InvalidState` (naming the current state) unless ``verb`` may run now."""
    check_supported(traits, state.target.kind, verb)
    allowed = traits.allowed_from[verb]
    if traits.versions and versions.all_versions:
        if not any(v.state in allowed for v in state.versions):
            statuses = ", ".join(f"v{v.version} {v.status}" for v in state.versions) or "none"
            raise InvalidState(
                f"Cannot {verb.value} {state.target.label()} (all versions): "
                f"no version is in a state that allows it ({statuses}).",
                current_state=statuses,
            )
        return
    if state.state not in allowed:
        raise _refuse(traits, verb, state, state.state, state.target.display())


def expected_after(traits: ProviderTraits, verb: Verb) -> frozenset[NormalState]:
    return traits.expected_after[verb]


def is_verified(
    traits: ProviderTraits,
    verb: Verb,
    before: TargetState,
    after: TargetState,
    versions: VersionSelector,
) -> bool:
    """Did the read-back show what ``verb`` should have done?"""
    expected = expected_after(traits, verb)
    if traits.versions and versions.all_versions:
        acted_on = {v.version for v in before.versions if v.state in traits.allowed_from[verb]}
        now = {v.version: v.state for v in after.versions}
        return bool(acted_on) and all(now.get(n) in expected for n in acted_on)
    if after.state in expected:
        return True
    # A run that already finished when we read back still counts if its last run moved on.
    return (
        verb is Verb.RUN
        and after.last_run is not None
        and (before.last_run is None or after.last_run > before.last_run)
    )
