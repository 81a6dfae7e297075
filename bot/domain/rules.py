"""Which verb is allowed from which state, and what a verified result looks like.

Pure rules, one table per kind (facts: reference sfmc.md §1.2 and §3, scrip.md §7).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.errors import InvalidState, Unsupported
from bot.domain.models import (
    MAX_JOURNEY_PAUSED_DAYS,
    NormalState,
    PauseOptions,
    TargetKind,
    TargetState,
    Verb,
    VersionSelector,
)

S = NormalState

#: verb -> states it may start from, per kind.
ALLOWED_FROM: Mapping[TargetKind, Mapping[Verb, frozenset[NormalState]]] = {
    TargetKind.AUTOMATION: {
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
    TargetKind.JOURNEY: {
        Verb.PAUSE: frozenset({S.ACTIVE}),
        Verb.RESUME: frozenset({S.PAUSED}),
        Verb.STOP: frozenset({S.ACTIVE, S.PAUSED, S.FINISHING}),
    },
    TargetKind.SCRIP: {
        Verb.PAUSE: frozenset({S.ACTIVE, S.RUNNING}),
        Verb.RESUME: frozenset({S.PAUSED}),
        Verb.RUN: frozenset({S.ACTIVE}),
        Verb.STOP: frozenset({S.RUNNING}),  # cancel the current run
    },
}

#: verb -> states a read-back must show for the action to count as done, per kind.
EXPECTED_AFTER: Mapping[TargetKind, Mapping[Verb, frozenset[NormalState]]] = {
    TargetKind.AUTOMATION: {
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE}),
        Verb.RUN: frozenset({S.RUNNING}),
        Verb.STOP: frozenset({S.STOPPED, S.READY}),
    },
    TargetKind.JOURNEY: {
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE}),
        Verb.STOP: frozenset({S.STOPPED}),
    },
    TargetKind.SCRIP: {
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE, S.RUNNING}),
        Verb.RUN: frozenset({S.RUNNING}),
        Verb.STOP: frozenset({S.ACTIVE}),
    },
}

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


def supports(kind: TargetKind, verb: Verb) -> bool:
    return verb in ALLOWED_FROM[kind]


def check_supported(kind: TargetKind, verb: Verb) -> None:
    if not supports(kind, verb):
        if kind is TargetKind.JOURNEY and verb is Verb.RUN:
            raise Unsupported("Journeys cannot be run once: they are published, not run.")
        raise Unsupported(f"{kind.value} targets do not support {verb.value}.")


def pause_too_long(kind: TargetKind, options: PauseOptions, now: datetime) -> str | None:
    """Why a pause of ``kind`` with ``options`` cannot be carried out, or None.

    Journey Builder pauses a journey for whole days (``PausedDays``, rounded up), at most
    14 (reference sfmc.md): a longer ``for`` or a later ``until`` is refused up front.
    """
    if kind is not TargetKind.JOURNEY or not options.timed:
        return None
    days = options.journey_paused_days(now)
    if days <= MAX_JOURNEY_PAUSED_DAYS:
        return None
    return (
        f"Journey Builder pauses a journey for at most {MAX_JOURNEY_PAUSED_DAYS} days and "
        f"this pause would last {days}: pause for {MAX_JOURNEY_PAUSED_DAYS}d or less "
        "(and pause again later)"
    )


def _refuse(verb: Verb, state: TargetState, current: NormalState, what: str) -> InvalidState:
    hint = _HINTS.get((verb, current))
    if hint is None and state.target.kind is TargetKind.SCRIP and verb is Verb.STOP:
        hint = "no run is in progress"
    suffix = f": {hint}" if hint else ""
    return InvalidState(
        f"Cannot {verb.value} {what}: it is {state.describe()}{suffix}.",
        current_state=state.raw_status,
    )


def check_allowed(verb: Verb, state: TargetState, versions: VersionSelector) -> None:
    """Raise :class:`InvalidState` (naming the current state) unless ``verb`` may run now."""
    kind = state.target.kind
    check_supported(kind, verb)
    allowed = ALLOWED_FROM[kind][verb]
    if kind is TargetKind.JOURNEY and versions.all_versions:
        if not any(v.state in allowed for v in state.versions):
            statuses = ", ".join(f"v{v.version} {v.status}" for v in state.versions) or "none"
            raise InvalidState(
                f"Cannot {verb.value} {state.target.label()} (all versions): "
                f"no version is in a state that allows it ({statuses}).",
                current_state=statuses,
            )
        return
    if state.state not in allowed:
        raise _refuse(verb, state, state.state, state.target.display())


def expected_after(kind: TargetKind, verb: Verb) -> frozenset[NormalState]:
    return EXPECTED_AFTER[kind][verb]


def is_verified(
    verb: Verb, before: TargetState, after: TargetState, versions: VersionSelector
) -> bool:
    """Did the read-back show what ``verb`` should have done?"""
    kind = after.target.kind
    expected = expected_after(kind, verb)
    if kind is TargetKind.JOURNEY and versions.all_versions:
        acted_on = {v.version for v in before.versions if v.state in ALLOWED_FROM[kind][verb]}
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
