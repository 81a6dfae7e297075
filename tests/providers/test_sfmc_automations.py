"""The SFMC automation adapter (SOAP + REST reads) against the SFMC emulator over real HTTP.

The emulator's clock is frozen at :data:`T0` and the adapter reads the same clock, so the
"start moved forward" rule of resume is exact. Backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.errors import AuthError, InvalidState, NotFound, ProviderError, RateLimited
from bot.domain.models import (
    NormalState,
    PauseOptions,
    Schedule,
    TargetKind,
    VersionSelector,
)
from bot.service.ports import Provider
from providers.sfmc.auth import SfmcToken, TokenProvider
from providers.sfmc.automations import SfmcAutomationProvider, describe_status
from providers.sfmc.recurrence import (
    ScheduleError,
    build_spec,
    next_run,
    parse_ical,
    schedule_from_rest,
    system_time,
)
from providers.sfmc.snapshots import (
    InMemoryScheduleSnapshots,
    JsonFileScheduleSnapshots,
    ScheduleSnapshots,
)
from providers.sfmc.soap import SimpleFilter, SoapClient, default_wsdl_path, load_document
from sandbox.clock import Clock
from sandbox.server import ServerThread
from sandbox.sfmc import CLIENT_ID, CLIENT_SECRET, STAGING_MID, SfmcEmulator
from sandbox.sfmc import Schedule as EmuSchedule

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday; 13:00 in Berlin (W. Europe)
START = datetime(2024, 1, 8)  # a Monday
FOREVER = datetime(2079, 6, 6, 8, 0)
ALL = VersionSelector()
UNTIMED = PauseOptions()
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SOAP_PATH = "/Service.asmx"
REST_PATH = "/automation/v1/automations"
PARTNER_WSDL = Path(__file__).resolve().parents[2].parent / "shared" / "sfmc" / "etframework.wsdl"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SfmcEmulator, str]]:
    emulator = SfmcEmulator(clock=Clock(frozen_at=T0))
    with ServerThread(emulator.app) as thread:
        yield emulator, thread.url


def add_estate(emulator: SfmcEmulator) -> None:
    """The automations these tests use, with known schedules (the seed may change)."""

    def daily(hour: int) -> EmuSchedule:
        return EmuSchedule("Daily", start=START.replace(hour=hour), end=FOREVER, timezone_id=5)

    hourly = EmuSchedule("Hourly", start=START, end=FOREVER, timezone_id=5)
    weekly = EmuSchedule(
        "Weekly", start=START.replace(hour=6), weekdays=("Monday",), end=FOREVER, timezone_id=5
    )
    monthly = EmuSchedule(
        "Monthly",
        start=START.replace(hour=2),
        pattern_type="ByDay",
        scheduled_day=1,
        range_type="EndAfter",
        occurrences=36,
        timezone_id=5,
    )
    rows: list[tuple[str, str, int, EmuSchedule | None]] = [
        ("bot-daily", "Bot Daily Send", 6, daily(7)),
        ("bot-daily-resend", "Bot Daily Resend", 6, daily(19)),
        ("bot-daily-test", "Bot Daily Send - Test", 5, daily(8)),
        ("bot-hourly", "Bot Hourly", 6, hourly),
        ("bot-weekly", "Bot Weekly", 4, weekly),
        ("bot-monthly", "Bot Monthly", 2, monthly),
        ("bot-running", "Bot Running", 3, daily(1)),
        ("bot-waiting", "Bot Waiting", 7, None),
        ("bot-inactive", "Bot Inactive", 8, None),
        ("bot-error", "Bot Error", -1, None),
    ]
    for key, name, status, schedule in rows:
        emulator.add_automation(
            STAGING_MID,
            key=key,
            name=name,
            status=status,
            schedule=schedule,
            automation_type="triggered" if status in (7, 8) else "scheduled",
        )


@pytest.fixture
def emu(server: tuple[SfmcEmulator, str]) -> Iterator[SfmcEmulator]:
    emulator, _ = server
    emulator.clock.freeze(T0)
    emulator.reset()
    emulator.settings.page_size = 2500
    add_estate(emulator)
    yield emulator
    emulator.knobs.reset()
    emulator.settings.page_size = 2500


@pytest.fixture
def base_url(server: tuple[SfmcEmulator, str]) -> str:
    return server[1]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False) as client:
        yield client


@pytest.fixture
def tokens(base_url: str, http: httpx.AsyncClient) -> TokenProvider:
    return TokenProvider(
        auth_url=base_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        account_id=STAGING_MID,
        http=http,
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(
    emu: SfmcEmulator, tokens: TokenProvider, http: httpx.AsyncClient, sleeps: list[float]
) -> Callable[..., SfmcAutomationProvider]:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def factory(**overrides: Any) -> SfmcAutomationProvider:
        kwargs: dict[str, Any] = {
            "environment": "staging",
            "tokens": tokens,
            "http": http,
            "clock": emu.clock.now,
            "sleep": fake_sleep,
        }
        kwargs.update(overrides)
        return SfmcAutomationProvider(**kwargs)

    return factory


@pytest.fixture
def provider(make: Callable[..., SfmcAutomationProvider]) -> SfmcAutomationProvider:
    return make()


def soap_calls(emu: SfmcEmulator, action: str | None = None) -> list[Any]:
    return [
        c for c in emu.calls if c.path == SOAP_PATH and (action is None or c.soap_action == action)
    ]


def rest_schedule(emu: SfmcEmulator, key: str) -> dict[str, Any]:
    a = emu.automation(STAGING_MID, key)
    assert a.schedule is not None
    return a.schedule.rest_json("x")


# --------------------------------------------------------------------------- reads


def test_provider_satisfies_the_protocol(provider: SfmcAutomationProvider) -> None:
    p: Provider = provider
    assert p.kind is TargetKind.AUTOMATION


async def test_get_maps_state_target_and_schedule(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")
    a = emu.automation(STAGING_MID, "bot-daily")
    assert state.state is NormalState.ACTIVE
    assert state.raw_status == "6 Scheduled"
    assert state.target.key == "bot-daily"
    assert state.target.id == a.object_id
    assert state.target.name == "Bot Daily Send"
    assert state.target.environment == "staging"
    assert state.schedule is not None
    assert state.schedule.ical_recur == "FREQ=DAILY;UNTIL=20790606T080000;INTERVAL=1"
    assert state.schedule.start == datetime(2024, 1, 8, 7, 0)
    assert state.schedule.end == datetime(2079, 6, 6, 8, 0)
    assert state.schedule.timezone_id == 5
    # 07:00 Berlin (CET, UTC+1) tomorrow: today's run has passed at 13:00 Berlin.
    assert state.next_run == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    assert state.details["automation_type"] == "scheduled"
    assert "rest_error" not in state.details


@pytest.mark.parametrize(
    ("key", "raw", "normal"),
    [
        ("bot-weekly", "4 Paused", NormalState.PAUSED),
        ("bot-daily-test", "5 Stopped", NormalState.STOPPED),
        ("bot-monthly", "2 Ready", NormalState.READY),
        ("bot-running", "3 Running", NormalState.RUNNING),
        ("bot-waiting", "7 Awaiting Trigger", NormalState.WAITING),
        ("bot-inactive", "8 InactiveTrigger", NormalState.INACTIVE),
        ("bot-error", "-1 Error", NormalState.ERROR),
    ],
)
async def test_get_maps_every_status(
    provider: SfmcAutomationProvider, key: str, raw: str, normal: NormalState
) -> None:
    state = await provider.get(key)
    assert (state.raw_status, state.state) == (raw, normal)


def test_status_table_covers_building_codes() -> None:
    assert describe_status(0) == ("0 BuildingError", NormalState.ERROR)
    assert describe_status(1) == ("1 Building", NormalState.BUILDING)
    assert describe_status(42) == ("42 Unknown", NormalState.UNKNOWN)
    assert describe_status(None) == ("unknown", NormalState.UNKNOWN)


async def test_get_by_object_id_falls_back_from_customer_key(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    object_id = emu.automation(STAGING_MID, "bot-hourly").object_id
    state = await provider.get(object_id.upper())
    assert state.target.key == "bot-hourly"
    assert len(soap_calls(emu, "Retrieve")) == 2  # CustomerKey first, then ObjectID


async def test_unknown_key_is_not_found(provider: SfmcAutomationProvider) -> None:
    with pytest.raises(NotFound, match="nope"):
        await provider.get("nope")
    with pytest.raises(NotFound):
        await provider.get("00000000-0000-4000-8000-000000000000")


async def test_a_failed_rest_read_does_not_break_get(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    emu.knobs.set(fail_next_5xx=10, path_filter=REST_PATH)
    state = await provider.get("bot-daily")
    assert state.state is NormalState.ACTIVE  # from SOAP
    assert state.schedule is None
    assert "500" in state.details["rest_error"]


async def test_a_transient_rest_5xx_is_retried(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    emu.knobs.set(fail_next_5xx=1, path_filter=REST_PATH)
    state = await provider.get("bot-daily")
    assert state.schedule is not None
    assert "rest_error" not in state.details


async def test_rest_401_refreshes_the_token_once(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    await provider.get("bot-hourly")
    before = emu.token_requests
    emu.knobs.set(expire_tokens_next=1, path_filter=REST_PATH)
    state = await provider.get("bot-hourly")
    assert state.schedule is not None
    assert "rest_error" not in state.details
    assert emu.token_requests == before + 1
    rest = [c for c in emu.calls if c.path.startswith(REST_PATH)]
    assert [c.status for c in rest[-2:]] == [401, 200]


async def test_find_by_name_is_case_insensitive(provider: SfmcAutomationProvider) -> None:
    hits = await provider.find_by_name("Bot Daily Send")
    assert [h.key for h in hits] == ["bot-daily"]
    hits = await provider.find_by_name("bot daily SEND")
    assert [h.key for h in hits] == ["bot-daily"]
    assert await provider.find_by_name("No Such Automation") == []


async def test_search_matches_key_or_name(provider: SfmcAutomationProvider) -> None:
    hits = await provider.search("bot daily")
    assert [h.key for h in hits] == [
        "bot-daily-resend",
        "bot-daily",
        "bot-daily-test",
    ]
    assert hits[1].raw_status == "6 Scheduled"
    assert len(await provider.search("", limit=3)) == 3
    assert [h.key for h in await provider.search("BOT-HOURLY")] == ["bot-hourly"]


async def test_retrieve_follows_more_data_available(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    emu.settings.page_size = 2
    total = len(emu.tenant.automations_of(STAGING_MID))
    assert total > 10
    hits = await provider.search("", limit=1000)
    assert len({h.id for h in hits}) == total
    assert len(soap_calls(emu, "Retrieve")) == math.ceil(total / 2)
    states = await provider.list_states()
    assert len(states) == total


async def test_list_states_paused_only(provider: SfmcAutomationProvider, emu: SfmcEmulator) -> None:
    expected = {a.key for a in emu.tenant.automations_of(STAGING_MID) if a.status == 4}
    paused = await provider.list_states(paused_only=True)
    assert "bot-weekly" in expected
    assert {s.target.key for s in paused} == expected
    assert all(s.state is NormalState.PAUSED for s in paused)


# --------------------------------------------------------------------------- verbs


async def test_pause_snapshots_then_pauses(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    before = rest_schedule(emu, "bot-daily")
    state = await provider.get("bot-daily")
    receipt = await provider.pause(state, options=UNTIMED, versions=ALL)
    assert receipt.request_id is not None
    assert GUID.match(receipt.request_id)
    assert receipt.message is not None
    assert receipt.message.startswith("Schedule Paused")
    assert emu.automation(STAGING_MID, "bot-daily").status == 4
    snap = await provider.snapshots.get(STAGING_MID, state.target.id)
    assert snap is not None
    assert snap.ical_recur == before["icalRecur"]
    assert snap.start == datetime.fromisoformat(before["startDate"])
    assert snap.timezone_id == before["timezoneId"]
    after = await provider.get("bot-daily")
    assert after.state is NormalState.PAUSED


async def test_pause_keeps_the_schedule_its_state_was_just_read_with(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")  # SOAP Retrieve + the REST read of the schedule
    assert state.schedule is not None
    emu.clear_calls()
    await provider.pause(state, options=UNTIMED, versions=ALL)
    assert not [c for c in emu.calls if c.path.startswith(REST_PATH)]  # no second read
    snap = await provider.snapshots.get(STAGING_MID, state.target.id)
    assert snap == state.schedule


async def test_pause_reads_the_schedule_when_its_state_has_none(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    before = rest_schedule(emu, "bot-daily")
    state = (await provider.get_many(["bot-daily"]))["bot-daily"]  # SOAP only
    assert state.schedule is None
    await provider.pause(state, options=UNTIMED, versions=ALL)
    snap = await provider.snapshots.get(STAGING_MID, state.target.id)
    assert snap is not None
    assert snap.ical_recur == before["icalRecur"]
    assert emu.automation(STAGING_MID, "bot-daily").status == 4


async def test_pause_then_resume_restores_the_snapshot(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    before = emu.automation(STAGING_MID, "bot-daily").schedule
    assert before is not None
    state = await provider.get("bot-daily")
    await provider.pause(state, options=UNTIMED, versions=ALL)
    # Someone edits the stored schedule while paused: resume must restore the snapshot.
    with emu.tenant.lock:
        stored = emu.tenant.automation_by_key(STAGING_MID, "bot-daily")
        assert stored is not None
        assert stored.schedule is not None
        stored.schedule.interval = 3
        stored.schedule.timezone_id = 7
    paused = await provider.get("bot-daily")
    receipt = await provider.resume(paused, versions=ALL)
    assert receipt.request_id is not None
    assert GUID.match(receipt.request_id)
    assert receipt.message == "Program scheduled."
    after = emu.automation(STAGING_MID, "bot-daily")
    assert after.status == 6
    assert after.schedule is not None
    assert after.schedule.recurrence_type == before.recurrence_type == "Daily"
    assert after.schedule.interval == before.interval == 1
    assert after.schedule.pattern_type == "Interval"
    assert after.schedule.range_type == before.range_type == "EndOn"
    assert after.schedule.end == before.end
    assert after.schedule.timezone_id == before.timezone_id == 5
    assert after.schedule.ical_recur() == before.ical_recur()
    # The start is moved forward by whole days to the next 07:00 (Berlin time).
    assert before.start == datetime(2024, 1, 8, 7, 0)
    assert after.schedule.start == datetime(2026, 3, 3, 7, 0)
    resumed = await provider.get("bot-daily")
    assert resumed.state is NormalState.ACTIVE


async def test_resume_after_restart_reads_the_schedule_back(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator
) -> None:
    first = make()
    state = await first.get("bot-hourly")
    await first.pause(state, options=UNTIMED, versions=ALL)
    restarted = make(snapshots=InMemoryScheduleSnapshots())  # empty: the process restarted
    paused = await restarted.get("bot-hourly")
    assert await restarted.snapshots.get(STAGING_MID, paused.target.id) is None
    await restarted.resume(paused, versions=ALL)
    after = emu.automation(STAGING_MID, "bot-hourly")
    assert after.status == 6
    assert after.schedule is not None
    assert after.schedule.ical_recur() == "FREQ=HOURLY;UNTIL=20790606T080000;INTERVAL=1"
    # 13:00 Berlin now; hourly from 2024-01-08 00:00 -> the 13:00 run is exactly now.
    assert after.schedule.start == datetime(2026, 3, 2, 13, 0)


async def test_resume_weekly_and_monthly_from_the_rest_read(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    weekly = await provider.get("bot-weekly")  # seeded paused, no snapshot
    await provider.resume(weekly, versions=ALL)
    w = emu.automation(STAGING_MID, "bot-weekly")
    assert w.status == 6
    assert w.schedule is not None
    assert w.schedule.weekdays == ("Monday",)
    assert w.schedule.ical_recur() == "FREQ=WEEKLY;UNTIL=20790606T080000;INTERVAL=1;BYDAY=MO"
    assert w.schedule.start == datetime(2026, 3, 9, 6, 0)  # today's 06:00 has passed

    monthly = await provider.get("bot-monthly")  # Ready, EndAfter 36 occurrences
    await provider.resume(monthly, versions=ALL)
    m = emu.automation(STAGING_MID, "bot-monthly")
    assert m.status == 6
    assert m.schedule is not None
    assert m.schedule.ical_recur() == "FREQ=MONTHLY;COUNT=36;INTERVAL=1;BYMONTHDAY=1"
    assert (m.schedule.range_type, m.schedule.occurrences) == ("EndAfter", 36)


async def test_resume_without_any_schedule_refuses(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    emu.add_automation(STAGING_MID, key="no-schedule", name="No Schedule", status=4)
    state = await provider.get("no-schedule")
    with pytest.raises(InvalidState, match="needs a schedule") as caught:
        await provider.resume(state, versions=ALL)
    assert caught.value.current_state == "4 Paused"
    assert soap_calls(emu, "Schedule") == []
    assert soap_calls(emu, "Perform") == []  # never "run once" instead
    assert emu.automation(STAGING_MID, "no-schedule").status == 4


async def test_pause_without_a_readable_schedule_refuses(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")
    state = state.model_copy(update={"schedule": None})
    emu.knobs.set(fail_next_5xx=10, path_filter=REST_PATH)
    with pytest.raises(ProviderError, match="schedule could not be read"):
        await provider.pause(state, options=UNTIMED, versions=ALL)
    assert soap_calls(emu, "Schedule") == []
    assert emu.automation(STAGING_MID, "bot-daily").status == 6


async def test_run_once_and_stop(provider: SfmcAutomationProvider, emu: SfmcEmulator) -> None:
    state = await provider.get("bot-monthly")
    receipt = await provider.run(state)
    assert receipt.request_id is not None
    assert GUID.match(receipt.request_id)
    assert receipt.message == "Performed Activity"
    assert emu.automation(STAGING_MID, "bot-monthly").status == 3
    running = await provider.get("bot-monthly")
    assert running.state is NormalState.RUNNING
    assert running.last_run == T0

    receipt = await provider.stop(running, versions=ALL)
    assert receipt.request_id is not None
    assert GUID.match(receipt.request_id)
    assert emu.automation(STAGING_MID, "bot-monthly").status == 5
    assert (await provider.get("bot-monthly")).state is NormalState.STOPPED


async def test_run_on_a_paused_automation_is_a_result_error(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-weekly")
    with pytest.raises(ProviderError) as caught:
        await provider.run(state)
    assert caught.value.code == "30002"
    assert caught.value.provider_message is not None
    assert "does not unpause" in caught.value.provider_message
    assert emu.automation(STAGING_MID, "bot-weekly").status == 4


async def test_overall_status_error_in_http_200(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    with pytest.raises(ProviderError, match="Unable to find a handler") as caught:
        await provider.soap.retrieve("Automaton", ["ObjectID"])
    assert caught.value.http_status == 200
    assert caught.value.provider_message is not None
    assert caught.value.provider_message.startswith("Error: ")
    with pytest.raises(ProviderError, match="No Definitions"):
        await provider.soap.perform("start", [])
    assert len(soap_calls(emu, "Retrieve")) == 1  # not retried


# --------------------------------------------------------------------------- failures


async def test_token_expired_refreshes_once_and_retries_once(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")
    tokens_before = emu.token_requests
    emu.clear_calls()
    emu.knobs.set(expire_tokens_next=1, path_filter=SOAP_PATH)
    await provider.run(state)  # Perform: only the token retry, nothing else
    calls = soap_calls(emu, "Perform")
    assert [(c.status, c.knob) for c in calls] == [(500, "expire_token"), (200, None)]
    assert emu.token_requests == tokens_before + 1
    assert emu.automation(STAGING_MID, "bot-daily").status == 3


async def test_token_expired_twice_is_an_auth_error(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    await provider.get("bot-daily")
    tokens_before = emu.token_requests
    emu.clear_calls()
    emu.knobs.set(expire_tokens_next=2, path_filter=SOAP_PATH)
    with pytest.raises(AuthError) as caught:
        await provider.get("bot-daily")
    assert caught.value.code == "Security"
    assert caught.value.provider_message == "Token Expired"
    assert len(soap_calls(emu)) == 2
    assert emu.token_requests == tokens_before + 1


async def test_login_failed_is_an_auth_error_without_refresh(
    emu: SfmcEmulator, base_url: str, http: httpx.AsyncClient, tokens: TokenProvider
) -> None:
    class BogusTokens(TokenProvider):
        async def token(self) -> SfmcToken:
            real = await super().token()
            return real.model_copy(update={"access_token": SecretStr("not-a-token")})

    bogus = BogusTokens(
        auth_url=base_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        account_id=STAGING_MID,
        http=http,
    )
    client = SoapClient(tokens=bogus, http=http)
    with pytest.raises(AuthError) as caught:
        await client.retrieve("Automation", ["ObjectID"])
    assert (caught.value.code, caught.value.provider_message) == ("Security", "Login failed")
    assert len(soap_calls(emu)) == 1
    assert emu.token_requests == 1


async def test_rate_limit_fault_is_bounded(
    provider: SfmcAutomationProvider, emu: SfmcEmulator, sleeps: list[float]
) -> None:
    state = await provider.get("bot-daily")
    emu.clear_calls()
    emu.knobs.set(rate_limit_next=10, path_filter=SOAP_PATH)
    with pytest.raises(RateLimited) as caught:
        await provider.get("bot-daily")
    assert caught.value.code == "17"
    assert caught.value.retryable
    assert len(soap_calls(emu)) == 3  # read attempts, then give up
    assert len(sleeps) == 2
    assert all(0 < s <= 30 for s in sleeps)
    assert sleeps[1] > sleeps[0]

    emu.clear_calls()
    with pytest.raises(RateLimited):
        await provider.run(state)
    assert len(soap_calls(emu)) == 1  # Perform is never retried
    assert emu.automation(STAGING_MID, "bot-daily").status == 6


async def test_retrieve_retries_a_transient_server_fault(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")
    emu.clear_calls()
    emu.knobs.set(fail_next_5xx=1, path_filter=SOAP_PATH)
    again = await provider.get("bot-daily")
    assert again.state is NormalState.ACTIVE
    assert [c.status for c in soap_calls(emu)] == [500, 200]

    emu.clear_calls()
    emu.knobs.set(fail_next_5xx=1, path_filter=SOAP_PATH)
    with pytest.raises(ProviderError) as caught:
        await provider.pause(state, options=UNTIMED, versions=ALL)
    assert (caught.value.code, caught.value.retryable) == ("2", True)
    assert len(soap_calls(emu, "Schedule")) == 1
    assert emu.automation(STAGING_MID, "bot-daily").status == 6


async def test_malformed_body_is_a_retryable_provider_error(
    provider: SfmcAutomationProvider, emu: SfmcEmulator
) -> None:
    state = await provider.get("bot-daily")
    emu.knobs.set(malformed_next=1, path_filter=SOAP_PATH)
    with pytest.raises(ProviderError, match="not SOAP") as caught:
        await provider.run(state)
    assert caught.value.retryable
    assert emu.automation(STAGING_MID, "bot-daily").status == 6

    emu.clear_calls()
    emu.knobs.set(malformed_next=1, path_filter=SOAP_PATH)
    assert (await provider.get("bot-daily")).state is NormalState.ACTIVE
    assert len(soap_calls(emu)) == 2  # a read retries past one garbage body


async def test_timeouts_are_retryable_provider_errors(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator
) -> None:
    quick = make(timeout=httpx.Timeout(0.2))
    state = await quick.get("bot-daily")
    emu.knobs.set(latency_ms=600, path_filter=SOAP_PATH)
    with pytest.raises(ProviderError, match="timed out") as caught:
        await quick.run(state)
    assert caught.value.retryable


# --------------------------------------------------------------------------- the raw-element edge


RETRIEVE_WITH_UNKNOWN_ELEMENT = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soap:Body>
  <RetrieveResponseMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">
   <OverallStatus>OK</OverallStatus>
   <RequestID>f3b7c1d0-0000-4000-8000-000000000001</RequestID>
   <Results xsi:type="Automation">
    <PartnerKey xsi:nil="true"/>
    <ObjectID>0c6b3a52-0000-4000-8000-00000000abcd</ObjectID>
    <CustomerKey>raw-key</CustomerKey>
    <IsPlatformObject>false</IsPlatformObject>
    <Name>Raw Name</Name>
    <Status>4</Status>
   </Results>
  </RetrieveResponseMsg>
 </soap:Body>
</soap:Envelope>"""


