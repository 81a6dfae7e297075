"""The scrip adapter against the scrip emulator over real HTTP.

Time is fake: :class:`FakeTime` drives the adapter's pacing and backoff and moves the
emulator's (frozen) clock by the same amount, so rate-limit behaviour is exact and nothing
really sleeps.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from bot.domain.errors import (
    AuthError,
    ConfigError,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
    Unsupported,
)
from bot.domain.models import NormalState, PauseOptions, TargetKind, TargetState, VersionSelector
from bot.service.ports import Provider
from providers.scrip import ScripProvider, TokenBucket
from sandbox.clock import Clock
from sandbox.scrip import SANDBOX_API_KEY, SANDBOX_PROGRAM_ID, TRIGGER_REFUSED, ScripEmulator
from sandbox.server import ServerThread

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
ALL = VersionSelector()
UNTIMED = PauseOptions()


class FakeTime:
    """A monotonic clock and sleep that move the emulator clock too."""

    def __init__(self, emulator: ScripEmulator) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._emulator = emulator

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self._emulator.clock.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScripEmulator, str]]:
    emulator = ScripEmulator(clock=Clock(frozen_at=T0))
    with ServerThread(emulator.app) as thread:
        yield emulator, thread.url


@pytest.fixture
def emu(server: tuple[ScripEmulator, str]) -> ScripEmulator:
    emulator, _ = server
    emulator.clock.freeze(T0)
    emulator.reset()
    return emulator


@pytest.fixture
def base_url(server: tuple[ScripEmulator, str]) -> str:
    return f"{server[1]}/v1"


@pytest.fixture
def fake_time(emu: ScripEmulator) -> FakeTime:
    return FakeTime(emu)


def make(base_url: str, fake_time: FakeTime, **overrides: Any) -> ScripProvider:
    settings: dict[str, Any] = {
        "environment": "staging",
        "base_url": base_url,
        "api_key": SecretStr(SANDBOX_API_KEY),
        "program_id": SANDBOX_PROGRAM_ID,
        "clock": fake_time.monotonic,
        "sleep": fake_time.sleep,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return ScripProvider(**settings)


@pytest.fixture
async def scrip(base_url: str, fake_time: FakeTime) -> AsyncIterator[ScripProvider]:
    provider = make(base_url, fake_time)
    yield provider
    await provider.aclose()


async def state_of(scrip: ScripProvider, emu: ScripEmulator, name: str) -> TargetState:
    return await scrip.get(emu.find(name)["id"])


def requests(emu: ScripEmulator) -> list[tuple[str, int]]:
    return [(c.method, c.status) for c in emu.calls]


# ------------------------------------------------------------------------------ reads
def test_satisfies_the_provider_protocol(scrip: ScripProvider) -> None:
    provider: Provider = scrip
    assert provider.kind is TargetKind.SCRIP
    assert SANDBOX_API_KEY not in repr(scrip)


@pytest.mark.parametrize(
    ("name", "state", "raw"),
    [
        ("Nightly Points Expiry", NormalState.ACTIVE, "active"),
        ("Double Points Weekend", NormalState.PAUSED, "paused"),
        ("Birthday Bonus", NormalState.ACTIVE, "active/idle"),
        ("Streak Reminder Fanout", NormalState.RUNNING, "active/executing"),
        ("Spring Promo Kickoff", NormalState.INACTIVE, "completed"),
        ("Legacy Signup Bonus", NormalState.ARCHIVED, "archived/completed"),
        ("Welcome Points Drip", NormalState.ACTIVE, "active/completed"),
    ],
)
async def test_get_maps_states(
    scrip: ScripProvider, emu: ScripEmulator, name: str, state: NormalState, raw: str
) -> None:
    got = await state_of(scrip, emu, name)
    assert got.state is state
    assert got.raw_status == raw
    assert got.target.name == name
    assert got.target.key == got.target.id == emu.find(name)["id"]
    assert got.target.kind is TargetKind.SCRIP
    assert got.target.environment == "staging"


async def test_get_failed_status_is_error(scrip: ScripProvider, emu: ScripEmulator) -> None:
    broken = emu.add_automation(name="Broken", trigger_type="one_time", status="failed")
    assert (await scrip.get(broken["id"])).state is NormalState.ERROR


async def test_get_carries_schedule_and_fanout_details(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    nightly = await state_of(scrip, emu, "Nightly Points Expiry")
    assert nightly.next_run == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    assert nightly.last_run == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert nightly.details["trigger_type"] == "cron"
    assert nightly.details["scope"] == "program"
    assert nightly.execution_status is None
    fanout = await state_of(scrip, emu, "Streak Reminder Fanout")
    assert fanout.execution_status == "executing"
    assert fanout.population == 5000
    assert fanout.details["participants_processed"] == 1800
    assert fanout.details["participants_total"] == 5000


async def test_get_non_uuid_is_not_found_without_a_call(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    with pytest.raises(NotFound, match="UUID"):
        await scrip.get("Nightly Points Expiry")
    assert emu.calls == []


async def test_get_unknown_uuid_is_not_found(scrip: ScripProvider, emu: ScripEmulator) -> None:
    with pytest.raises(NotFound, match=UNKNOWN_ID):
        await scrip.get(UNKNOWN_ID)
    assert requests(emu) == [("GET", 404)]


async def test_find_by_name_follows_every_cursor(
    base_url: str, fake_time: FakeTime, emu: ScripEmulator
) -> None:
    for name in ("Bonus", "Bonus Boost", "Bonus Blast"):
        emu.add_automation(name=name)
    async with make(base_url, fake_time, page_size=1) as scrip:
        found = await scrip.find_by_name("bonus")
        assert [s.name for s in found] == ["Bonus"]
        assert found[0].kind is TargetKind.SCRIP
        assert found[0].raw_status == "active"
        # "Bonus", "Bonus Boost", "Bonus Blast", "Birthday Bonus": four pages of one.
        calls = emu.calls
        assert len(calls) == 4
        assert all("search=bonus" in c.query for c in calls)
        assert all("limit=1" in c.query for c in calls)
        assert ["cursor=" in c.query for c in calls] == [False, True, True, True]
        assert await scrip.find_by_name("birthday BONUS") != []
        assert await scrip.find_by_name("Birthday") == []


async def test_search_is_partial_and_limited(scrip: ScripProvider, emu: ScripEmulator) -> None:
    points = await scrip.search("points")
    assert len(points) == 4
    assert all("points" in s.name.lower() for s in points)
    assert len(await scrip.search("points", limit=2)) == 2
    assert len(await scrip.search("", limit=3)) == 3
    nightly_id = emu.find("Nightly Points Expiry")["id"]
    by_id = await scrip.search(nightly_id)
    assert [s.name for s in by_id] == ["Nightly Points Expiry"]
    assert await scrip.search(UNKNOWN_ID) == []


async def test_list_states_reads_all_pages(
    base_url: str, fake_time: FakeTime, emu: ScripEmulator
) -> None:
    async with make(base_url, fake_time, page_size=4) as scrip:
        states = await scrip.list_states()
        assert len(states) == 9  # the archived one is left out
        assert len(emu.calls) == 3
        emu.clear_calls()
        paused = await scrip.list_states(paused_only=True)
        assert [s.target.name for s in paused] == ["Double Points Weekend"]
        assert paused[0].state is NormalState.PAUSED
        assert "status=paused" in emu.calls[0].query


# ------------------------------------------------------------------------------ verbs
async def test_pause_then_resume(scrip: ScripProvider, emu: ScripEmulator) -> None:
    before = await state_of(scrip, emu, "Nightly Points Expiry")
    receipt = await scrip.pause(before, options=UNTIMED, versions=ALL)
    assert receipt.request_id is None
    assert receipt.message is not None
    assert receipt.message.startswith("Paused")
    assert emu.find("Nightly Points Expiry")["status"] == "paused"
    paused = await scrip.get(before.target.id)
    assert paused.state is NormalState.PAUSED
    receipt = await scrip.resume(paused, versions=ALL)
    assert receipt.message is not None
    assert "Next run at 2026-03-03T02:00" in receipt.message
    assert (await scrip.get(before.target.id)).state is NormalState.ACTIVE
    assert [c.method for c in emu.calls] == ["GET", "PATCH", "GET", "PATCH", "GET"]


async def test_pause_during_a_fanout_says_the_run_continues(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    running = await state_of(scrip, emu, "Streak Reminder Fanout")
    receipt = await scrip.pause(running, options=UNTIMED, versions=ALL)
    assert receipt.message is not None
    assert "continues" in receipt.message
    assert "1800/5000" in receipt.message
    after = await scrip.get(running.target.id)
    assert after.state is NormalState.PAUSED
    assert after.raw_status == "paused/executing"


async def test_run_a_participant_fanout(scrip: ScripProvider, emu: ScripEmulator) -> None:
    idle = await state_of(scrip, emu, "Birthday Bonus")
    receipt = await scrip.run(idle)
    assert receipt.message is not None
    assert "pending" in receipt.message
    after = await scrip.get(idle.target.id)
    assert after.state is NormalState.RUNNING
    assert after.raw_status == "active/pending"
    assert emu.calls[1].method == "POST"
    assert emu.calls[1].path.endswith("/trigger")


async def test_run_a_program_cron_moves_its_last_run(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    before = await state_of(scrip, emu, "Weekly Tier Recalculation")
    receipt = await scrip.run(before)
    assert receipt.message == "Triggered: the next run was moved to now."
    after = await scrip.get(before.target.id)
    assert after.last_run == T0
    assert before.last_run is None or after.last_run > before.last_run


async def test_stop_cancels_the_current_run(scrip: ScripProvider, emu: ScripEmulator) -> None:
    running = await state_of(scrip, emu, "Streak Reminder Fanout")
    receipt = await scrip.stop(running, versions=ALL)
    assert receipt.message is not None
    assert "1800/5000" in receipt.message
    after = await scrip.get(running.target.id)
    assert after.state is NormalState.ACTIVE
    assert after.raw_status == "active/failed"
    assert emu.calls[1].path.endswith("/cancel")


async def test_no_verb_ever_sends_delete(scrip: ScripProvider, emu: ScripEmulator) -> None:
    for name in ("Nightly Points Expiry", "Birthday Bonus"):
        state = await state_of(scrip, emu, name)
        await scrip.pause(state, options=UNTIMED, versions=ALL)
        state = await scrip.get(state.target.id)
        await scrip.resume(state, versions=ALL)
        await scrip.run(await scrip.get(state.target.id))
    await scrip.stop(await state_of(scrip, emu, "Birthday Bonus"), versions=ALL)
    await scrip.list_states()
    await scrip.find_by_name("Birthday Bonus")
    methods = {c.method for c in emu.calls}
    assert methods == {"GET", "PATCH", "POST"}
    assert all(c.status < 400 for c in emu.calls)


# ---------------------------------------------------------------- provider refusals
async def test_run_a_paused_automation_names_its_state(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    paused = await state_of(scrip, emu, "Double Points Weekend")
    with pytest.raises(InvalidState) as caught:
        await scrip.run(paused)
    assert caught.value.current_state == "paused"
    assert TRIGGER_REFUSED in caught.value.message
    assert "Double Points Weekend" in caught.value.message
    assert requests(emu)[-1] == ("POST", 400)


async def test_run_while_a_run_is_in_progress(scrip: ScripProvider, emu: ScripEmulator) -> None:
    running = await state_of(scrip, emu, "Streak Reminder Fanout")
    with pytest.raises(InvalidState) as caught:
        await scrip.run(running)
    assert caught.value.current_state == "active/executing"


async def test_stop_with_no_run_in_progress(scrip: ScripProvider, emu: ScripEmulator) -> None:
    idle = await state_of(scrip, emu, "Birthday Bonus")
    with pytest.raises(InvalidState) as caught:
        await scrip.stop(idle, versions=ALL)
    assert caught.value.current_state == "active/idle"


async def test_pause_an_archived_automation_is_invalid_state(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    archived = await state_of(scrip, emu, "Legacy Signup Bonus")
    with pytest.raises(InvalidState) as caught:
        await scrip.resume(archived, versions=ALL)
    assert caught.value.current_state == "archived"
    assert requests(emu)[-1] == ("PATCH", 409)


async def test_untriggerable_kinds_are_unsupported(
    scrip: ScripProvider, emu: ScripEmulator
) -> None:
    watcher = await state_of(scrip, emu, "Tier Upgrade Watcher")
    with pytest.raises(Unsupported, match="participant_state"):
        await scrip.run(watcher)
    assert [c.method for c in emu.calls] == ["GET"]  # refused before calling
    # Without the trigger type at hand, scrip's own refusal says the same.
    bare = watcher.model_copy(update={"details": {}})
    with pytest.raises(Unsupported, match="cannot be triggered"):
        await scrip.run(bare)


async def test_vanished_automation_is_not_found(scrip: ScripProvider, emu: ScripEmulator) -> None:
    state = await state_of(scrip, emu, "Birthday Bonus")
    gone = state.model_copy(update={"target": state.target.model_copy(update={"id": UNKNOWN_ID})})
    with pytest.raises(NotFound):
        await scrip.pause(gone, options=UNTIMED, versions=ALL)


# ------------------------------------------------------------------- rate limiting
async def test_429_waits_for_retry_after_then_succeeds(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(rate_limit_next=2, retry_after_s=2)
    state = await state_of(scrip, emu, "Birthday Bonus")
    assert state.state is NormalState.ACTIVE
    assert fake_time.sleeps == [2.0, 2.0]
    assert requests(emu) == [("GET", 429), ("GET", 429), ("GET", 200)]


async def test_429_on_a_verb_is_retried_too(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    state = await state_of(scrip, emu, "Birthday Bonus")
    emu.knobs.set(rate_limit_next=1, retry_after_s=1)
    await scrip.run(state)
    assert fake_time.sleeps == [1.0]
    assert requests(emu)[-2:] == [("POST", 429), ("POST", 200)]


async def test_persistent_429_raises_rate_limited(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(rate_limit_next=100, retry_after_s=3)
    with pytest.raises(RateLimited) as caught:
        await scrip.list_states()
    error = caught.value
    assert error.retry_after == 3.0
    assert error.provider == "scrip"
    assert error.code == "too_many_requests"
    assert error.http_status == 429
    assert error.retryable
    assert fake_time.sleeps == [3.0, 3.0, 3.0]
    assert len(emu.calls) == 4  # one try and three retries


async def test_retry_after_beyond_the_cap_is_not_waited_for(
    base_url: str, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(rate_limit_next=1, retry_after_s=120)
    async with make(base_url, fake_time, max_retry_after=30.0) as scrip:
        with pytest.raises(RateLimited) as caught:
            await scrip.get(emu.find("Birthday Bonus")["id"])
    assert caught.value.retry_after == 120.0
    assert fake_time.sleeps == []


async def test_client_budget_keeps_35_quick_calls_under_the_server_limit(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    key = emu.find("Birthday Bonus")["id"]
    for _ in range(35):
        await scrip.get(key)
    assert requests(emu) == [("GET", 200)] * 35  # never a 429
    # 28 from the burst (2 of scrip's 30 kept spare), then one every 0.1 s.
    assert fake_time.sleeps == pytest.approx([0.1] * 7)
    assert fake_time.now == pytest.approx(0.7)


async def test_the_client_keeps_two_of_the_burst_spare(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime, base_url: str
) -> None:
    # Calls paced at exactly scrip's rate can still reach it bunched (a slow request, then
    # a quick one): with two tokens spare they are not throttled. Another caller of the
    # same organisation, at the same instant, gets them here.
    key = emu.find("Birthday Bonus")["id"]
    for _ in range(40):
        await scrip.get(key)
    async with make(base_url, fake_time) as other:
        other.bucket = TokenBucket(
            rate=1000, burst=1000, clock=fake_time.monotonic, sleep=fake_time.sleep
        )
        await asyncio.gather(other.get(key), other.get(key))
    assert requests(emu) == [("GET", 200)] * 42


async def test_without_the_budget_the_server_would_throttle(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    # Control for the test above: 35 calls with no pacing and no time passing.
    roomy = TokenBucket(rate=1000, burst=1000, clock=fake_time.monotonic, sleep=fake_time.sleep)
    scrip.bucket = roomy
    emu.knobs.set(retry_after_s=1)
    key = emu.find("Birthday Bonus")["id"]
    await asyncio.gather(*(scrip.get(key) for _ in range(35)))
    assert ("GET", 429) in requests(emu)


async def test_token_bucket_paces_and_holds() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate=10, burst=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        assert await bucket.acquire() == 0.0
    assert await bucket.acquire() == pytest.approx(0.1)
    bucket.hold(2.0)
    assert bucket.tokens == 0.0
    assert await bucket.acquire() == pytest.approx(2.0)
    assert slept == pytest.approx([0.1, 2.0])
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0)


async def test_token_bucket_is_shared_safely_by_concurrent_callers() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    bucket = TokenBucket(rate=10, burst=30, clock=lambda: now[0], sleep=sleep)
    taken_at: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        taken_at.append(now[0])

    await asyncio.gather(*(one() for _ in range(35)))
    assert taken_at[:30] == [0.0] * 30
    assert taken_at[30:] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert slept == pytest.approx([0.1] * 5)


# ---------------------------------------------------------------- other failures
async def test_bad_key_is_auth_error(
    base_url: str, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    async with make(base_url, fake_time, api_key=SecretStr("sk_revoked")) as scrip:
        with pytest.raises(AuthError) as caught:
            await scrip.list_states()
    error = caught.value
    assert (error.provider, error.code, error.http_status) == ("scrip", "unauthorized", 401)
    assert error.provider_message == "invalid or revoked API key"
    assert "sk_revoked" not in error.user_message()
    assert len(emu.calls) == 1  # never retried


async def test_5xx_on_get_is_retried_with_backoff(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(fail_next_5xx=2)
    state = await state_of(scrip, emu, "Birthday Bonus")
    assert state.state is NormalState.ACTIVE
    assert fake_time.sleeps == [0.5, 1.0]
    assert requests(emu) == [("GET", 500), ("GET", 500), ("GET", 200)]


async def test_persistent_5xx_is_a_retryable_provider_error(
    scrip: ScripProvider, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(error_5xx_rate=1.0)
    with pytest.raises(ProviderError) as caught:
        await scrip.list_states()
    error = caught.value
    assert error.retryable
    assert (error.provider, error.code, error.http_status) == ("scrip", "internal_error", 500)
    assert error.provider_message == "internal server error"
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert len(emu.calls) == 4


async def test_5xx_on_trigger_is_not_retried(scrip: ScripProvider, emu: ScripEmulator) -> None:
    state = await state_of(scrip, emu, "Birthday Bonus")
    emu.knobs.set(fail_next_5xx=1)
    with pytest.raises(ProviderError) as caught:
        await scrip.run(state)
    assert caught.value.http_status == 500
    assert requests(emu)[-1] == ("POST", 500)
    assert len(emu.calls) == 2


async def test_malformed_body_is_a_provider_error(scrip: ScripProvider, emu: ScripEmulator) -> None:
    emu.knobs.set(malformed_next=1)
    with pytest.raises(ProviderError, match="not JSON") as caught:
        await scrip.get(emu.find("Birthday Bonus")["id"])
    assert caught.value.provider == "scrip"
    assert caught.value.http_status == 200


async def test_timeout_is_a_retryable_provider_error(
    base_url: str, emu: ScripEmulator, fake_time: FakeTime
) -> None:
    emu.knobs.set(latency_ms=300)
    async with make(base_url, fake_time, timeout=0.05, max_retries=1) as scrip:
        with pytest.raises(ProviderError, match="did not answer") as caught:
            await scrip.get(emu.find("Birthday Bonus")["id"])
    assert caught.value.retryable
    assert fake_time.sleeps == [0.5]
    # the emulator finishes both abandoned requests before the next test uses it
    assert await asyncio.to_thread(emu.wait_idle, 30.0)


async def test_connection_refused_is_retried_then_reported(fake_time: FakeTime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with make(f"http://127.0.0.1:{port}/v1", fake_time) as scrip:
        with pytest.raises(ProviderError, match="could not be reached") as caught:
            await scrip.list_states()
    assert caught.value.retryable
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("program_id", "loyalty"), ("base_url", "api.scrip.dev/v1"), ("api_key", SecretStr(""))],
)
def test_bad_configuration_names_the_field(
    base_url: str, fake_time: FakeTime, field: str, value: object
) -> None:
    overrides = {field: value}
    url = str(overrides.pop("base_url", base_url))
    with pytest.raises(ConfigError, match=f"staging.scrip.{field}"):
        make(url, fake_time, **overrides)
