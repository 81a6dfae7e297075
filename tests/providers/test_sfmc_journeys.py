"""SfmcJourneyProvider against the SFMC emulator over real HTTP (reference sfmc.md §3-§5)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.errors import (
    AuthError,
    BadInput,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
    Unsupported,
)
from bot.domain.models import (
    NormalState,
    PauseOptions,
    Target,
    TargetKind,
    TargetState,
    ThenAction,
    VersionSelector,
)
from bot.service.ports import Provider
from providers.http import new_async_client
from providers.sfmc.auth import TokenProvider
from providers.sfmc.journeys import SfmcJourneyProvider, normal_state
from providers.sfmc.rest import segment
from sandbox.server import ServerThread
from sandbox.sfmc import CLIENT_ID, CLIENT_SECRET, STAGING_MID, SfmcEmulator
from sandbox.sfmc.settings import EmulatorSettings

BASE = "/interaction/v1/interactions"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATEST = VersionSelector()
ALL = VersionSelector(all_versions=True)


@dataclass
class Env:
    emulator: SfmcEmulator
    url: str
    http: httpx.AsyncClient
    waits: list[float] = field(default_factory=list)
    token_waits: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def token_sleep(self, seconds: float) -> None:
        self.token_waits.append(seconds)

    def provider(self, **kwargs: Any) -> SfmcJourneyProvider:
        tokens = TokenProvider(
            auth_url=self.url,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            account_id=STAGING_MID,
            http=self.http,
            sleep=self.token_sleep,
        )
        kwargs.setdefault("clock", lambda: NOW)
        kwargs.setdefault("sleep", self.sleep)
        return SfmcJourneyProvider(environment="staging", tokens=tokens, http=self.http, **kwargs)

    # the emulator's control API, over HTTP like any other client
    async def knobs(self, **values: Any) -> None:
        """Set failure knobs; they hit journey REST only unless a path_filter is given."""
        values.setdefault("path_filter", f"{BASE}")
        r = await self.http.post(f"{self.url}/_sandbox/knobs", json=values)
        assert r.status_code == 200, r.text

    async def settings(self, **values: Any) -> None:
        r = await self.http.post(f"{self.url}/_sandbox/settings", json=values)
        assert r.status_code == 200, r.text

    async def calls(self) -> list[dict[str, Any]]:
        r = await self.http.get(f"{self.url}/_sandbox/calls")
        calls: list[dict[str, Any]] = r.json()["calls"]
        return [c for c in calls if c["path"] != "/v2/token"]

    async def all_calls(self) -> list[dict[str, Any]]:
        r = await self.http.get(f"{self.url}/_sandbox/calls")
        result: list[dict[str, Any]] = r.json()["calls"]
        return result

    async def clear_calls(self) -> None:
        await self.http.delete(f"{self.url}/_sandbox/calls")

    async def journeys(self, key: str) -> dict[int, dict[str, Any]]:
        """The emulator's internal view of every version of ``key`` (with pause records)."""
        r = await self.http.get(f"{self.url}/_sandbox/state")
        return {
            j["version"]: j
            for j in r.json()["journeys"]
            if j["key"] == key and j["mid"] == STAGING_MID
        }


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SfmcEmulator, str]]:
    emulator = SfmcEmulator()
    with ServerThread(emulator.app) as srv:
        yield emulator, srv.url


@pytest.fixture
async def env(server: tuple[SfmcEmulator, str]) -> AsyncIterator[Env]:
    emulator, url = server
    emulator.reset()
    async with new_async_client() as http:
        await http.post(f"{url}/_sandbox/settings", json=EmulatorSettings().model_dump())
        yield Env(emulator, url, http)
        await http.post(f"{url}/_sandbox/settings", json=EmulatorSettings().model_dump())


@pytest.fixture
def provider(env: Env) -> SfmcJourneyProvider:
    return env.provider()


def paths(calls: list[dict[str, Any]]) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in calls]