@pytest.mark.parametrize("wsdl", ["own", "partner"])
async def test_fields_after_an_unknown_element_are_still_read(wsdl: str) -> None:
    partner = PARTNER_WSDL
    if wsdl == "partner" and not partner.is_file():
        pytest.skip(f"the partner WSDL is not at {partner}")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=RETRIEVE_WITH_UNKNOWN_ELEMENT)

    class StaticTokens(TokenProvider):
        async def token(self) -> SfmcToken:
            return SfmcToken(
                access_token=SecretStr("t"),
                expires_at=datetime.now(UTC) + timedelta(hours=1),
                rest_instance_url="http://127.0.0.1:9/",
                soap_instance_url="http://127.0.0.1:9/",
            )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        static = StaticTokens(
            auth_url="http://127.0.0.1:9",
            client_id="c",
            client_secret=SecretStr("s"),
            account_id=1,
            http=http,
        )
        client = SoapClient(
            tokens=static, http=http, wsdl_path=partner if wsdl == "partner" else None
        )
        response = await client.retrieve(
            "Automation", ["ObjectID"], filter=SimpleFilter.equals("CustomerKey", "raw-key")
        )
    (row,) = response.results
    assert row["CustomerKey"] == "raw-key"
    assert row["Name"] == "Raw Name"
    assert int(row["Status"]) == 4
    assert "_raw_elements" not in row


