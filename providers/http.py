"""Small HTTP helpers shared by the REST adapters."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

#: Explicit timeouts for every provider call (SFMC's sync guidance is 120 s; we stay lower).
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


#: Connections in each pool an account's calls are spread over (see :class:`CallLimit`).
POOL_CONNECTIONS = 5


class CallLimit:
    """At most ``limit`` provider calls in flight at once (``None``: no limit), each
    through one of ``clients`` (the least busy) when given.

    One per provider account (an SFMC business unit), shared by every client that calls
    it: SFMC's SOAP guidance is at most 20 concurrent calls per account. The calls are
    spread over several small connection pools rather than one pool of ``limit``
    connections because httpcore 1.0's pool bookkeeping costs, on every request, time
    that grows with the square of its idle connections (encode/httpcore#1035): at 20
    calls in flight it was the largest CPU cost of a call.
    """

    def __init__(
        self, limit: int | None = None, *, clients: Sequence[httpx.AsyncClient] = ()
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the call limit must be at least 1")
        self.limit = limit
        self.clients = tuple(clients)
        self._busy = [0] * len(self.clients)
        self._semaphore = asyncio.Semaphore(limit) if limit is not None else None

    @classmethod
    def pooled(
        cls, limit: int, *, event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None
    ) -> CallLimit:
        """``limit`` calls over ``ceil(limit / POOL_CONNECTIONS)`` clients of their own
        (closed by :meth:`aclose`)."""
        pools = max(1, -(-limit // POOL_CONNECTIONS))
        clients = [
            new_async_client(event_hooks=event_hooks, max_connections=POOL_CONNECTIONS)
            for _ in range(pools)
        ]
        return cls(limit, clients=clients)

    @contextlib.asynccontextmanager
    async def slot(self, default: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
        """Wait for a free slot; the client to send through (``default`` without pools)."""
        if self._semaphore is not None:
            await self._semaphore.acquire()
        try:
            if not self.clients:
                yield default
                return
            index = min(range(len(self.clients)), key=self._busy.__getitem__)
            self._busy[index] += 1
            try:
                yield self.clients[index]
            finally:
                self._busy[index] -= 1
        finally:
            if self._semaphore is not None:
                self._semaphore.release()

    async def aclose(self) -> None:
        """Close the clients this limit owns (idempotent)."""
        for client in self.clients:
            if not client.is_closed:
                await client.aclose()


def new_async_client(
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """An AsyncClient with explicit timeouts, no environment proxies, and room to keep
    every connection a busy account uses alive (closing and reopening them costs more
    than the calls)."""
    return httpx.AsyncClient(
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(50, max_connections),
        ),
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
