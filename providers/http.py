"""Small HTTP helpers shared by the REST adapters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

#: Explicit timeouts for every provider call (SFMC's sync guidance is 120 s; we stay lower).
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class CallLimit:
    """At most ``limit`` provider calls in flight at once (``None``: no limit).

    One per provider account (an SFMC business unit), shared by every client that calls
    it: SFMC's SOAP guidance is at most 20 concurrent calls per account.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the call limit must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit) if limit is not None else None

    async def __aenter__(self) -> None:
        if self._semaphore is not None:
            await self._semaphore.acquire()

    async def __aexit__(self, *exc: object) -> None:
        if self._semaphore is not None:
            self._semaphore.release()


def new_async_client(
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with explicit timeouts, no environment proxies, and room to keep
    every connection a busy account uses alive (closing and reopening them costs more
    than the calls)."""
    return httpx.AsyncClient(
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        trust_env=False,
        follow_redirects=False,
        event_hooks=event_hooks,
    )


def retry_after_seconds(response: httpx.Response, body: Any = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date) or a ``retryAfter`` field."""
    raw = response.headers.get("Retry-After")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                return None
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if isinstance(body, dict):
        value = body.get("retryAfter")
        if isinstance(value, int | float):
            return float(value)
    return None


def json_or_none(response: httpx.Response) -> Any:
    """The parsed JSON body, or None when the body is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def normalise_base_url(url: str) -> str:
    """Accept a bare host or a full URL; return ``scheme://host[:port]/path/`` with one slash."""
    url = url.strip()
    if "://" not in url:
        url = f"https://{url}"
    return url.rstrip("/") + "/"