# --------------------------------------------------------------------------- snapshots


async def test_json_file_snapshots_survive_a_restart(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "snapshots.json"
    first = make(snapshots=JsonFileScheduleSnapshots(path))
    state = await first.get("bot-daily")
    await first.pause(state, options=UNTIMED, versions=ALL)
    with emu.tenant.lock:
        stored = emu.tenant.automation_by_key(STAGING_MID, "bot-daily")
        assert stored is not None
        assert stored.schedule is not None
        stored.schedule.interval = 4  # the stored schedule drifts; the snapshot wins
    second = make(snapshots=JsonFileScheduleSnapshots(path))
    await second.resume(await second.get("bot-daily"), versions=ALL)
    after = emu.automation(STAGING_MID, "bot-daily")
    assert after.schedule is not None
    assert after.schedule.interval == 1


async def test_snapshot_stores_round_trip(tmp_path: Path) -> None:
    schedule = Schedule(
        ical_recur="FREQ=DAILY;INTERVAL=1",
        start=datetime(2025, 1, 1, 7, 0),
        end=datetime(2079, 6, 6, 8, 0),
        timezone_id=5,
        timezone_name="W. Europe Standard Time",
        status="active",
    )
    stores: list[ScheduleSnapshots] = [
        InMemoryScheduleSnapshots(),
        JsonFileScheduleSnapshots(tmp_path / "a" / "s.json"),
    ]
    for store in stores:
        assert await store.get(1, "ABC") is None
        await store.put(1, "ABC", schedule)
        assert await store.get(1, "abc") == schedule
        assert await store.get(2, "abc") is None
    reopened = JsonFileScheduleSnapshots(tmp_path / "a" / "s.json")
    assert await reopened.get(1, "abc") == schedule


# --------------------------------------------------------------------------- recurrence


def _schedule(ical: str, start: datetime, **extra: Any) -> Schedule:
    return Schedule(
        ical_recur=ical,
        start=start,
        timezone_id=5,
        timezone_name="W. Europe Standard Time",
        **extra,
    )


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ical", "xsi", "rtype", "recurrence"),
    [
        (
            "FREQ=MINUTELY;INTERVAL=15",
            "MinutelyRecurrence",
            "Minutely",
            {"MinutelyRecurrencePatternType": "Interval", "MinuteInterval": 15},
        ),
        (
            "FREQ=HOURLY;INTERVAL=2",
            "HourlyRecurrence",
            "Hourly",
            {"HourlyRecurrencePatternType": "Interval", "HourInterval": 2},
        ),
        (
            "FREQ=DAILY;INTERVAL=1",
            "DailyRecurrence",
            "Daily",
            {"DailyRecurrencePatternType": "Interval", "DayInterval": 1},
        ),
        (
            "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
            "DailyRecurrence",
            "Daily",
            {"DailyRecurrencePatternType": "EveryWeekDay"},
        ),
        (
            "FREQ=MONTHLY;INTERVAL=1;BYDAY=2TU",
            "MonthlyRecurrence",
            "Monthly",
            {
                "MonthlyRecurrencePatternType": "ByWeek",
                "MonthlyInterval": 1,
                "ScheduledWeek": "second",
                "ScheduledDayOfWeek": "Tuesday",
            },
        ),
        (
            "FREQ=MONTHLY;INTERVAL=3",
            "MonthlyRecurrence",
            "Monthly",
            {"MonthlyRecurrencePatternType": "ByDay", "MonthlyInterval": 3, "ScheduledDay": 8},
        ),
    ],
)
def test_ical_maps_to_typed_recurrence(
    ical: str, xsi: str, rtype: str, recurrence: dict[str, Any]
) -> None:
    spec = build_spec(_schedule(ical, datetime(2027, 1, 8, 7, 0)), now=NOW)
    assert (spec.recurrence_xsi, spec.recurrence_type, spec.recurrence) == (xsi, rtype, recurrence)
    assert spec.start == datetime(2027, 1, 8, 7, 0)  # in the future: unchanged
    assert spec.range_type is None
    assert spec.timezone_id == 5


