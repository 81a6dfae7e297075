"""TokenProvider against the SFMC emulator over real HTTP (reference sfmc.md §4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from bot.domain.errors import AuthError
from providers.http import new_async_client, normalise_base_url
from providers.sfmc.auth import TokenProvider
from sandbox.server import ServerThread
from sandbox.sfmc import CLIENT_ID, CLIENT_SECRET, PROD_MID, STAGING_MID, SfmcEmulator


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SfmcEmulator, str]]:
    emulator = SfmcEmulator()
    with ServerThread(emulator.app) as srv:
        yield emulator, srv.url


@pytest.fixture
def emulator(server: tuple[SfmcEmulator, str]) -> SfmcEmulator:
    emu = server[0]
    emu.reset()
    return emu


@pytest.fixture
def base_url(server: tuple[SfmcEmulator, str], emulator: SfmcEmulator) -> str:
    return server[1]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_async_client() as client:
        yield client


def make(
    http: httpx.AsyncClient,
    base_url: str,
    *,
    mid: int = STAGING_MID,
    secret: str = CLIENT_SECRET,
    client_id: str = CLIENT_ID,
    **kwargs: object,
) -> TokenProvider:
    return TokenProvider(
        auth_url=base_url,
        client_id=client_id,
        client_secret=SecretStr(secret),
        account_id=mid,
        http=http,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_concurrent_callers_share_one_fetch(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    tokens = make(http, base_url)
    results = await asyncio.gather(*(tokens.token() for _ in range(20)))
    assert emulator.token_requests == 1
    assert tokens.fetches == 1
    assert len({t.access_token.get_secret_value() for t in results}) == 1
    assert results[0].rest_instance_url == base_url + "/"
    assert results[0].soap_instance_url == base_url + "/"


async def test_token_is_cached_until_shortly_before_expires_in(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    tokens = make(http, base_url, clock=clock, refresh_margin=timedelta(minutes=5))
    first = await tokens.token()
    # the emulator says expires_in 1079 s; refresh 5 minutes before that
    assert first.expires_at == clock.now + timedelta(seconds=1079)
    clock.now += timedelta(seconds=1079 - 300 - 1)
    assert await tokens.token() is first
    assert emulator.token_requests == 1
    clock.now += timedelta(seconds=2)
    second = await tokens.token()
    assert second is not first
    assert second.access_token.get_secret_value() != first.access_token.get_secret_value()
    assert emulator.token_requests == 2


async def test_refresh_of_a_stale_token_is_single_flight(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    tokens = make(http, base_url)
    stale = await tokens.token()
    fresh = await asyncio.gather(*(tokens.refresh(stale) for _ in range(10)))
    assert emulator.token_requests == 2
    assert {id(t) for t in fresh} == {id(fresh[0])}
    assert fresh[0] is not stale
    # a late caller still holding the stale token gets the new one without a fetch
    assert await tokens.refresh(stale) is fresh[0]
    assert await tokens.token() is fresh[0]
    assert emulator.token_requests == 2


async def test_bad_credentials_raise_auth_error_without_leaking_the_secret(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    secret = "wrong-but-still-secret-value"
    tokens = make(http, base_url, secret=secret)
    with pytest.raises(AuthError) as info:
        await tokens.token()
    err = info.value
    assert err.code == "invalid_client"
    assert err.provider == "SFMC"
    assert err.http_status == 401
    assert "Client authentication failed" in (err.provider_message or "")
    for text in (str(err), repr(err), err.user_message(), repr(err.args)):
        assert secret not in text
    assert emulator.token_requests == 1  # a refused credential is not retried


async def test_unknown_client_and_foreign_mid_are_auth_errors(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(AuthError) as info:
        await make(http, base_url, client_id="nobody").token()
    assert info.value.code == "invalid_client"
    with pytest.raises(AuthError) as info:
        await make(http, base_url, mid=9999999).token()
    assert info.value.code == "unauthorized_client"
    assert "9999999" in info.value.message


async def test_one_token_per_business_unit(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    staging = make(http, base_url, mid=STAGING_MID)
    prod = make(http, base_url, mid=PROD_MID)
    a, b = await asyncio.gather(staging.token(), prod.token())
    assert a.access_token.get_secret_value() != b.access_token.get_secret_value()
    assert emulator.token_requests == 2
    state = emulator.state()
    assert sorted(t["mid"] for t in state["tokens"]) == [STAGING_MID, PROD_MID]
    # each token reads its own business unit
    for provider, mid in ((staging, STAGING_MID), (prod, PROD_MID)):
        token = await provider.token()
        response = await http.get(
            token.rest_instance_url + "interaction/v1/interactions",
            headers={"Authorization": f"Bearer {token.access_token.get_secret_value()}"},
        )
        assert response.status_code == 200
        assert emulator.calls[-1].mid == mid


async def test_token_endpoint_5xx_is_retried_with_backoff(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    emulator.knobs.set(fail_next_5xx=1, path_filter="/v2/token")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    token = await make(http, base_url, sleep=sleep).token()
    assert token.access_token.get_secret_value()
    assert waits == [2.0]
    assert [c.status for c in emulator.calls] == [500, 200]


@pytest.mark.parametrize("auth_url", ["{base}", "{base}/", "{base}//"])
async def test_auth_url_with_or_without_trailing_slash(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient, auth_url: str
) -> None:
    await make(http, auth_url.format(base=base_url)).token()
    assert [c.path for c in emulator.calls] == ["/v2/token"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mc123.rest.marketingcloudapis.com", "https://mc123.rest.marketingcloudapis.com/"),
        ("mc123.rest.marketingcloudapis.com/", "https://mc123.rest.marketingcloudapis.com/"),
        ("https://mc123.rest.marketingcloudapis.com", "https://mc123.rest.marketingcloudapis.com/"),
        (
            "https://mc123.soap.marketingcloudapis.com/",
            "https://mc123.soap.marketingcloudapis.com/",
        ),
        (
            "  https://mc123.auth.marketingcloudapis.com//  ",
            "https://mc123.auth.marketingcloudapis.com/",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
    ],
)
def test_normalise_base_url(raw: str, expected: str) -> None:
    assert normalise_base_url(raw) == expected


async def test_secrets_never_appear_in_token_repr(
    emulator: SfmcEmulator, base_url: str, http: httpx.AsyncClient
) -> None:
    token = await make(http, base_url).token()
    value = token.access_token.get_secret_value()
    assert len(value) > 20
    for text in (repr(token), str(token), token.model_dump_json(), str(token.model_dump())):
        assert value not in text
    tokens = make(http, base_url)
    assert CLIENT_SECRET not in repr(tokens)
    assert CLIENT_SECRET not in str(vars(tokens).get("_client_secret"))
