"""Declared provider capabilities: the rules and the services read the traits an adapter
declares, so a new kind of provider is handled without touching them."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import EnvironmentSettings
from bot.domain import rules
from bot.domain.commands import PauseCommand, RunCommand, TargetRef
from bot.domain.errors import BadInput, InvalidState, NotFound, Unsupported
from bot.domain.models import (
    ActionReceipt,
    NormalState,
    PauseOptions,
    Target,
    TargetKind,
    TargetState,
    TargetSummary,
    ThenAction,
    Verb,
    VersionSelector,
)
from bot.domain.traits import ProviderTraits
from bot.service.operations import OperationService
from bot.service.ports import BatchResumes, Environment
from providers.registry import FACTORIES
from providers.scrip import ScripProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.journeys import SfmcJourneyProvider

S = NormalState
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

#: A fourth kind of provider nobody wrote a rule for: its targets run only while paused
#: (a made-up product), it has versions, and it pauses for at most 2 days.
CANVAS = ProviderTraits(
    product="Canvas Studio",
    noun="canvas",
    allowed_from={
        Verb.PAUSE: frozenset({S.ACTIVE, S.DRAFT}),
        Verb.RESUME: frozenset({S.PAUSED}),
        Verb.RUN: frozenset({S.PAUSED}),
    },
    expected_after={
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE}),
        Verb.RUN: frozenset({S.RUNNING}),
    },
    unsupported={Verb.STOP: "Canvases are never stopped, only paused."},
    refused={Verb.RESUME: "only a paused canvas resumes"},
    versions=True,
    ends_pause_natively=True,
    max_pause_days=2,
)


def _state(st: NormalState, kind: TargetKind = TargetKind.SCRIP) -> TargetState:
    target = Target(environment="staging", kind=kind, key="c1", name="Canvas", id="c1")
    return TargetState(target=target, state=st, raw_status=f"raw-{st.value}")


def test_a_fourth_kind_is_handled_by_the_rules_from_its_traits() -> None:
    # the same target kind, other traits: the rules follow the traits, never the kind
    rules.check_allowed(CANVAS, Verb.PAUSE, _state(S.DRAFT), VersionSelector())
    rules.check_allowed(CANVAS, Verb.RUN, _state(S.PAUSED), VersionSelector())
    with pytest.raises(InvalidState, match="raw-running"):
        rules.check_allowed(CANVAS, Verb.RUN, _state(S.RUNNING), VersionSelector())
    with pytest.raises(InvalidState, match="only a paused canvas resumes"):
        rules.check_allowed(CANVAS, Verb.RESUME, _state(S.DRAFT), VersionSelector())
    with pytest.raises(Unsupported, match="never stopped"):
        rules.check_allowed(CANVAS, Verb.STOP, _state(S.ACTIVE), VersionSelector())
    assert rules.is_verified(
        CANVAS, Verb.RESUME, _state(S.PAUSED), _state(S.ACTIVE), VersionSelector()
    )
    assert not rules.is_verified(
        CANVAS, Verb.RESUME, _state(S.PAUSED), _state(S.PAUSED), VersionSelector()
    )
    three_days = PauseOptions(duration=timedelta(days=3))
    assert rules.pause_too_long(CANVAS, three_days, NOW) == (
        "Canvas Studio pauses a canvas for at most 2 days and this pause would last 3: "
        "pause for 2d or less (and pause again later)"
    )
    assert rules.pause_too_long(CANVAS, PauseOptions(duration=timedelta(days=2)), NOW) is None
    # the scrip adapter's own traits refuse what the fourth kind allows, for the same target
    with pytest.raises(InvalidState):
        rules.check_allowed(ScripProvider.traits, Verb.RUN, _state(S.PAUSED), VersionSelector())
    assert rules.pause_too_long(ScripProvider.traits, three_days, NOW) is None


def test_each_adapter_declares_frozen_traits() -> None:
    automation, journey, scrip = (
        SfmcAutomationProvider.traits,
        SfmcJourneyProvider.traits,
        ScripProvider.traits,
    )
    assert journey.versions
    assert journey.ends_pause_natively
    assert not journey.extends_running_pause
    assert journey.max_pause_days == 14
    assert not journey.supports(Verb.RUN)
    assert not automation.versions
    assert automation.extends_running_pause
    assert scrip.max_pause_days is None
    assert scrip.supports(Verb.RUN)
    with pytest.raises(ValidationError):
        journey.versions = False  # type: ignore[misc]


def test_batch_resumes_is_a_declared_protocol() -> None:
    assert issubclass(SfmcAutomationProvider, BatchResumes)
    assert not issubclass(SfmcJourneyProvider, BatchResumes)
    assert not issubclass(ScripProvider, BatchResumes)


class _CanvasProvider:
    """A fourth kind of provider, declared only by its traits (stored under a known kind,
    since the kinds people type are the grammar's)."""

    kind = TargetKind.SCRIP
    traits = CANVAS

    def __init__(self) -> None:
        self.state = _state(S.PAUSED)
        self.runs = 0

    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        if key != "c1":
            raise NotFound(f"no canvas {key!r}")
        return self.state

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        return []

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        return []

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        return [self.state]

    async def run(self, state: TargetState) -> ActionReceipt:
        self.runs += 1
        self.state = state.model_copy(update={"state": S.RUNNING, "raw_status": "running"})
        return ActionReceipt(request_id="run-1", message="started")

    async def pause(
        self, state: TargetState, *, options: object, versions: object
    ) -> ActionReceipt:
        raise AssertionError("not called")

    async def resume(self, state: TargetState, *, versions: object) -> ActionReceipt:
        raise AssertionError("not called")

    async def stop(self, state: TargetState, *, versions: object) -> ActionReceipt:
        raise AssertionError("not called")

    async def aclose(self) -> None:
        return None


async def _no_sleep(_: float) -> None:
    return None


async def test_the_services_read_the_traits_of_a_fourth_kind() -> None:
    canvas = _CanvasProvider()
    env = Environment(name="staging", production=False, providers={TargetKind.SCRIP: canvas})
    service = OperationService(environments=lambda _: env, sleep=_no_sleep, readback_delays=(0,))
    target = TargetRef(environment="staging", kind=TargetKind.SCRIP, name="c1")
    # run from paused: refused by scrip's rules, allowed by the traits this adapter declares
    result = await service.execute(RunCommand(target=target))
    assert result.verified
    assert canvas.runs == 1
    assert result.expected == frozenset({S.RUNNING})
    # 'then stop' and --all-versions follow the declared traits, not the kind
    canvas.state = _state(S.ACTIVE)
    stop_after = PauseCommand(
        target=target,
        options=PauseOptions(duration=timedelta(days=1), then=ThenAction.STOP),
        versions=VersionSelector(all_versions=True),
    )
    with pytest.raises(InvalidState, match="no version is in a state"):
        await service.check(stop_after)  # past the kind checks, refused by the state rule
    too_long = PauseCommand(target=target, options=PauseOptions(duration=timedelta(days=3)))
    with pytest.raises(BadInput, match="Canvas Studio pauses a canvas for at most 2 days"):
        await service.check(too_long)


def test_providers_are_built_from_a_map_of_config_sections() -> None:
    both = EnvironmentSettings.model_validate(
        {
            "sfmc": {
                "auth_url": "https://x.auth.example.test/",
                "client_id": "id",
                "client_secret": "secret",
                "account_id": 1,
            },
            "scrip": {"api_key": "sk_test", "program_id": "p"},
        }
    )
    assert set(both.provider_sections()) == set(FACTORIES) == {"sfmc", "scrip"}
    tree = ast.parse((ROOT / "providers" / "registry.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "bot.config" not in imported
    assert not {m for m in imported if m.startswith("bot.service")} - {"bot.service.ports"}