def test_weekly_without_byday_uses_the_start_day() -> None:
    spec = build_spec(_schedule("FREQ=WEEKLY;INTERVAL=2", datetime(2027, 1, 6, 9, 0)), now=NOW)
    assert spec.recurrence["WeeklyRecurrencePatternType"] == "ByDay"
    assert spec.recurrence["WeekInterval"] == 2
    assert [d for d in ("Monday", "Wednesday") if spec.recurrence[d]] == ["Wednesday"]


def test_ranges_follow_the_schedule() -> None:
    counted = build_spec(_schedule("FREQ=DAILY;COUNT=10", datetime(2027, 1, 1)), now=NOW)
    assert (counted.range_type, counted.occurrences, counted.end) == ("EndAfter", 10, None)
    until = build_spec(_schedule("FREQ=DAILY;UNTIL=20790606T080000", datetime(2027, 1, 1)), now=NOW)
    assert (until.range_type, until.end) == ("EndOn", datetime(2079, 6, 6, 8, 0))
    with pytest.raises(ScheduleError, match="never run again"):
        build_spec(_schedule("FREQ=DAILY", datetime(2020, 1, 1), end=datetime(2021, 1, 1)), now=NOW)


def test_start_in_the_past_moves_forward_by_whole_periods() -> None:
    minutely = build_spec(
        _schedule("FREQ=MINUTELY;INTERVAL=5", datetime(2026, 3, 2, 12, 3)), now=NOW
    )
    assert minutely.start == datetime(2026, 3, 2, 13, 3)  # 13:00 Berlin -> 13:03
    monthly = build_spec(_schedule("FREQ=MONTHLY;INTERVAL=2", datetime(2025, 1, 31, 2)), now=NOW)
    assert monthly.start == datetime(2026, 3, 31, 2, 0)


