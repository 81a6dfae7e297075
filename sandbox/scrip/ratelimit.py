"""The emulator's per-organisation token bucket (10 req/s, burst 30; reference scrip.md §2).

It runs on the emulator :class:`~sandbox.clock.Clock`, so a frozen clock makes it exact:
nothing refills until a test advances time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

_EPSILON = 1e-6


@dataclass(frozen=True)
class BucketReading:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the bucket is full again
    retry_after: int  # whole seconds (only meaningful when not allowed)

    def headers(self, *, forced_empty: bool = False) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0" if forced_empty else str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class TokenBucket:
    def __init__(self, *, rate: float, burst: int, now: datetime) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def _refill(self, now: datetime) -> None:
        if now > self._updated:
            elapsed = (now - self._updated).total_seconds()
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._updated = now

    def take(self, now: datetime) -> BucketReading:
        """Consume one token if there is one; report the headers either way."""
        self._refill(now)
        allowed = self._tokens >= 1 - _EPSILON
        if allowed:
            self._tokens = max(0.0, self._tokens - 1)
        return self._reading(now, allowed)

    def peek(self, now: datetime) -> BucketReading:
        self._refill(now)
        return self._reading(now, True)

    def _reading(self, now: datetime, allowed: bool) -> BucketReading:
        missing = max(0.0, self.burst - self._tokens)
        reset_at = math.ceil(now.timestamp() + missing / self.rate)
        retry_after = max(1, math.ceil((1 - self._tokens) / self.rate - _EPSILON))
        return BucketReading(
            allowed=allowed,
            limit=self.burst,
            remaining=math.floor(self._tokens + _EPSILON),
            reset_at=reset_at,
            retry_after=retry_after,
        )