# --- reads ------------------------------------------------------------------------------


async def test_implements_the_provider_protocol(provider: SfmcJourneyProvider) -> None:
    typed: Provider = provider
    assert typed.kind is TargetKind.JOURNEY
    await typed.aclose()


async def test_get_returns_the_latest_version_with_every_version(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("welcome-series")
    emu = await env.journeys("welcome-series")
    t = state.target
    assert (t.environment, t.kind, t.key, t.name) == (
        "staging",
        TargetKind.JOURNEY,
        "welcome-series",
        "Welcome Series",
    )
    assert t.version == 3
    assert t.id == emu[3]["id"]
    assert state.state is NormalState.ACTIVE
    assert state.raw_status == "Published"
    assert state.population == 5400
    assert [(v.version, v.id, v.status, v.state) for v in state.versions] == [
        (1, emu[1]["id"], "Unpublished", NormalState.FINISHING),
        (2, emu[2]["id"], "Published", NormalState.ACTIVE),
        (3, emu[3]["id"], "Published", NormalState.ACTIVE),
    ]
    assert state.details["definitionId"] == emu[3]["definition_id"]
    assert state.details["definitionType"] == "Multistep"


async def test_get_a_specific_version(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("welcome-series", version=1)
    emu = await env.journeys("welcome-series")
    assert state.target.version == 1
    assert state.target.id == emu[1]["id"]
    assert state.state is NormalState.FINISHING
    assert state.raw_status == "Unpublished"
    assert len(state.versions) == 3
    assert "versionNumber=1" in (await env.calls())[0]["query"]


async def test_paused_latest_version(provider: SfmcJourneyProvider) -> None:
    state = await provider.get("winback-q4")
    assert state.target.version == 2
    assert state.state is NormalState.PAUSED
    assert [v.status for v in state.versions] == ["Stopped", "Paused"]


async def test_unknown_key_and_version_are_not_found(provider: SfmcJourneyProvider) -> None:
    with pytest.raises(NotFound) as info:
        await provider.get("no-such-journey")
    assert "no-such-journey" in info.value.message
    assert "30003" in info.value.message
    with pytest.raises(NotFound):
        await provider.get("welcome-series", version=9)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Published", NormalState.ACTIVE),
        ("Paused", NormalState.PAUSED),
        ("Stopped", NormalState.STOPPED),
        ("Draft", NormalState.DRAFT),
        ("Unpublished", NormalState.FINISHING),
        ("ScheduledToPublish", NormalState.WAITING),
        ("Deleted", NormalState.ARCHIVED),
        ("published", NormalState.ACTIVE),
        ("SomethingNew", NormalState.UNKNOWN),
    ],
)
def test_status_mapping(status: str, expected: NormalState) -> None:
    assert normal_state(status) is expected


async def test_draft_and_stopped_journeys(provider: SfmcJourneyProvider) -> None:
    assert (await provider.get("birthday-offer")).state is NormalState.DRAFT
    stopped = await provider.get("spring-sale-2024")
    assert stopped.state is NormalState.STOPPED
    assert stopped.population == 0