@pytest.mark.parametrize("ical", ["FREQ=YEARLY", "FREQ=SECONDLY", "INTERVAL=1", "junk"])
def test_unsupported_recurrences_are_refused(ical: str) -> None:
    with pytest.raises(ScheduleError):
        build_spec(_schedule(ical, datetime(2027, 1, 1)), now=NOW)


def test_rest_schedule_and_times() -> None:
    body = {
        "icalRecur": "FREQ=DAILY;UNTIL=20790606T080000;INTERVAL=1",
        "startDate": "2024-01-08T07:00:00",
        "endDate": "2079-06-06T08:00:00",
        "timezoneId": 5,
        "timezoneName": "W. Europe Standard Time",
        "scheduleStatus": "active",
    }
    schedule = schedule_from_rest(body)
    assert schedule is not None
    assert parse_ical(schedule.ical_recur or "")["UNTIL"] == "20790606T080000"
    assert next_run(schedule, now=NOW) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    assert schedule_from_rest(None) is None
    assert system_time("2026-03-02T06:00:00.000") == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- packaging


def test_the_wsdl_ships_inside_the_package() -> None:
    path = default_wsdl_path()
    assert path.is_file()
    assert path.parent.name == "wsdl"
    assert path.parent.parent.name == "sfmc"
    document = load_document(path)
    operations = set(
        document.bindings["{http://exacttarget.com/wsdl/partnerAPI}SoapBinding"]._operations
    )
    assert operations == {"Retrieve", "Perform", "Schedule"}


