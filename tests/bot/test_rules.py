from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import rules
from bot.domain.errors import InvalidState, Unsupported
from bot.domain.models import (
    NormalState,
    PauseOptions,
    Target,
    TargetKind,
    TargetState,
    Verb,
    VersionSelector,
    VersionState,
)
from bot.domain.traits import ProviderTraits
from providers.scrip import ScripProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.journeys import SfmcJourneyProvider

S = NormalState
LATEST = VersionSelector()
#: The traits each adapter declares, by kind.
TRAITS: dict[TargetKind, ProviderTraits] = {
    TargetKind.AUTOMATION: SfmcAutomationProvider.traits,
    TargetKind.JOURNEY: SfmcJourneyProvider.traits,
    TargetKind.SCRIP: ScripProvider.traits,
}


def check_allowed(verb: Verb, st: TargetState, versions: VersionSelector) -> None:
    rules.check_allowed(TRAITS[st.target.kind], verb, st, versions)


def is_verified(
    verb: Verb, before: TargetState, after: TargetState, versions: VersionSelector
) -> bool:
    return rules.is_verified(TRAITS[after.target.kind], verb, before, after, versions)


def state(kind: TargetKind, st: NormalState, raw: str = "", **kw: object) -> TargetState:
    target = Target(environment="staging", kind=kind, key="k", name="K", id="id-1")
    return TargetState(target=target, state=st, raw_status=raw or st.value, **kw)


@pytest.mark.parametrize(
    ("kind", "verb", "allowed", "refused"),
    [
        (TargetKind.AUTOMATION, Verb.PAUSE, [S.ACTIVE], [S.RUNNING, S.PAUSED, S.READY, S.ERROR]),
        (TargetKind.AUTOMATION, Verb.RESUME, [S.PAUSED], [S.ACTIVE, S.RUNNING, S.READY]),
        (
            TargetKind.AUTOMATION,
            Verb.RUN,
            [S.READY, S.ACTIVE, S.STOPPED],
            [S.PAUSED, S.RUNNING, S.BUILDING],
        ),
        (TargetKind.AUTOMATION, Verb.STOP, [S.RUNNING, S.ACTIVE], [S.PAUSED, S.STOPPED]),
        (TargetKind.JOURNEY, Verb.PAUSE, [S.ACTIVE], [S.PAUSED, S.DRAFT, S.STOPPED, S.FINISHING]),
        (TargetKind.JOURNEY, Verb.RESUME, [S.PAUSED], [S.ACTIVE, S.STOPPED]),
        (TargetKind.JOURNEY, Verb.STOP, [S.ACTIVE, S.PAUSED, S.FINISHING], [S.DRAFT, S.STOPPED]),
        (TargetKind.SCRIP, Verb.PAUSE, [S.ACTIVE, S.RUNNING], [S.PAUSED, S.ARCHIVED]),
        (TargetKind.SCRIP, Verb.RESUME, [S.PAUSED], [S.ACTIVE, S.ARCHIVED]),
        (TargetKind.SCRIP, Verb.RUN, [S.ACTIVE], [S.PAUSED, S.RUNNING]),
        (TargetKind.SCRIP, Verb.STOP, [S.RUNNING], [S.ACTIVE, S.PAUSED]),
    ],
)
def test_allowed_states(
    kind: TargetKind, verb: Verb, allowed: list[NormalState], refused: list[NormalState]
) -> None:
    for st in allowed:
        check_allowed(verb, state(kind, st), LATEST)
    for st in refused:
        with pytest.raises(InvalidState) as err:
            check_allowed(verb, state(kind, st, raw=f"raw-{st.value}"), LATEST)
        assert f"raw-{st.value}" in err.value.message
        assert err.value.current_state == f"raw-{st.value}"


def test_run_on_paused_automation_explains_resume() -> None:
    with pytest.raises(InvalidState, match="does not unpause"):
        check_allowed(Verb.RUN, state(TargetKind.AUTOMATION, S.PAUSED, "4 Paused"), LATEST)


def test_journeys_cannot_run() -> None:
    with pytest.raises(Unsupported, match="published, not run"):
        check_allowed(Verb.RUN, state(TargetKind.JOURNEY, S.ACTIVE), LATEST)


def _versions(*pairs: tuple[int, NormalState]) -> tuple[VersionState, ...]:
    return tuple(VersionState(version=n, id=f"v{n}", status=s.value, state=s) for n, s in pairs)


def test_all_versions_needs_one_eligible_version() -> None:
    all_v = VersionSelector(all_versions=True)
    ok = state(TargetKind.JOURNEY, S.FINISHING, versions=_versions((1, S.FINISHING), (2, S.ACTIVE)))
    check_allowed(Verb.PAUSE, ok, all_v)
    none = state(TargetKind.JOURNEY, S.PAUSED, versions=_versions((1, S.STOPPED), (2, S.PAUSED)))
    with pytest.raises(InvalidState, match="v1 stopped, v2 paused"):
        check_allowed(Verb.PAUSE, none, all_v)


def test_all_versions_verified_only_when_every_acted_version_changed() -> None:
    all_v = VersionSelector(all_versions=True)
    before = state(
        TargetKind.JOURNEY,
        S.ACTIVE,
        versions=_versions((1, S.FINISHING), (2, S.ACTIVE), (3, S.ACTIVE)),
    )
    half = state(
        TargetKind.JOURNEY,
        S.PAUSED,
        versions=_versions((1, S.FINISHING), (2, S.ACTIVE), (3, S.PAUSED)),
    )
    full = state(
        TargetKind.JOURNEY,
        S.PAUSED,
        versions=_versions((1, S.FINISHING), (2, S.PAUSED), (3, S.PAUSED)),
    )
    assert not is_verified(Verb.PAUSE, before, half, all_v)
    assert is_verified(Verb.PAUSE, before, full, all_v)


def test_run_verified_by_running_or_a_newer_last_run() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    before = state(TargetKind.AUTOMATION, S.ACTIVE, last_run=t0)
    assert is_verified(Verb.RUN, before, state(TargetKind.AUTOMATION, S.RUNNING), LATEST)
    newer = state(TargetKind.AUTOMATION, S.ACTIVE, last_run=t0 + timedelta(minutes=1))
    assert is_verified(Verb.RUN, before, newer, LATEST)
    same = state(TargetKind.AUTOMATION, S.ACTIVE, last_run=t0)
    assert not is_verified(Verb.RUN, before, same, LATEST)


def test_pause_still_active_is_not_verified() -> None:
    before = state(TargetKind.SCRIP, S.ACTIVE)
    assert not is_verified(Verb.PAUSE, before, before, LATEST)


@pytest.mark.parametrize(
    ("options", "days"),
    [
        (PauseOptions(duration=timedelta(hours=12)), 1),
        (PauseOptions(duration=timedelta(days=3)), 3),
        (PauseOptions(duration=timedelta(days=3, hours=1)), 4),
        (PauseOptions(), 14),
    ],
)
def test_journey_paused_days(options: PauseOptions, days: int) -> None:
    assert options.journey_paused_days(datetime(2026, 11, 23, tzinfo=UTC)) == days


def test_pause_options_validation() -> None:
    with pytest.raises(ValueError, match="either a length"):
        PauseOptions(duration=timedelta(days=1), until=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone"):
        PauseOptions(until=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="either a version or all versions"):
        VersionSelector(version=2, all_versions=True)
