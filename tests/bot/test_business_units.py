"""Several SFMC business units in one environment: the config, resolution across units,
a unit's pause and its timed resume, ambiguity, and a bulk pause within each unit's limit
of 20 calls in flight, against the SFMC emulator over real HTTP (one MID per unit)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, config_from_mapping
from bot.defaults import sandbox_config
from bot.domain.bulk import BatchStatus, Progress, TargetStatus
from bot.domain.commands import BulkCommand, PauseCommand, StatusCommand, TargetRef
from bot.domain.errors import AmbiguousTarget, ConfigError
from bot.domain.grammar import format_command, parse_command
from bot.domain.jobs import JobKind, job_key
from bot.domain.models import PauseOptions, TargetKind
from bot.domain.requests import OperationRequest, Via
from bot.runtime import Runtime, build_runtime, build_scheduler
from bot.service.bulk import BatchPreview
from bot.service.notify import NullNotifier
from bot.store import Store, upgrade
from sandbox.campaign import add_campaign
from sandbox.clock import Clock
from sandbox.scrip import ScripEmulator
from sandbox.server import ServerThread
from sandbox.sfmc import STAGING_MID, Schedule, SfmcEmulator

A = TargetKind.AUTOMATION
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EMEA_MID = 5100003
UNITS = [{"name": "us", "account_id": STAGING_MID}, {"name": "emea", "account_id": EMEA_MID}]


def _mapping(
    sfmc_url: str = "http://127.0.0.1:9/", scrip_url: str = "http://127.0.0.1:9/"
) -> dict[str, Any]:
    mapping: dict[str, Any] = sandbox_config(
        sfmc_url=sfmc_url, scrip_url=scrip_url, database_url="sqlite://"
    )
    sfmc = mapping["environments"]["staging"]["sfmc"]
    del sfmc["account_id"]
    sfmc["business_units"] = [dict(u) for u in UNITS]
    return mapping


def _sfmc(mapping: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = mapping["environments"]["staging"]["sfmc"]
    return section


# -- the configuration --------------------------------------------------------------------


def test_business_units_share_the_section_s_credentials_unless_they_name_their_own() -> None:
    mapping = _mapping()
    _sfmc(mapping)["business_units"][1].update(client_id="emea-client", max_concurrent_calls=5)
    config = config_from_mapping(mapping)
    sfmc = config.environments["staging"].sfmc
    assert sfmc is not None
    units = sfmc.units()
    assert [(u.name, u.account_id, u.client_id, u.max_concurrent_calls) for u in units] == [
        ("us", STAGING_MID, "sandbox-client", 20),
        ("emea", EMEA_MID, "emea-client", 5),
    ]
    assert units[1].client_secret.get_secret_value() == "sandbox-secret"  # shared
    # the single-unit form keeps working unchanged
    prod = config.environments["prod"].sfmc
    assert prod is not None
    assert [(u.name, u.account_id) for u in prod.units()] == [(None, 5100002)]


def _error(mapping: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(mapping, source="bot.yaml")
    return caught.value.message


def test_the_same_unit_name_twice_is_refused_and_named() -> None:
    mapping = _mapping()
    _sfmc(mapping)["business_units"][1]["name"] = "us"
    assert (
        "environments.staging.sfmc.business_units: the business unit name 'us' is used twice"
        in _error(mapping)
    )


def test_the_same_mid_twice_is_refused() -> None:
    mapping = _mapping()
    _sfmc(mapping)["business_units"][1]["account_id"] = STAGING_MID
    assert (
        "business units 'us' and 'emea' have the same account_id 5100001: each MID is one "
        "business unit" in _error(mapping)
    )


def test_account_id_and_business_units_together_or_neither_are_refused() -> None:
    both = _mapping()
    _sfmc(both)["account_id"] = STAGING_MID
    assert "environments.staging.sfmc: give either account_id (one business unit) or " in _error(
        both
    )
    neither = _mapping()
    del _sfmc(neither)["business_units"]
    assert "environments.staging.sfmc: give the business unit's account_id (its MID)" in _error(
        neither
    )


def test_a_unit_s_mistakes_are_shown_with_the_offending_value_never_a_secret() -> None:
    mapping = _mapping()
    units = _sfmc(mapping)["business_units"]
    units[0]["name"] = "US East"
    units[1]["acount_id"] = units[1].pop("account_id")
    units.append({"name": "apac", "account_id": 5100004, "client_secret": "  "})
    message = _error(mapping)
    assert (
        "environments.staging.sfmc.business_units.0.name: a business unit name is lowercase "
        "letters, digits, - or _ (it qualifies keys, e.g. prod/automation:emea/welcome-send) "
        "(got 'US East')" in message
    )
    assert (
        "environments.staging.sfmc.business_units.1.acount_id: unknown key; did you mean "
        "'account_id'?" in message
    )
    assert "environments.staging.sfmc.business_units.2.client_secret: is empty" in message
    assert "sandbox-secret" not in message


def test_config_check_lists_the_business_units(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(_mapping()), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "config", "check", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "  staging (not production): sfmc (business units us MID 5100001, emea MID 5100003; "
        "http://127.0.0.1:9/), scrip" in done.stdout
    )
    assert "sandbox-secret" not in done.stdout + done.stderr


# -- the grammar: a unit before the key ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environment", "name", "formatted"),
    [
        ("status automation:emea/welcome-send", None, "emea/welcome-send",
         "status automation:emea/welcome-send"),
        ("status prod/automation:emea/welcome-send", "prod", "emea/welcome-send",
         "status prod/automation:emea/welcome-send"),
        ('status prod/automation:emea/"Welcome Send"', "prod", "emea/Welcome Send",
         'status prod/automation:emea/"Welcome Send"'),
        ("status prod/emea/welcome-send", "prod", "emea/welcome-send",
         'status prod/"emea/welcome-send"'),
    ],
)  # fmt: skip
def test_a_target_may_name_its_business_unit(
    text: str, environment: str | None, name: str, formatted: str
) -> None:
    command = parse_command(text, now=T0)
    assert isinstance(command, StatusCommand)
    assert (command.target.environment, command.target.name) == (environment, name)
    assert format_command(command) == formatted
    assert parse_command(formatted, now=T0) == command


def test_a_bulk_pattern_may_name_a_business_unit() -> None:
    command = parse_command("pause prod/automation:emea/bf25-* for 2d", now=T0)
    assert isinstance(command, BulkCommand)
    assert (command.pattern.environment, command.pattern.glob) == ("prod", "emea/bf25-*")


# -- over HTTP: two MIDs in one environment -------------------------------------------------


@dataclass
class World:
    clock: Clock
    sfmc: SfmcEmulator
    runtime: Runtime

    async def tick(self, delta: timedelta) -> int:
        self.clock.advance(delta)
        return await build_scheduler(self.runtime, owner="test", clock=self.clock.now).run_once()

    async def pause(self, name: str, **options: object) -> OperationRequest:
        command = PauseCommand(
            target=TargetRef(kind=A, name=name), options=PauseOptions.model_validate(options)
        )
        return await self.runtime.requests.submit(
            command, requester="U0ALICE", via=Via.COMMAND, channel="C0OPS"
        )

    def status(self, mid: int, key: str) -> int:
        return self.sfmc.automation(mid, key).status


@pytest.fixture
def emulators() -> Iterator[tuple[Clock, SfmcEmulator, str, str]]:
    clock = Clock(frozen_at=T0)
    sfmc, scrip = SfmcEmulator(clock=clock), ScripEmulator(clock=clock)
    sfmc.add_business_unit(EMEA_MID)
    start = datetime(2024, 1, 8, 9, 0)
    us = sfmc.automation(STAGING_MID, "daily-welcome-send")
    for key, name in (("daily-welcome-send", us.name), ("emea-newsletter", "EMEA Newsletter")):
        sfmc.add_automation(
            EMEA_MID,
            key=key,
            name=name,
            status=6,
            schedule=Schedule("Daily", start=start, end=datetime(2079, 6, 6, 8, 0)),
        )
    with ServerThread(sfmc.app) as a, ServerThread(scrip.app) as b:
        yield clock, sfmc, a.url, b.url


@pytest.fixture
async def world(
    emulators: tuple[Clock, SfmcEmulator, str, str], tmp_path: Path
) -> AsyncIterator[World]:
    clock, sfmc, sfmc_url, scrip_url = emulators
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    config: BotConfig = config_from_mapping(_mapping(sfmc_url, scrip_url))
    runtime = build_runtime(
        config.model_copy(update={"database_url": url}),
        store=Store.from_url(url, clock=clock.now),
        notifier=NullNotifier(),
        clock=clock.now,
    )
    runtime.bulk.retry_wait = 0.01
    try:
        yield World(clock, sfmc, runtime)
    finally:
        await runtime.aclose()


async def test_a_pause_in_the_second_unit_goes_there_and_so_does_its_timed_resume(
    world: World,
) -> None:
    request = await world.pause("emea/daily-welcome-send", duration=timedelta(days=2))
    assert world.status(EMEA_MID, "daily-welcome-send") == 4
    assert world.status(STAGING_MID, "daily-welcome-send") == 6  # the other unit's namesake
    pause = await world.runtime.store.pause_for_request(request.id)
    assert pause is not None
    assert pause.key == "emea/daily-welcome-send"  # the stored target names its unit
    assert await world.runtime.store.job(job_key(JobKind.PAUSE_END, pause.id)) is not None
    scheduled = [c.mid for c in world.sfmc.calls if c.soap_action == "Schedule"]
    assert scheduled == [EMEA_MID]

    world.sfmc.clear_calls()
    await world.tick(timedelta(days=2))
    assert world.status(EMEA_MID, "daily-welcome-send") == 6  # resumed, in its own unit
    assert world.status(STAGING_MID, "daily-welcome-send") == 6
    assert {c.mid for c in world.sfmc.calls if c.mid is not None} == {EMEA_MID}
    closed = await world.runtime.store.get_pause(pause.id)
    assert closed is not None
    assert not closed.active


async def test_pauses_in_both_units_ending_together_each_resume_in_their_unit(
    world: World,
) -> None:
    await world.pause("us/daily-welcome-send", duration=timedelta(days=2))
    await world.pause("emea/daily-welcome-send", duration=timedelta(days=2))
    await world.pause("emea-newsletter", duration=timedelta(days=2))
    assert world.status(STAGING_MID, "daily-welcome-send") == 4
    assert world.status(EMEA_MID, "daily-welcome-send") == 4
    assert world.status(EMEA_MID, "emea-newsletter") == 4
    world.sfmc.clear_calls()

    await world.tick(timedelta(days=2))

    assert world.status(STAGING_MID, "daily-welcome-send") == 6
    assert world.status(EMEA_MID, "daily-welcome-send") == 6
    assert world.status(EMEA_MID, "emea-newsletter") == 6
    resumed = sorted(c.mid or 0 for c in world.sfmc.calls if c.soap_action == "Schedule")
    assert resumed == [STAGING_MID, EMEA_MID, EMEA_MID]
    assert await world.runtime.store.active_pauses() == []


async def test_a_key_in_one_unit_only_needs_no_unit(world: World) -> None:
    request = await world.pause("emea-newsletter", duration=timedelta(hours=3))
    assert world.status(EMEA_MID, "emea-newsletter") == 4
    assert request.spec.key == "emea/emea-newsletter"
    state = await world.runtime.operations.status(TargetRef(name="emea-newsletter"))
    assert state.target.label() == "staging/automation:emea/emea-newsletter"


async def test_the_picker_finds_targets_of_every_unit_and_of_one(world: World) -> None:
    everywhere = await world.runtime.operations.search("staging", "daily-welcome-send")
    assert {s.key for s in everywhere if s.kind is A} >= {
        "us/daily-welcome-send",
        "emea/daily-welcome-send",
    }
    one = await world.runtime.operations.search("staging", "emea/")
    assert sorted(s.key for s in one) == ["emea/daily-welcome-send", "emea/emea-newsletter"]


async def test_a_key_in_both_units_is_ambiguous_and_names_both(world: World) -> None:
    with pytest.raises(AmbiguousTarget) as caught:
        await world.pause("daily-welcome-send", duration=timedelta(days=1))
    assert caught.value.candidates == [
        "staging/automation:us/daily-welcome-send",
        "staging/automation:emea/daily-welcome-send",
    ]
    assert caught.value.user_message() == (
        "'daily-welcome-send' is a key in 2 business units of staging (us, emea): put the "
        "business unit before it. Pick one: staging/automation:us/daily-welcome-send, "
        "staging/automation:emea/daily-welcome-send."
    )
    # the same by name: one target per unit, each with its unit
    name = world.sfmc.automation(STAGING_MID, "daily-welcome-send").name
    with pytest.raises(AmbiguousTarget) as by_name:
        await world.runtime.operations.status(TargetRef(kind=A, name=name))
    assert [m.key for m in by_name.value.matches] == [
        "us/daily-welcome-send",
        "emea/daily-welcome-send",
    ]
    assert world.status(EMEA_MID, "daily-welcome-send") == 6
    assert world.status(STAGING_MID, "daily-welcome-send") == 6


async def test_a_bulk_pause_over_both_units_uses_each_unit_s_20_calls(world: World) -> None:
    add_campaign(world.sfmc, None, mids=(STAGING_MID, EMEA_MID), automations=30, journeys=0)
    command = parse_command("pause staging/automation:bf25-* for 2d", now=T0)
    preview = await world.runtime.commands.handle(
        command, actor="U0ALICE", via=Via.CONSOLE, channel="C0OPS"
    )
    assert isinstance(preview, BatchPreview)
    keys = sorted(t.key for t in preview.plan.acting)
    assert len(keys) == 60
    assert keys[:2] == ["emea/bf25-send-001", "emea/bf25-send-002"]
    world.sfmc.knobs.set(latency_ms=300)  # calls overlap
    world.sfmc.clear_calls()

    done = await world.runtime.commands.confirm_batch(
        preview.batch.id, actor="U0ALICE", via=Via.CONSOLE
    )

    assert done.batch.status is BatchStatus.DONE
    assert done.batch.progress() == Progress(done=60, failed=0, left=0)
    assert {t.status for t in done.batch.targets} == {TargetStatus.DONE}
    for mid in (STAGING_MID, EMEA_MID):
        assert all(world.status(mid, f"bf25-send-{n:03d}") == 4 for n in range(1, 31))
        # each unit has SFMC's 20 calls in flight of its own, and keeps within them
        assert 10 < world.sfmc.peak_in_flight[mid] <= 20
    # both units' calls were on the wire together: more than one unit's 20 at once
    assert world.sfmc.peak_in_flight_all > 20
    assert not [c for c in world.sfmc.calls if c.knob == "concurrency"]

    # the timed end, one batch: every target back on its schedule, in its own unit
    world.sfmc.knobs.set(latency_ms=0)
    await world.tick(timedelta(days=2))
    for mid in (STAGING_MID, EMEA_MID):
        assert all(world.status(mid, f"bf25-send-{n:03d}") == 6 for n in range(1, 31))