# --------------------------------------------------------------------------- many at once


async def test_get_many_reads_many_keys_with_one_retrieve_per_chunk(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator
) -> None:
    import providers.sfmc.automations as automations

    provider = make()
    emu.clear_calls()
    found = await provider.get_many(["bot-daily", "bot-weekly", "nope", " bot-hourly "])
    assert sorted(found) == ["bot-daily", "bot-hourly", "bot-weekly"]  # the unknown is left out
    assert found["bot-weekly"].raw_status == "4 Paused"
    assert found["bot-daily"].state is NormalState.ACTIVE
    assert len(soap_calls(emu, "Retrieve")) == 1
    assert [c for c in emu.calls if "/automation/v1/" in c.path] == []  # SOAP only
    emu.clear_calls()
    original = automations.IN_CHUNK
    automations.IN_CHUNK = 2
    try:
        keys = ["bot-daily", "bot-daily-resend", "bot-hourly", "bot-weekly", "bot-monthly"]
        assert sorted(await provider.get_many(keys)) == sorted(keys)
    finally:
        automations.IN_CHUNK = original
    assert len(soap_calls(emu, "Retrieve")) == 3  # 2 + 2 + 1 keys
    assert await provider.get_many([]) == {}


async def test_resume_many_uses_the_kept_snapshots_and_answers_each(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator
) -> None:
    provider = make()
    daily = await provider.get("bot-daily")
    hourly = await provider.get("bot-hourly")
    for state in (daily, hourly):
        await provider.pause(state, options=PauseOptions(), versions=VersionSelector())
    paused = await provider.get_many(["bot-daily", "bot-hourly", "bot-waiting"])
    emu.clear_calls()
    answers = await provider.resume_many(
        [paused["bot-daily"], paused["bot-hourly"], paused["bot-waiting"]]
    )
    assert [type(a).__name__ for a in answers] == ["ActionReceipt", "ActionReceipt", "InvalidState"]
    assert len(soap_calls(emu, "Schedule")) == 2  # nothing sent for the one without a schedule
    assert [c for c in emu.calls if "/automation/v1/" in c.path] != []  # its REST fallback
    assert emu.automation(STAGING_MID, "bot-daily").status == 6
    assert emu.automation(STAGING_MID, "bot-hourly").status == 6
    assert rest_schedule(emu, "bot-daily")["icalRecur"].startswith("FREQ=DAILY")


