"""OAuth2 client credentials for one SFMC business unit, cached and refreshed ahead of time.

One :class:`TokenProvider` per (auth URL, client id, MID): SFMC tokens are tied to one
business unit and should be fetched about once per 18 minutes, not per call (reference
sfmc.md §4). Concurrent callers share one fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from bot.domain.errors import AuthError, ProviderError, RateLimited
from providers.http import json_or_none, normalise_base_url, retry_after_seconds

PROVIDER = "SFMC"


class SfmcToken(BaseModel):
    """An access token with the instance URLs it came with."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    expires_at: datetime
    rest_instance_url: str
    soap_instance_url: str
    scope: str = ""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenProvider:
    """Fetches, caches and refreshes the token of one SFMC business unit."""

    def __init__(
        self,
        *,
        auth_url: str,
        client_id: str,
        client_secret: SecretStr,
        account_id: int,
        http: httpx.AsyncClient,
        refresh_margin: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = _utcnow,
        attempts: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._token_url = normalise_base_url(auth_url) + "v2/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._account_id = account_id
        self._http = http
        self._margin = refresh_margin
        self._clock = clock
        self._attempts = attempts
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._token: SfmcToken | None = None
        self.fetches = 0

    @property
    def account_id(self) -> int:
        return self._account_id

    def _fresh(self, token: SfmcToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at - self._margin

    async def token(self) -> SfmcToken:
        """The cached token, fetched once when missing or about to expire."""
        if self._fresh(self._token):
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh(self._token):
                self._token = await self._fetch()
            assert self._token is not None
            return self._token

    async def refresh(self, stale: SfmcToken | None) -> SfmcToken:
        """Force a new token after ``stale`` was refused, unless another caller already did."""
        async with self._lock:
            if self._token is not None and self._token is not stale:
                return self._token
            self._token = await self._fetch()
            return self._token

    async def _fetch(self) -> SfmcToken:
        body = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "account_id": str(self._account_id),
        }
        last: ProviderError | None = None
        for attempt in range(self._attempts):
            if attempt:
                await self._sleep(min(8.0, 2.0**attempt))
            try:
                response = await self._http.post(self._token_url, json=body)
            except httpx.HTTPError as exc:
                last = ProviderError(
                    f"Could not reach the SFMC auth endpoint ({type(exc).__name__})",
                    provider=PROVIDER,
                    retryable=True,
                )
                continue
            self.fetches += 1
            try:
                return self._parse(response)
            except ProviderError as exc:
                if not exc.retryable or isinstance(exc, AuthError):
                    raise
                last = exc
        assert last is not None
        raise last

    def _parse(self, response: httpx.Response) -> SfmcToken:
        data = json_or_none(response)
        if response.status_code == 200 and isinstance(data, dict) and data.get("access_token"):
            try:
                expires_in = float(data.get("expires_in", 1079))
                return SfmcToken(
                    access_token=SecretStr(str(data["access_token"])),
                    expires_at=self._clock() + timedelta(seconds=expires_in),
                    rest_instance_url=normalise_base_url(str(data["rest_instance_url"])),
                    soap_instance_url=normalise_base_url(str(data["soap_instance_url"])),
                    scope=str(data.get("scope", "")),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ProviderError(
                    "SFMC returned a token response without instance URLs",
                    provider=PROVIDER,
                    http_status=200,
                ) from exc
        code: str | None = None
        message: str | None = None
        if isinstance(data, dict):
            code = str(data.get("error") or data.get("errorcode") or "") or None
            message = str(data.get("error_description") or data.get("message") or "") or None
        status = response.status_code
        if status in (400, 401, 403):
            raise AuthError(
                f"SFMC refused the credentials for business unit {self._account_id}",
                provider=PROVIDER,
                code=code or str(status),
                provider_message=message,
                http_status=status,
            )
        if status == 429:
            raise RateLimited(
                "SFMC is rate limiting token requests",
                provider=PROVIDER,
                code=code or "429",
                provider_message=message,
                http_status=status,
                retry_after=retry_after_seconds(response, data),
            )
        raise ProviderError(
            "SFMC's auth endpoint failed"
            if status >= 500 or status == 200
            else f"SFMC's auth endpoint answered HTTP {status}",
            provider=PROVIDER,
            code=code or str(status),
            provider_message=message or ("the body was not JSON" if data is None else None),
            http_status=status,
            retryable=status >= 500,
        )
