"""A client-side token bucket so bulk calls stay inside scrip's 10 req/s, burst 30.

Scrip limits per organisation (reference scrip.md §2). One bucket is shared by every call
of a :class:`~providers.scrip.provider.ScripProvider`, so a bulk pause of 100 automations
paces itself instead of tripping the server's limiter. ``clock`` and ``sleep`` are
injectable so tests can measure the pacing without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`acquire` waits for one token.

    Waiters are served one at a time (an :class:`asyncio.Lock`), in arrival order.
    :meth:`hold` empties the bucket until a moment the server named (``Retry-After``), so
    concurrent callers back off together.
    """

    def __init__(
        self,
        *,
        rate: float = 10.0,
        burst: int = 30,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> float:
        """Tokens available right now (for tests and metrics)."""
        now = self._clock()
        if now < self._updated:
            return 0.0
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now >= self._updated and self._tokens >= 1 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                if now < self._updated:  # held until the server's Retry-After
                    delay = self._updated - now
                else:
                    delay = (1 - self._tokens) / self.rate
                await self._sleep(delay)
                waited += delay

    def hold(self, seconds: float) -> None:
        """No token before ``seconds`` from now; then one is ready at once."""
        until = self._clock() + max(0.0, seconds)
        if until > self._updated:
            self._updated = until
            self._tokens = 1.0
