"""The service end to end: resolve -> check -> act -> read back, against the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.domain.commands import (
    ListCommand,
    ListScope,
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import (
    AmbiguousTarget,
    BadInput,
    InvalidState,
    NotFound,
    ProductionRefused,
)
from bot.domain.models import NormalState, PauseOptions, TargetKind, ThenAction, VersionSelector
from bot.service.operations import OperationService
from providers.registry import ProviderRegistry
from providers.scrip.provider import SCRIP_TRAITS
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def service(sandbox: Sandbox) -> AsyncIterator[OperationService]:
    registry = ProviderRegistry(sandbox.config)
    try:
        yield OperationService(environments=registry.environment, sleep=_no_sleep)
    finally:
        await registry.aclose()


def ref(name: str, kind: TargetKind | None = None, env: str | None = None) -> TargetRef:
    return TargetRef(name=name, kind=kind, environment=env)


async def test_bare_key_resolves_in_the_right_provider(service: OperationService) -> None:
    state = await service.status(ref("daily-welcome-send"))
    assert state.target.kind is TargetKind.AUTOMATION
    assert state.state is NormalState.ACTIVE
    journey = await service.status(ref("welcome-series"))
    assert journey.target.kind is TargetKind.JOURNEY


async def test_bare_name_resolves_case_insensitively(service: OperationService) -> None:
    state = await service.status(ref("nightly points expiry"))
    assert state.target.kind is TargetKind.SCRIP
    assert state.target.name == "Nightly Points Expiry"


async def test_unknown_target_gets_suggestions(service: OperationService) -> None:
    with pytest.raises(NotFound) as err:
        await service.status(ref("hourly-lead-sinc"))
    assert err.value.suggestions[0] == 'automation:"Hourly Lead Sync"'
    assert "Did you mean" in err.value.user_message()


@pytest.mark.parametrize(
    "typed",
    [
        "daily welcome email send",
        "DAILY  Welcome   Email Send",
        "daily-welcome-email-send",
        "Daily_Welcome_Email_Send",
        "daily welcome send",  # its key, with spaces
    ],
)
async def test_names_match_the_way_people_type_them(service: OperationService, typed: str) -> None:
    state = await service.status(ref(typed))
    assert (state.target.kind, state.target.key) == (TargetKind.AUTOMATION, "daily-welcome-send")
    with_kind = await service.status(ref(typed, TargetKind.AUTOMATION, "staging"))
    assert with_kind.target.key == "daily-welcome-send"


async def test_scrip_names_match_with_hyphens(service: OperationService) -> None:
    state = await service.status(ref("nightly-points-expiry"))
    assert state.target.name == "Nightly Points Expiry"


async def test_did_you_mean_ranks_names_best_first(service: OperationService) -> None:
    with pytest.raises(NotFound) as err:
        await service.status(ref("Daily Welcome Email Sand", TargetKind.AUTOMATION))
    suggestions = err.value.suggestions
    assert suggestions[0] == 'automation:"Daily Welcome Email Send"'
    assert 1 <= len(suggestions) <= 5
    assert all(s.startswith("automation:") for s in suggestions)


async def test_did_you_mean_looks_at_every_kind_and_names_them(service: OperationService) -> None:
    with pytest.raises(NotFound) as err:
        await service.status(ref("Wellcome Series", env="staging"))
    suggestions = err.value.suggestions
    assert suggestions[0] == 'staging/journey:"Welcome Series"'
    assert len(suggestions) <= 5
    assert not any("daily-welcome" in s or "Daily Welcome" in s for s in suggestions)


async def test_did_you_mean_names_scrip_automations_not_their_ids(
    service: OperationService,
) -> None:
    with pytest.raises(NotFound) as err:
        await service.status(ref("Nightly Points Expiri"))
    assert err.value.suggestions[0] == 'scrip:"Nightly Points Expiry"'
    assert "a1f0c6d2" not in err.value.user_message()


async def test_nothing_close_suggests_nothing(service: OperationService) -> None:
    with pytest.raises(NotFound) as err:
        await service.status(ref("zzqx"))
    assert err.value.suggestions == []


async def test_ambiguous_name_lists_candidates(sandbox: Sandbox, service: OperationService) -> None:
    sandbox.sfmc.add_automation(STAGING_MID, key="dupe-a", name="Twin", status=6)
    sandbox.sfmc.add_automation(STAGING_MID, key="dupe-b", name="Twin", status=6)
    with pytest.raises(AmbiguousTarget) as err:
        await service.status(ref("Twin"))
    assert sorted(err.value.candidates) == [
        "staging/automation:dupe-a",
        "staging/automation:dupe-b",
    ]


async def test_pause_and_resume_automation_verified(
    sandbox: Sandbox, service: OperationService
) -> None:
    paused = await service.execute(
        PauseCommand(
            target=ref("daily-welcome-send", TargetKind.AUTOMATION),
            options=PauseOptions(duration=timedelta(days=3)),
        )
    )
    assert paused.verified
    assert paused.after.state is NormalState.PAUSED
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    resumed = await service.execute(
        ResumeCommand(target=ref("daily-welcome-send", TargetKind.AUTOMATION))
    )
    assert resumed.verified
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6


async def test_journey_pause_all_versions_and_resume(
    sandbox: Sandbox, service: OperationService
) -> None:
    result = await service.execute(
        PauseCommand(
            target=ref("welcome-series", TargetKind.JOURNEY),
            options=PauseOptions(duration=timedelta(days=2), then=ThenAction.STOP),
            versions=VersionSelector(all_versions=True),
        )
    )
    assert result.verified, result.summary()
    statuses = {
        v.version: v.status for v in sandbox.sfmc.journey_versions(STAGING_MID, "welcome-series")
    }
    assert "Published" not in statuses.values()
    resumed = await service.execute(
        ResumeCommand(target=ref("welcome-series"), versions=VersionSelector(all_versions=True))
    )
    assert resumed.verified


async def test_scrip_run_and_stop(sandbox: Sandbox, service: OperationService) -> None:
    ran = await service.execute(RunCommand(target=ref("Birthday Bonus", TargetKind.SCRIP)))
    assert ran.verified, ran.summary()
    stopped = await service.execute(StopCommand(target=ref("Birthday Bonus", TargetKind.SCRIP)))
    assert stopped.verified, stopped.summary()


async def test_refused_transition_names_state_and_calls_nothing(
    sandbox: Sandbox, service: OperationService
) -> None:
    before = len(sandbox.sfmc.calls)
    with pytest.raises(InvalidState) as err:
        await service.execute(PauseCommand(target=ref("nightly-crm-export")))
    assert "Running" in err.value.message
    mutations = [c for c in sandbox.sfmc.calls[before:] if c.soap_action in ("Schedule", "Perform")]
    assert mutations == []


async def test_then_stop_refused_for_automations(service: OperationService) -> None:
    with pytest.raises(BadInput, match="only applies to journeys"):
        await service.execute(
            PauseCommand(
                target=ref("daily-welcome-send"),
                options=PauseOptions(duration=timedelta(days=1), then=ThenAction.STOP),
            )
        )


async def test_production_refused_without_any_provider_call(
    sandbox: Sandbox, service: OperationService
) -> None:
    before = len(sandbox.sfmc.calls)
    with pytest.raises(ProductionRefused, match="approval"):
        await service.execute(PauseCommand(target=ref("daily-welcome-send", env="prod")))
    assert sandbox.sfmc.calls[before:] == []
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6


async def test_list_paused_across_providers(service: OperationService) -> None:
    states = await service.list_targets(ListCommand(scope=ListScope.PAUSED))
    kinds = {s.target.kind for s in states}
    assert kinds == {TargetKind.AUTOMATION, TargetKind.JOURNEY, TargetKind.SCRIP}
    assert all(s.state is NormalState.PAUSED for s in states)
    filtered = await service.list_targets(ListCommand(scope=ListScope.ALL, filter="welcome"))
    assert filtered
    assert all("welcome" in (s.target.name + s.target.key).lower() for s in filtered)


class _StuckProvider:
    """Accepts every action but never changes: the read-back must say so."""

    kind = TargetKind.SCRIP
    traits = SCRIP_TRAITS

    def __init__(self) -> None:
        from bot.domain.models import Target, TargetState

        self.reads = 0
        self.state = TargetState(
            target=Target(environment="staging", kind=self.kind, key="k1", name="Stuck", id="k1"),
            state=NormalState.ACTIVE,
            raw_status="active",
        )

    async def get(self, key: str, *, version: int | None = None):  # type: ignore[no-untyped-def]
        if key != "k1":
            raise NotFound("no")
        self.reads += 1
        return self.state

    async def find_by_name(self, name: str) -> list:  # type: ignore[type-arg]
        return []

    async def pause(self, state, *, options, versions):  # type: ignore[no-untyped-def]
        from bot.domain.models import ActionReceipt

        return ActionReceipt(request_id="r-1", message="ok")


async def test_unverified_when_read_back_does_not_change() -> None:
    from bot.service.operations import Environment

    stuck = _StuckProvider()
    env = Environment(name="staging", production=False, providers={TargetKind.SCRIP: stuck})  # type: ignore[dict-item]
    service = OperationService(
        environments=lambda _: env, sleep=_no_sleep, readback_delays=(0, 0.1, 0.2)
    )
    seen: list[tuple[int, int]] = []

    async def progress(attempt: int, attempts: int) -> None:
        seen.append((attempt, attempts))

    command = PauseCommand(target=ref("k1"))
    result = await service.perform(command, await service.check(command), progress=progress)
    assert seen == [(2, 3), (3, 3)]
    assert not result.verified
    assert "NOT verified" in result.summary()
    assert result.note is not None
    assert stuck.reads == 1 + 3  # resolve (check), then one read per read-back attempt


async def test_same_named_scrip_automations_are_listed_with_their_names(
    sandbox: Sandbox, service: OperationService
) -> None:
    sandbox.scrip.add_automation(name="Nightly Points Expiry")
    with pytest.raises(AmbiguousTarget) as err:
        await service.status(ref("nightly points expiry"))
    assert len(err.value.candidates) == 2
    assert all(c.endswith('("Nightly Points Expiry")') for c in err.value.candidates)


async def test_list_filter_matches_names_the_way_people_type_them(
    service: OperationService,
) -> None:
    found = await service.list_targets(
        ListCommand(scope=ListScope.ALL, filter="daily-welcome_EMAIL  send")
    )
    assert "daily-welcome-send" in {s.target.key for s in found}
    points = await service.list_targets(ListCommand(scope=ListScope.ALL, filter="points-expiry"))
    assert [s.target.name for s in points] == ["Nightly Points Expiry"]


async def test_search_finds_names_typed_with_hyphens_or_a_typo(service: OperationService) -> None:
    hyphens = await service.search("staging", "daily-welcome-email")
    assert {s.key for s in hyphens} >= {"daily-welcome-send", "daily-welcome-resend"}
    typo = await service.search("staging", "Nightly Ponts Expiry")
    assert [s.name for s in typo][:1] == ["Nightly Points Expiry"]
