"""One REST caller for SFMC: bearer token, one refresh on 401, bounded retries for reads.

Used by the Journey Builder adapter and by any SFMC adapter that needs a REST read
(e.g. ``GET /automation/v1/automations/{id}``). Policy (reference sfmc.md §3.5, §4, §5):

- Every call sends ``Authorization: Bearer`` with the business unit's cached token.
  A 401 forces one token refresh and one retry of the same call; a second 401 is
  :class:`~bot.domain.errors.AuthError`.
- Reads (``retry=True``) are retried, bounded by ``max_retries``, on 429 ``50100``
  (after ``Retry-After``), 503 (after ``Retry-After``), other 5xx and transport errors
  (exponential backoff 2 s, 4 s, 8 s ...). A wait longer than ``max_retry_wait`` is not
  slept through: the error is raised at once.
- Mutations (``retry=False``) are never retried, except the single 401 refresh.
- 429 ``50200`` ("temporarily blocked") is never retried.
- A JSON body carrying ``errorcode`` is a failure whatever the HTTP status: Journey
  Builder answers pause/resume failures with HTTP 202.

Errors: 404 / ``30003`` -> ``NotFound``; 409 / ``30002`` -> ``InvalidState``; 401 / 403 ->
``AuthError``; 429 -> ``RateLimited``; anything else -> ``ProviderError`` with
``provider="SFMC"``, ``code`` (the errorcode, else the HTTP status), the provider's
``message`` and ``http_status``.

Paths are relative to the token's ``rest_instance_url``. Build path segments from user
input with :func:`segment` so ``/``, ``?``, ``#`` and ``..`` never change the path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bot.domain.errors import (
    AuthError,
    InvalidState,
    NotFound,
    ProviderError,
    RateLimited,
)
from providers.http import CallLimit, json_or_none, retry_after_seconds
from providers.sfmc.auth import TokenProvider

PROVIDER = "SFMC"

#: Response headers that may carry a request id (the reference names none; the first
#: one present is reported on receipts).
REQUEST_ID_HEADERS = ("X-Request-Id", "X-Correlation-Id", "X-Mashery-Message-Id")

Params = Mapping[str, str | int | bool]


def segment(value: str) -> str:
    """``value`` as one URL path segment: every reserved character percent-encoded.

    A segment made only of dots is encoded as ``%2E`` so that neither httpx nor a proxy
    treats it as ``.``/``..`` (httpx keeps ``%2E%2E`` as is, but collapses literal ``..``).
    """
    encoded = quote(value, safe="")
    if encoded and set(encoded) == {"."}:
        return "%2E" * len(encoded)
    return encoded


@dataclass(frozen=True)
class RestResponse:
    """A successful (2xx, no ``errorcode``) answer."""

    status: int
    body: Any = None
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def malformed(self) -> bool:
        """A non-empty body that is not JSON."""
        return self.body is None and bool(self.content.strip())


def _errorcode(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("errorcode") is not None:
        return str(body["errorcode"])
    return None


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        for name in ("message", "error_description", "error"):
            value = body.get(name)
            if value:
                return str(value)
    return None


def _request_id(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value: str | None = response.headers.get(name)
        if value:
            return value
    return None


def _bool(value: str | int | bool) -> str | int:
    return ("true" if value else "false") if isinstance(value, bool) else value


class SfmcRestClient:
    """Calls SFMC REST endpoints of one business unit (one :class:`TokenProvider`)."""

    def __init__(
        self,
        *,
        tokens: TokenProvider,
        http: httpx.AsyncClient,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        limit: CallLimit | None = None,
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._limit = limit or CallLimit()
        self._sleep = sleep
        self._max_retries = max(0, max_retries)
        self._max_wait = max_retry_wait

    async def get_json(
        self,
        path: str,
        *,
        params: Params | None = None,
        what: str,
        not_found: str | None = None,
    ) -> Any:
        """GET a JSON document (retried as a read). Raises ``ProviderError`` if not JSON."""
        response = await self.request(
            "GET", path, params=params, what=what, not_found=not_found, retry=True
        )
        if response.body is None:
            raise ProviderError(
                f"Could not {what}: SFMC's answer was not JSON",
                provider=PROVIDER,
                code=str(response.status),
                provider_message="the body was not JSON",
                http_status=response.status,
                retryable=True,
            )
        return response.body

    async def post(
        self,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        what: str,
        not_found: str | None = None,
    ) -> RestResponse:
        """POST once (a mutation: only the 401 refresh is retried)."""
        return await self.request(
            "POST", path, params=params, json=json, what=what, not_found=not_found, retry=False
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        what: str,
        not_found: str | None = None,
        retry: bool,
    ) -> RestResponse:
        """Send one call with the module's auth and retry policy; map failures to errors.

        ``what`` completes "Could not ..." / "SFMC refused to ..." in error messages;
        ``not_found`` replaces the whole ``NotFound`` message when given.
        """
        query = {k: _bool(v) for k, v in (params or {}).items()}
        token = await self._tokens.token()
        refreshed = False
        attempt = 0
        while True:
            url = token.rest_instance_url + path.lstrip("/")
            headers = {
                "Authorization": f"Bearer {token.access_token.get_secret_value()}",
                "Accept": "application/json",
            }
            try:
                async with self._limit.slot(self._http) as http:
                    response = await http.request(
                        method, url, params=query or None, json=json, headers=headers
                    )
            except httpx.TransportError as exc:
                error = self._transport_error(exc, what=what, retry=retry)
                if retry and attempt < self._max_retries:
                    attempt += 1
                    await self._sleep(self._backoff(attempt))
                    continue
                raise error from exc

            body = json_or_none(response)
            status = response.status_code
            if status == 401:
                if not refreshed:
                    refreshed = True
                    token = await self._tokens.refresh(token)
                    continue
                raise AuthError(
                    f"Could not {what}: SFMC refused the access token even after a refresh",
                    provider=PROVIDER,
                    code=_errorcode(body) or "401",
                    provider_message=_message(body),
                    http_status=status,
                )
            code = _errorcode(body)
            if 200 <= status < 300 and code is None:
                return RestResponse(
                    status=status,
                    body=body,
                    request_id=_request_id(response),
                    headers=dict(response.headers),
                    content=response.content,
                )

            wait = self._retry_wait(response, body, attempt + 1) if retry else None
            if wait is not None and attempt < self._max_retries:
                attempt += 1
                await self._sleep(wait)
                continue
            raise self._error(response, body, what=what, not_found=not_found)

    # -- policy -----------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return float(min(self._max_wait, 2.0**attempt))

    def _retry_wait(self, response: httpx.Response, body: Any, attempt: int) -> float | None:
        """Seconds to wait before retrying a read, or None when it must not be retried."""
        status = response.status_code
        code = _errorcode(body)
        if status == 429:
            if code == "50200":  # temporarily blocked: retrying prolongs the block
                return None
            after = retry_after_seconds(response, body)
            wait = self._backoff(attempt) if after is None else after
        elif status == 503:
            after = retry_after_seconds(response, body)
            wait = self._backoff(attempt) if after is None else after
        elif status >= 500:
            wait = self._backoff(attempt)
        else:
            return None
        return wait if wait <= self._max_wait else None

    def _transport_error(
        self, exc: httpx.TransportError, *, what: str, retry: bool
    ) -> ProviderError:
        kind = type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) or retry:
            return ProviderError(
                f"Could not {what}: SFMC could not be reached ({kind})",
                provider=PROVIDER,
                retryable=True,
            )
        # The call may have reached SFMC: its outcome is unknown, so do not invite a retry.
        return ProviderError(
            f"Could not {what}: SFMC did not answer ({kind}); it may or may not have acted, "
            "check the status before trying again",
            provider=PROVIDER,
        )

    def _error(
        self, response: httpx.Response, body: Any, *, what: str, not_found: str | None
    ) -> Exception:
        status = response.status_code
        code = _errorcode(body)
        message = _message(body)
        shown = code or str(status)
        detail = f" (SFMC code {shown}{': ' + message if message else ''})"
        if body is None and response.content:
            message = "the body was not JSON"
        if status == 404 or code == "30003":
            head = (not_found or f"Could not {what}: SFMC found no such object").rstrip(".")
            return NotFound(f"{head}{detail}.")
        if code == "30002" or (status == 409 and code != "30004"):
            return InvalidState(
                f"SFMC refused to {what}: invalid state transition{detail}",
                current_state="unknown",
            )
        if status in (401, 403):
            return AuthError(
                f"SFMC refused access to {what} (check the installed package's scopes)",
                provider=PROVIDER,
                code=shown,
                provider_message=message,
                http_status=status,
            )
        if status == 429:
            blocked = code == "50200"
            return RateLimited(
                f"Could not {what}: SFMC "
                + ("has temporarily blocked this account" if blocked else "is rate limiting"),
                provider=PROVIDER,
                code=shown,
                provider_message=message,
                http_status=status,
                retry_after=None if blocked else retry_after_seconds(response, body),
            )
        if 200 <= status < 300:
            return ProviderError(
                f"SFMC refused to {what}",
                provider=PROVIDER,
                code=shown,
                provider_message=message,
                http_status=status,
            )
        if status >= 500:
            after = retry_after_seconds(response, body) if status == 503 else None
            wait = f"; it asks to wait {after:g}s" if after is not None else ""
            return ProviderError(
                f"Could not {what}: SFMC is "
                + ("unavailable" if status == 503 else "failing")
                + f" (HTTP {status}){wait}",
                provider=PROVIDER,
                code=shown,
                provider_message=message or ("the body was not JSON" if body is None else None),
                http_status=status,
                retryable=True,
            )
        return ProviderError(
            f"SFMC refused to {what} (HTTP {status})",
            provider=PROVIDER,
            code=shown,
            provider_message=message,
            http_status=status,
        )