async def test_calls_are_capped_and_spread_over_the_accounts_pools(
    make: Callable[..., SfmcAutomationProvider], emu: SfmcEmulator, http: httpx.AsyncClient
) -> None:
    from providers.http import CallLimit

    in_flight = {"now": 0, "peak": 0}
    per_client: list[int] = []

    def hooks(index: int) -> dict[str, list[Callable[..., Any]]]:
        async def sent(request: httpx.Request) -> None:
            in_flight["now"] += 1
            in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
            per_client[index] += 1

        async def answered(response: httpx.Response) -> None:
            in_flight["now"] -= 1

        return {"request": [sent], "response": [answered]}

    limit = CallLimit.pooled(4)
    assert len(limit.clients) == 1  # 4 calls fit one pool of 5 connections
    limit = CallLimit(
        3,
        clients=[
            httpx.AsyncClient(trust_env=False, event_hooks=hooks(i), timeout=10.0) for i in range(3)
        ],
    )
    per_client.extend([0, 0, 0])
    provider = make(limit=limit)
    emu.knobs.set(latency_ms=30)
    try:
        keys = ["bot-daily", "bot-hourly", "bot-weekly", "bot-monthly", "bot-error", "bot-waiting"]
        await asyncio.gather(*(provider.get(k) for k in keys))
    finally:
        emu.knobs.set(latency_ms=0)
        await limit.aclose()
    assert in_flight["peak"] <= 3  # never more than the account's limit
    assert min(per_client) >= 2  # every pool carried its share (12 calls: SOAP + REST)
    assert all(c.is_closed for c in limit.clients)
