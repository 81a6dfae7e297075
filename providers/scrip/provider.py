"""The scrip.dev automations adapter (REST through httpx; reference scrip.md).

Verbs: pause = ``PATCH {status: paused}``, resume = ``PATCH {status: active}``,
run = ``POST .../trigger``, stop = ``POST .../cancel`` (the current run only; the
automation stays active). DELETE is never sent: it archives for good.

Every call goes through one client-side token bucket (10 req/s, 28 of the burst of 30), honours
``Retry-After`` on 429, retries idempotent calls (GET and the status PATCH) on 5xx and
transport failures with exponential backoff, and turns every failure into the project's
own errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import httpx
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
from bot.domain.models import (
    ActionReceipt,
    NormalState,
    PauseOptions,
    TargetKind,
    TargetState,
    TargetSummary,
    Verb,
    VersionSelector,
)
from bot.domain.traits import ProviderTraits
from providers.scrip.mapping import (
    RUNNING_EXECUTIONS,
    is_uuid,
    to_state,
    to_summary,
    untriggerable_reason,
)
from providers.scrip.ratelimit import Clock, Sleep, TokenBucket

log = logging.getLogger(__name__)

PROVIDER = "scrip"
MAX_PAGE_SIZE = 200
_MAX_PAGES = 1000
_MAX_BACKOFF_S = 8.0

Method = Literal["GET", "PATCH", "POST"]


class _Call:
    """What one request is for, to word its errors."""

    def __init__(
        self,
        what: str,
        *,
        key: str | None = None,
        state: TargetState | None = None,
        refusal_is_state: bool = False,
    ) -> None:
        self.what = what
        self.key = key
        self.state = state
        self.refusal_is_state = refusal_is_state


S = NormalState

#: What scrip automations can do (reference scrip.md §7).
SCRIP_TRAITS = ProviderTraits(
    product="scrip",
    allowed_from={
        Verb.PAUSE: frozenset({S.ACTIVE, S.RUNNING}),
        Verb.RESUME: frozenset({S.PAUSED}),
        Verb.RUN: frozenset({S.ACTIVE}),
        Verb.STOP: frozenset({S.RUNNING}),  # cancel the current run
    },
    expected_after={
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE, S.RUNNING}),
        Verb.RUN: frozenset({S.RUNNING}),
        Verb.STOP: frozenset({S.ACTIVE}),
    },
    refused={Verb.STOP: "no run is in progress"},
    # a bulk request's targets in flight; the token bucket paces them to 10 requests a
    # second (burst 30) per organisation
    parallel_targets=10,
)


#: Tokens of scrip's burst the client leaves unused (see :class:`ScripProvider`).
BURST_SPARE = 2


class ScripProvider:
    """Scrip automations of one program in one environment (``TargetKind.SCRIP``).

    Target keys are automation ids (UUIDs); names are resolved with :meth:`find_by_name`.
    ``http`` may be a shared :class:`httpx.AsyncClient` (then :meth:`aclose` leaves it
    open); ``bucket`` may be shared by providers that use the same scrip organisation.
    ``clock`` and ``sleep`` drive pacing and backoff (tests inject fakes).
    """

    kind: TargetKind = TargetKind.SCRIP
    traits: ProviderTraits = SCRIP_TRAITS

    def __init__(
        self,
        *,
        environment: str,
        base_url: str,
        api_key: SecretStr,
        program_id: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        page_size: int = MAX_PAGE_SIZE,
        max_retry_after: float = 60.0,
        backoff_base: float = 0.5,
        rate_per_s: float = 10.0,
        burst: int = 30,
        bucket: TokenBucket | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"environments.{environment}.scrip.base_url must be an http(s) URL, "
                f"got {base_url!r}"
            )
        if not is_uuid(program_id):
            raise ConfigError(
                f"environments.{environment}.scrip.program_id must be a UUID, got {program_id!r}"
            )
        if not api_key.get_secret_value():
            raise ConfigError(f"environments.{environment}.scrip.api_key is empty")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError("page_size must be between 1 and 200")
        self.environment = environment
        self.program_id = program_id
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self._timeout)
        self._max_retries = max_retries
        self._page_size = page_size
        self._max_retry_after = max_retry_after
        self._backoff_base = backoff_base
        self._sleep = sleep
        # Two of scrip's burst are kept spare: calls paced at exactly its rate can reach it
        # bunched (a slow request, then a quick one), and another caller of the organisation
        # may need one; a 429 would cost every call a whole second (Retry-After).
        self.bucket = bucket or TokenBucket(
            rate=rate_per_s, burst=max(1, burst - BURST_SPARE), clock=clock, sleep=sleep
        )

    def __repr__(self) -> str:  # never shows the key
        return f"ScripProvider(environment={self.environment!r}, program_id={self.program_id!r})"

    async def __aenter__(self) -> ScripProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ================================================================= reads
    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        """Read one automation by id. A key that is not a UUID cannot exist: NotFound."""
        key = key.strip()
        if not is_uuid(key):
            raise NotFound(
                f"No scrip automation with id {key!r} in {self.environment}: "
                "scrip automation ids are UUIDs."
            )
        body = await self._request(
            "GET", self._automation_path(key), call=_Call(f"read automation {key}", key=key)
        )
        return to_state(self._object(body, "GET"), self.environment)

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        wanted = name.strip().casefold()
        if not wanted:
            return []
        return [
            to_summary(item)
            async for item in self._pages({"search": name.strip()}, "find automations by name")
            if str(item.get("name", "")).casefold() == wanted
        ]

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        text = text.strip()
        if limit < 1:
            return []
        if is_uuid(text):
            try:
                state = await self.get(text)
            except NotFound:
                return []
            target = state.target
            return [
                TargetSummary(
                    kind=self.kind,
                    key=target.key,
                    name=target.name,
                    id=target.id,
                    raw_status=state.raw_status,
                )
            ]
        params = {"search": text} if text else {}
        found: list[TargetSummary] = []
        async for item in self._pages(params, "search automations", page_size=limit):
            found.append(to_summary(item))
            if len(found) >= limit:
                break
        return found

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        params = {"status": "paused"} if paused_only else {}
        return [
            to_state(item, self.environment)
            async for item in self._pages(params, "list automations")
        ]

    # ================================================================ verbs
    async def pause(
        self, state: TargetState, *, options: PauseOptions, versions: VersionSelector
    ) -> ActionReceipt:
        body = await self._set_status(state, "paused", "pause")
        message = "Paused: no new runs will start."
        if body.get("execution_status") in RUNNING_EXECUTIONS:
            message += (
                " The run in progress continues until it finishes"
                f"{_progress(body)}; stop it to cancel the rest."
            )
        return ActionReceipt(message=message)

    async def resume(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        body = await self._set_status(state, "active", "resume")
        next_run = body.get("next_run_at")
        suffix = f" Next run at {next_run}." if isinstance(next_run, str) else ""
        return ActionReceipt(message=f"Resumed: the automation is active again.{suffix}")

    async def run(self, state: TargetState) -> ActionReceipt:
        reason = untriggerable_reason(state.details.get("trigger_type"), state.details.get("scope"))
        if reason is not None:
            raise Unsupported(f"Cannot run {_name(state)}: {reason}.")
        raw = await self._request(
            "POST",
            self._automation_path(state.target.id, "trigger"),
            call=_Call(f"run {_name(state)}", state=state, refusal_is_state=True),
        )
        body = self._object(raw, "POST")
        if body.get("execution_status") in RUNNING_EXECUTIONS:
            message = f"Triggered: a run over the participants is {body['execution_status']}."
        else:
            message = "Triggered: the next run was moved to now."
        return ActionReceipt(message=message)

    async def stop(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        raw = await self._request(
            "POST",
            self._automation_path(state.target.id, "cancel"),
            call=_Call(f"stop {_name(state)}", state=state, refusal_is_state=True),
        )
        body = self._object(raw, "POST")
        return ActionReceipt(
            message=(
                f"Canceled the current run{_progress(body)}. The automation stays "
                f"{body.get('status', 'active')} and fires on its next schedule unless paused."
            )
        )

    async def _set_status(self, state: TargetState, status: str, verb: str) -> dict[str, Any]:
        raw = await self._request(
            "PATCH",
            self._automation_path(state.target.id),
            json={"status": status},
            call=_Call(f"{verb} {_name(state)}", state=state, refusal_is_state=True),
        )
        return self._object(raw, "PATCH")

    # ================================================================ HTTP
    def _automation_path(self, automation_id: str, action: str | None = None) -> str:
        path = f"{self._base}/programs/{self.program_id}/automations/{automation_id}"
        return f"{path}/{action}" if action else path

    async def _pages(
        self, params: Mapping[str, str], what: str, *, page_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of the automation list, following ``next_cursor`` while ``has_more``."""
        size = min(page_size or self._page_size, self._page_size)
        query: dict[str, str] = {**params, "limit": str(size)}
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            raw = await self._request(
                "GET",
                f"{self._base}/programs/{self.program_id}/automations",
                params=query,
                call=_Call(what),
            )
            body = self._object(raw, "GET")
            data = body.get("data")
            if not isinstance(data, list):
                raise self._shape_error("GET", "a list without 'data'")
            for item in data:
                if isinstance(item, dict):
                    yield item
            pagination = body.get("pagination")
            page = pagination if isinstance(pagination, dict) else {}
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not isinstance(cursor, str) or not cursor:
                return
            if cursor in seen:
                raise self._shape_error("GET", "a pagination cursor that repeats")
            seen.add(cursor)
            query["cursor"] = cursor
        raise self._shape_error("GET", f"more than {_MAX_PAGES} pages")

    async def _request(
        self,
        method: Method,
        url: str,
        *,
        call: _Call,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one call with pacing and bounded retries; return the decoded JSON body."""
        idempotent = method in ("GET", "PATCH")  # PATCH {status} is naturally idempotent
        throttled = 0
        failures = 0
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Accept": "application/json",
        }
        while True:
            await self.bucket.acquire()
            try:
                response = await self._http.request(
                    method, url, params=params, json=json, headers=headers, timeout=self._timeout
                )
            except httpx.TransportError as exc:
                # A refused connection never reached scrip: safe to retry for any method.
                safe = idempotent or isinstance(exc, httpx.ConnectError)
                if safe and failures < self._max_retries:
                    failures += 1
                    await self._backoff(failures)
                    continue
                raise self._transport_error(exc, call) from exc
            log.debug("scrip %s %s -> %s", method, response.url.path, response.status_code)
            status = response.status_code
            if status == 429:
                retry_after = _retry_after(response)
                wait = retry_after if retry_after is not None else self._delay(throttled + 1)
                if throttled < self._max_retries and wait <= self._max_retry_after:
                    throttled += 1
                    self.bucket.hold(wait)
                    continue
                self._raise_for(response, method, call)
            if status >= 500 and idempotent and failures < self._max_retries:
                failures += 1
                await self._backoff(failures)
                continue
            if status >= 400:
                self._raise_for(response, method, call)
            return self._decode(response, method)

    def _delay(self, attempt: int) -> float:
        return float(min(_MAX_BACKOFF_S, self._backoff_base * 2 ** (attempt - 1)))

    async def _backoff(self, attempt: int) -> None:
        await self._sleep(self._delay(attempt))

    def _decode(self, response: httpx.Response, method: str) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"scrip answered {method} {response.url.path} with a body that was not JSON",
                provider=PROVIDER,
                provider_message=response.text[:200] or None,
                http_status=response.status_code,
                retryable=method == "GET",
            ) from exc

    def _object(self, body: Any, method: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise self._shape_error(method, "a body that is not a JSON object")
        return body

    @staticmethod
    def _shape_error(method: str, what: str) -> ProviderError:
        return ProviderError(
            f"scrip answered {method} with {what}", provider=PROVIDER, retryable=False
        )

    def _transport_error(self, exc: httpx.TransportError, call: _Call) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            reason = f"did not answer within {self._timeout.read:g}s"
        else:
            reason = f"could not be reached ({type(exc).__name__})"
        return ProviderError(
            f"Could not {call.what}: scrip {reason}", provider=PROVIDER, retryable=True
        )

    def _raise_for(self, response: httpx.Response, method: str, call: _Call) -> NoReturn:
        status = response.status_code
        code, message, details = _error_body(response)
        scrip_says = message or f"HTTP {status}"
        common: dict[str, Any] = {
            "provider": PROVIDER,
            "code": code,
            "provider_message": message,
            "http_status": status,
        }
        if status in (401, 403):
            raise AuthError(
                f"scrip refused the API key for {self.environment} ({scrip_says}); "
                "check environments."
                f"{self.environment}.scrip.api_key",
                **common,
            )
        if status == 404:
            key = call.key or (call.state.target.id if call.state else None)
            where = f"program {self.program_id} in {self.environment}"
            if key is not None:
                raise NotFound(f"No scrip automation with id {key} in {where}.")
            raise NotFound(f"scrip program {self.program_id} not found in {self.environment}.")
        if status == 429:
            raise RateLimited(
                f"scrip is rate limiting this organisation; could not {call.what}",
                retry_after=_retry_after(response),
                **common,
            )
        if status == 409 or (status == 400 and call.refusal_is_state):
            if details.get("field") == "trigger_type":
                raise Unsupported(f"Cannot {call.what}: scrip says {scrip_says}.")
            current = _current_state(details, call.state)
            raise InvalidState(
                f"scrip refused to {call.what}: {scrip_says} (current state: {current}).",
                current_state=current,
            )
        if status >= 500:
            raise ProviderError(
                f"scrip failed to {call.what} (HTTP {status})", retryable=True, **common
            )
        raise ProviderError(f"scrip rejected the request to {call.what}", **common)


def _name(state: TargetState) -> str:
    return f"'{state.target.name}'"


def _progress(body: Mapping[str, Any]) -> str:
    done, total = body.get("participants_processed"), body.get("participants_total")
    if isinstance(done, int) and isinstance(total, int):
        return f" ({done}/{total} participants processed)"
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _error_body(response: httpx.Response) -> tuple[str | None, str | None, dict[str, Any]]:
    """Scrip's flat error body ``{code, message, details?}``, tolerating anything else."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, (f"{text[:200]} (the body was not JSON)" if text else None), {}
    if not isinstance(body, dict):
        return None, None, {}
    code, message, details = body.get("code"), body.get("message"), body.get("details")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
        details if isinstance(details, dict) else {},
    )


def _current_state(details: Mapping[str, Any], state: TargetState | None) -> str:
    """The state scrip names in ``details`` (else the one we read last)."""
    known = state.raw_status if state is not None else "unknown"
    received, status = details.get("received"), details.get("current_status")
    if details.get("field") == "execution_status" and isinstance(received, str):
        base = status if isinstance(status, str) else known.split("/", 1)[0]
        return base if received == "none" else f"{base}/{received}"
    for value in (status, received):
        if isinstance(value, str) and value:
            return value
    return known