async def test_find_by_name_is_exact_and_case_insensitive(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    found = await provider.find_by_name("CART ABANDONMENT")
    assert [s.key for s in found] == ["cart-abandonment"]
    assert found[0].raw_status == "Published"
    assert found[0].kind is TargetKind.JOURNEY
    assert await provider.find_by_name("cart") == []
    query = (await env.calls())[0]["query"]
    assert "nameOrDescription=CART+ABANDONMENT" in query
    assert "mostRecentVersionOnly=true" in query


async def test_search_by_name_fragment_and_exact_key(provider: SfmcJourneyProvider) -> None:
    found = await provider.search("welcome")
    assert {s.key for s in found} == {"welcome-series", "welcome-series-es"}
    assert len(await provider.search("welcome", limit=1)) == 1
    assert len(await provider.search("", limit=3)) == 3
    by_key = await provider.search("promo/black-friday")
    assert [s.name for s in by_key] == ["Black Friday Promo"]


async def test_list_states_pages_through_everything(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    for n in range(60):
        env.emulator.add_journey(STAGING_MID, key=f"bulk-{n:02}", name=f"Bulk {n:02}")
    states = await provider.list_states()
    assert len(states) == 68
    assert len({s.target.key for s in states}) == 68
    calls = await env.calls()
    assert len(calls) == 2
    assert "%24page=2" in calls[1]["query"]
    assert all("%24pageSize=50" in c["query"] for c in calls)


async def test_list_states_paused_only_sees_every_paused_version(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    welcome = await provider.get("welcome-series")
    await provider.pause(
        welcome,
        options=PauseOptions(duration=timedelta(days=2)),
        versions=VersionSelector(version=2),
    )
    paused = await provider.list_states(paused_only=True)
    assert sorted((s.target.key, s.target.version) for s in paused) == [
        ("welcome-series", 2),
        ("winback-q4", 2),
    ]
    assert all(s.state is NormalState.PAUSED for s in paused)
    query = (await env.calls())[-1]["query"]
    assert "status=Paused" in query
    assert "mostRecentVersionOnly=false" in query


# --- pause / resume -----------------------------------------------------------------------


async def test_pause_forwards_every_option(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("cart-abandonment")
    receipt = await provider.pause(
        state,
        options=PauseOptions(
            duration=timedelta(days=3, hours=2),
            then=ThenAction.STOP,
            extend_waits=True,
            queue_entries=True,
        ),
        versions=LATEST,
    )
    assert receipt.message == "Accepted"
    assert receipt.request_id is None  # SFMC journey REST sends no request id header
    record = (await env.journeys("cart-abandonment"))[1]
    assert record["status"] == "Paused"
    assert record["pause"]["paused_days"] == 4  # 3d2h rounds up to whole days
    assert record["pause"]["guardrail_action"] == "stop"
    assert record["pause"]["extend_wait_end_dates"] is True
    assert record["pause"]["retain_contact_injection"] is True
    call = (await env.calls())[-1]
    assert call["method"] == "POST"
    assert call["path"] == f"{BASE}/pause/key:cart-abandonment"
    assert call["query"] == "versionNumber=1"
    assert call["status"] == 202
    after = await provider.get("cart-abandonment")
    assert after.state is NormalState.PAUSED


@pytest.mark.parametrize(
    ("then", "guardrail"),
    [(ThenAction.RESUME, "resume"), (ThenAction.KEEP, "none"), (ThenAction.STOP, "stop")],
)
async def test_then_maps_to_guardrail_action(
    env: Env, provider: SfmcJourneyProvider, then: ThenAction, guardrail: str
) -> None:
    state = await provider.get("cart-abandonment")
    await provider.pause(state, options=PauseOptions(then=then), versions=LATEST)
    pause = (await env.journeys("cart-abandonment"))[1]["pause"]
    assert pause["guardrail_action"] == guardrail
    assert pause["paused_days"] == 14  # untimed: the longest Journey Builder allows
    assert pause["extend_wait_end_dates"] is False
    assert pause["retain_contact_injection"] is False


async def test_pause_until_uses_the_injected_clock(env: Env) -> None:
    provider = env.provider(clock=lambda: NOW)
    state = await provider.get("cart-abandonment")
    options = PauseOptions(until=NOW + timedelta(days=5, minutes=1))
    await provider.pause(state, options=options, versions=LATEST)
    assert (await env.journeys("cart-abandonment"))[1]["pause"]["paused_days"] == 6


async def test_pause_longer_than_14_days_is_refused_before_any_request(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("cart-abandonment")
    before = len(await env.all_calls())
    for options in (
        PauseOptions(duration=timedelta(days=15)),
        PauseOptions(duration=timedelta(days=14, hours=1), then=ThenAction.KEEP),
        PauseOptions(until=NOW + timedelta(days=30)),
    ):
        with pytest.raises(BadInput) as info:
            await provider.pause(state, options=options, versions=LATEST)
        text = info.value.user_message()
        assert "at most 14 days" in text
        assert "then keep" in text
        assert "Usage:" in text
    assert len(await env.all_calls()) == before
    assert (await env.journeys("cart-abandonment"))[1]["status"] == "Published"


async def test_pause_then_resume_a_specific_version(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("welcome-series")
    v2 = VersionSelector(version=2)
    await provider.pause(state, options=PauseOptions(duration=timedelta(days=1)), versions=v2)
    emu = await env.journeys("welcome-series")
    assert [emu[n]["status"] for n in (1, 2, 3)] == ["Unpublished", "Paused", "Published"]
    paused = await provider.get("welcome-series", version=2)
    receipt = await provider.resume(paused, versions=v2)
    assert receipt.message == "Accepted"
    emu = await env.journeys("welcome-series")
    assert emu[2]["status"] == "Published"
    assert emu[2]["pause"]["end_reason"] == "resumed"
    call = (await env.calls())[-1]
    assert (call["path"], call["query"]) == (f"{BASE}/resume/key:welcome-series", "versionNumber=2")


async def test_all_versions_pause_and_resume(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("welcome-series")
    await provider.pause(state, options=PauseOptions(duration=timedelta(days=2)), versions=ALL)
    emu = await env.journeys("welcome-series")
    assert [emu[n]["status"] for n in (1, 2, 3)] == ["Unpublished", "Paused", "Paused"]
    assert emu[2]["pause"]["paused_days"] == emu[3]["pause"]["paused_days"] == 2
    assert (await env.calls())[-1]["query"] == "allVersions=true"

    paused = await provider.get("welcome-series")
    assert {v.version: v.state for v in paused.versions}[2] is NormalState.PAUSED
    await provider.resume(paused, versions=ALL)
    emu = await env.journeys("welcome-series")
    assert [emu[n]["status"] for n in (1, 2, 3)] == ["Unpublished", "Published", "Published"]
    call = (await env.calls())[-1]
    assert (call["path"], call["query"]) == (
        f"{BASE}/resume/key:welcome-series",
        "allVersions=true",
    )


async def test_pause_without_a_version_gets_202_errorcode_10005(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    # The adapter always sends a version; force the omission through its request path.
    with pytest.raises(ProviderError) as info:
        await provider._action("pause", "cart-abandonment", params={}, body={})
    err = info.value
    assert (err.code, err.http_status, err.provider) == ("10005", 202, "SFMC")
    assert err.provider_message == "AllVersions=true or VersionNumber required."
    assert "10005" in err.user_message()
    assert (await env.calls())[-1]["status"] == 202
    assert (await env.journeys("cart-abandonment"))[1]["status"] == "Published"


async def test_provider_validation_of_pauseddays_is_a_202_error_too(
    provider: SfmcJourneyProvider,
) -> None:
    with pytest.raises(ProviderError) as info:
        await provider._action(
            "pause", "cart-abandonment", params={"versionNumber": 1}, body={"PausedDays": 15}
        )
    assert info.value.code == "10005"
    assert "PausedDays" in (info.value.provider_message or "")


async def test_resume_of_a_journey_that_is_not_paused_gets_errorcode_10000(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("cart-abandonment")
    with pytest.raises(ProviderError) as info:
        await provider.resume(state, versions=LATEST)
    err = info.value
    assert type(err) is ProviderError
    assert (err.code, err.http_status) == ("10000", 202)
    assert err.provider_message == "An interaction must be in paused status to be resumed."
    text = err.user_message()
    assert "resume journey 'cart-abandonment' (v1)" in text
    assert "code 10000" in text
    assert "paused status" in text


async def test_mutation_on_unknown_key_is_not_found(provider: SfmcJourneyProvider) -> None:
    with pytest.raises(NotFound) as info:
        await provider._action("resume", "nope", params={"versionNumber": 1}, body={})
    assert "30003" in info.value.message
    assert "nope" in info.value.message


# --- stop / run ---------------------------------------------------------------------------


async def test_stop_resolves_the_version_id(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("welcome-series")
    emu = await env.journeys("welcome-series")
    await env.clear_calls()
    receipt = await provider.stop(state, versions=VersionSelector(version=2))
    assert receipt.message is None  # HTTP 200, empty body
    calls = await env.calls()
    assert paths(calls) == [f"POST {BASE}/stop/{emu[2]['id']}"]
    assert calls[0]["query"] == "versionNumber=2"
    assert calls[0]["status"] == 200
    emu = await env.journeys("welcome-series")
    assert [emu[n]["status"] for n in (1, 2, 3)] == ["Unpublished", "Stopped", "Published"]


async def test_stop_latest_from_a_state_without_versions(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = (await provider.get("cart-abandonment")).model_copy(update={"versions": ()})
    await provider.stop(state, versions=LATEST)
    assert (await env.journeys("cart-abandonment"))[1]["status"] == "Stopped"
    assert (await provider.get("cart-abandonment")).state is NormalState.STOPPED


async def test_stop_another_version_resolves_it_when_the_state_lacks_it(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = (await provider.get("welcome-series")).model_copy(update={"versions": ()})
    emu = await env.journeys("welcome-series")
    await env.clear_calls()
    await provider.stop(state, versions=VersionSelector(version=1))
    calls = await env.calls()
    assert calls[-1]["path"] == f"{BASE}/stop/{emu[1]['id']}"
    assert calls[-1]["query"] == "versionNumber=1"
    assert (await env.journeys("welcome-series"))[1]["status"] == "Stopped"


async def test_stop_all_versions_stops_each_live_version(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("welcome-series")
    await env.clear_calls()
    await provider.stop(state, versions=ALL)
    assert len(await env.calls()) == 3
    emu = await env.journeys("welcome-series")
    assert [emu[n]["status"] for n in (1, 2, 3)] == ["Stopped"] * 3


async def test_stop_of_a_stopped_journey_is_a_provider_error_not_retried(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("spring-sale-2024")
    await env.clear_calls()
    with pytest.raises(ProviderError) as info:
        await provider.stop(state, versions=LATEST)
    assert (info.value.code, info.value.http_status) == ("500", 500)
    assert not info.value.retryable
    assert "check its status" in info.value.message
    assert len(await env.calls()) == 1
    assert env.waits == []


async def test_run_is_unsupported(provider: SfmcJourneyProvider) -> None:
    state = await provider.get("cart-abandonment")
    with pytest.raises(Unsupported, match="published, not run"):
        await provider.run(state)


# --- auth ---------------------------------------------------------------------------------


async def test_401_refreshes_once_and_retries_a_read(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    await provider.get("cart-abandonment")
    await env.clear_calls()
    env.emulator.expire_all_tokens()
    state = await provider.get("cart-abandonment")
    assert state.state is NormalState.ACTIVE
    calls = await env.all_calls()
    assert [(c["path"], c["status"]) for c in calls[:3]] == [
        (f"{BASE}/key:cart-abandonment", 401),
        ("/v2/token", 200),
        (f"{BASE}/key:cart-abandonment", 200),
    ]


async def test_401_refreshes_once_and_retries_a_mutation(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("cart-abandonment")
    await env.clear_calls()
    env.emulator.clock.advance(timedelta(minutes=21))  # the emulator's token lifetime is 20 min
    await provider.pause(state, options=PauseOptions(), versions=LATEST)
    calls = await env.all_calls()
    assert [(c["path"], c["status"]) for c in calls] == [
        (f"{BASE}/pause/key:cart-abandonment", 401),
        ("/v2/token", 200),
        (f"{BASE}/pause/key:cart-abandonment", 202),
    ]
    assert (await env.journeys("cart-abandonment"))[1]["status"] == "Paused"


async def test_a_second_401_is_an_auth_error(env: Env, provider: SfmcJourneyProvider) -> None:
    await env.knobs(expire_tokens_next=2)
    with pytest.raises(AuthError) as info:
        await provider.get("cart-abandonment")
    err = info.value
    assert (err.code, err.http_status, err.provider) == ("0", 401, "SFMC")
    assert err.provider_message == "Not Authorized"
    assert [c["status"] for c in await env.all_calls()] == [200, 401, 200, 401]


# --- throttling and failures ----------------------------------------------------------------


async def test_429_on_a_read_waits_retry_after_and_retries(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    await env.knobs(rate_limit_next=1, retry_after_s=7)
    state = await provider.get("cart-abandonment")
    assert state.state is NormalState.ACTIVE
    assert env.waits == [7.0]
    assert [c["status"] for c in await env.calls()][:2] == [429, 200]


async def test_429_that_persists_on_a_read_is_rate_limited_after_bounded_retries(
    env: Env,
) -> None:
    provider = env.provider(max_retries=2)
    await env.knobs(rate_limit_next=10, retry_after_s=3)
    with pytest.raises(RateLimited) as info:
        await provider.get("cart-abandonment")
    assert (info.value.code, info.value.retry_after) == ("50100", 3.0)
    assert env.waits == [3.0, 3.0]
    assert len(await env.calls()) == 3


async def test_429_with_a_long_retry_after_is_not_slept_through(env: Env) -> None:
    provider = env.provider(max_retry_wait=30)
    await env.knobs(rate_limit_next=1, retry_after_s=120)
    with pytest.raises(RateLimited) as info:
        await provider.get("cart-abandonment")
    assert info.value.retry_after == 120.0
    assert env.waits == []
    assert "wait 120s" in info.value.user_message()


async def test_429_on_a_mutation_is_rate_limited_without_retry(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    state = await provider.get("cart-abandonment")
    await env.clear_calls()
    await env.knobs(rate_limit_next=1, retry_after_s=5)
    with pytest.raises(RateLimited) as info:
        await provider.pause(state, options=PauseOptions(), versions=LATEST)
    err = info.value
    assert (err.code, err.http_status, err.retry_after) == ("50100", 429, 5.0)
    assert err.retryable
    assert env.waits == []
    assert [c["status"] for c in await env.calls()] == [429]
    assert (await env.journeys("cart-abandonment"))[1]["status"] == "Published"


async def test_50200_temporarily_blocked_is_never_retried(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    await env.settings(rest_rate_limit_errorcode=50200)
    await env.knobs(rate_limit_next=1)
    with pytest.raises(RateLimited) as info:
        await provider.get("cart-abandonment")
    assert (info.value.code, info.value.retry_after) == ("50200", None)
    assert "temporarily blocked" in info.value.message
    assert env.waits == []
    assert len(await env.calls()) == 1


async def test_5xx_on_a_read_is_retried_with_backoff(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    await env.knobs(fail_next_5xx=2)
    assert (await provider.get("cart-abandonment")).state is NormalState.ACTIVE
    assert env.waits == [2.0, 4.0]


async def test_5xx_on_a_mutation_is_not_retried(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("cart-abandonment")
    await env.clear_calls()
    await env.knobs(fail_next_5xx=1)
    with pytest.raises(ProviderError) as info:
        await provider.resume(state, versions=LATEST)
    err = info.value
    assert (err.code, err.http_status, err.retryable) == ("500", 500, True)
    assert len(await env.calls()) == 1
    assert env.waits == []


async def test_503_50300_honours_retry_after_on_reads_and_fails_mutations(
    env: Env, provider: SfmcJourneyProvider
) -> None:
    await env.settings(rest_5xx_status=503)
    await env.knobs(fail_next_5xx=1, retry_after_s=3)
    state = await provider.get("cart-abandonment")
    assert env.waits == [3.0]
    await env.knobs(fail_next_5xx=1)
    with pytest.raises(ProviderError) as info:
        await provider.pause(state, options=PauseOptions(), versions=LATEST)
    err = info.value
    assert (err.code, err.http_status, err.retryable) == ("50300", 503, True)
    assert "unavailable" in err.message
    assert "wait 3s" in err.message


async def test_malformed_json_is_a_provider_error(env: Env, provider: SfmcJourneyProvider) -> None:
    await env.knobs(malformed_next=1)
    with pytest.raises(ProviderError) as info:
        await provider.get("cart-abandonment")
    assert "not JSON" in info.value.message
    state = await provider.get("cart-abandonment")
    await env.knobs(malformed_next=1)
    with pytest.raises(ProviderError) as info:
        await provider.pause(state, options=PauseOptions(), versions=LATEST)
    assert "not JSON" in info.value.message
    assert "check" in info.value.message


# --- keys that look like paths ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("../../automation/v1/x", "..%2F..%2Fautomation%2Fv1%2Fx"),
        ("odd?key#frag%20", "odd%3Fkey%23frag%2520"),
        ("..", "%2E%2E"),
    ],
)
async def test_keys_are_one_encoded_path_segment(
    env: Env, provider: SfmcJourneyProvider, key: str, encoded: str
) -> None:
    env.emulator.add_journey(STAGING_MID, key=key, name=f"Tricky {key}")
    state = await provider.get(key)
    assert state.target.key == key
    await provider.pause(state, options=PauseOptions(), versions=LATEST)
    recorded = [c["path"] for c in await env.calls()]
    assert recorded[0] == f"{BASE}/key:{encoded}"
    assert recorded[-1] == f"{BASE}/pause/key:{encoded}"
    assert (await env.journeys(key))[1]["status"] == "Paused"


async def test_seeded_key_with_a_slash(env: Env, provider: SfmcJourneyProvider) -> None:
    state = await provider.get("promo/black-friday")
    assert state.target.name == "Black Friday Promo"
    assert (await env.calls())[0]["path"] == f"{BASE}/key:promo%2Fblack-friday"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(".", "%2E"), ("..", "%2E%2E"), ("a.b", "a.b"), ("a/../b", "a%2F..%2Fb"), ("", "")],
)
def test_segment_never_yields_a_dot_segment(value: str, expected: str) -> None:
    assert segment(value) == expected
    url = httpx.URL(f"http://h/interaction/v1/interactions/stop/{segment(value)}")
    assert url.raw_path == f"/interaction/v1/interactions/stop/{expected}".encode()


# --- mappings the emulator never produces (httpx.MockTransport) ------------------------------


def mock_provider(
    handler: Callable[[httpx.Request], httpx.Response], waits: list[float]
) -> tuple[SfmcJourneyProvider, httpx.AsyncClient]:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/token":
            return httpx.Response(
                200,
                json={
                    "access_token": "t",
                    "expires_in": 1079,
                    "rest_instance_url": "mc.rest.example/",
                    "soap_instance_url": "mc.soap.example/",
                },
            )
        return handler(request)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    tokens = TokenProvider(
        auth_url="https://mc.auth.example",
        client_id="c",
        client_secret=SecretStr("s"),
        account_id=1,
        http=http,
    )
    provider = SfmcJourneyProvider(environment="e", tokens=tokens, http=http, sleep=sleep)
    return provider, http


def journey_doc(status: str = "Published") -> dict[str, Any]:
    return {"id": "j-1", "key": "k", "name": "K", "version": 1, "status": status}


async def test_get_finds_the_latest_when_the_api_defaults_to_version_one() -> None:
    # The swagger says a GET without versionNumber answers version 1 (the emulator answers
    # the latest); the adapter must return the latest either way.
    docs = {n: {**journey_doc(), "id": f"j-{n}", "version": n} for n in (1, 2, 3)}
    docs[3]["stats"] = {"currentPopulation": 42}
    gets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        gets.append(str(request.url.params))
        if request.url.path.endswith("/key:k"):
            return httpx.Response(200, json=docs[int(request.url.params.get("versionNumber", 1))])
        assert request.url.params["id"] == "j-1"
        assert request.url.params["mostRecentVersionOnly"] == "false"
        return httpx.Response(200, json={"count": 3, "items": list(docs.values())})

    provider, http = mock_provider(handler, [])
    async with http:
        state = await provider.get("k")
    assert (state.target.version, state.target.id, state.population) == (3, "j-3", 42)
    assert [v.id for v in state.versions] == ["j-1", "j-2", "j-3"]
    assert len(gets) == 3
    assert "versionNumber=3" in gets[-1]


async def test_409_30002_is_invalid_state_naming_the_current_state() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/key:k"):
            return httpx.Response(200, json=journey_doc())
        if request.method == "GET":
            return httpx.Response(200, json={"count": 1, "items": [journey_doc()]})
        return httpx.Response(409, json={"errorcode": 30002, "message": "Invalid state transition"})

    provider, http = mock_provider(handler, [])
    async with http:
        state = await provider.get("k")
        assert state.target.version == 1
        with pytest.raises(InvalidState) as info:
            await provider.pause(state, options=PauseOptions(), versions=LATEST)
    assert info.value.current_state == "Published"
    assert "30002" in info.value.message


async def test_403_is_an_auth_error_and_unknown_4xx_keeps_the_code() -> None:
    answers = [
        httpx.Response(403, json={"errorcode": 20002, "message": "Insufficient privileges"}),
        httpx.Response(400, json={"errorcode": 10002, "message": "Missing field"}),
    ]
    provider, http = mock_provider(lambda request: answers.pop(0), [])
    async with http:
        with pytest.raises(AuthError) as auth:
            await provider.get("k")
        with pytest.raises(ProviderError) as bad:
            await provider.get("k")
    assert (auth.value.code, auth.value.http_status) == ("20002", 403)
    assert (bad.value.code, bad.value.http_status, bad.value.retryable) == ("10002", 400, False)


async def test_transport_errors_retry_reads_but_not_mutations() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1 or request.method == "POST":
            raise httpx.ReadTimeout("slow", request=request)
        if request.url.path.endswith("/key:k"):
            return httpx.Response(200, json=journey_doc())
        return httpx.Response(200, json={"count": 1, "items": [journey_doc()]})

    waits: list[float] = []
    provider, http = mock_provider(handler, waits)
    async with http:
        state = await provider.get("k")
        assert waits == [2.0]
        with pytest.raises(ProviderError) as info:
            await provider.resume(state, versions=LATEST)
    assert seen.count("POST") == 1
    assert "may or may not have acted" in info.value.message
    assert not info.value.retryable


async def test_request_body_shape_sent_on_the_wire() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content or b"null"))
        assert request.headers["Authorization"] == "Bearer t"
        return httpx.Response(202, json={"status": "Accepted"}, headers={"X-Request-Id": "r-1"})

    provider, http = mock_provider(handler, [])
    async with http:
        state_doc = journey_doc()
        state = TargetState(
            target=Target(
                environment="e", kind=TargetKind.JOURNEY, key="k", name="K", id="j-1", version=1
            ),
            state=NormalState.ACTIVE,
            raw_status=state_doc["status"],
        )
        receipt = await provider.pause(
            state,
            options=PauseOptions(duration=timedelta(days=2), then=ThenAction.KEEP),
            versions=LATEST,
        )
        await provider.resume(state, versions=LATEST)
    assert receipt.request_id == "r-1"
    assert bodies == [
        {
            "PausedDays": 2,
            "GuardrailAction": "none",
            "ExtendWaitEndDates": False,
            "RetainContactInjectionWhileJourneyPaused": False,
        },
        {},
    ]
