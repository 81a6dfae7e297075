"""Failure-injection knobs shared by the emulators.

Each knob is a counter or a rate so a test can say "the next 2 calls get a 429" or "every
call is 50 ms slow". Emulators consult them per request through :meth:`Knobs.take`.
"""

from __future__ import annotations

import random
import threading

from pydantic import BaseModel, Field


class KnobSettings(BaseModel):
    """Values a test (or ``POST /_sandbox/knobs``) may set."""

    latency_ms: float = Field(default=0, ge=0, description="Added to every response")
    error_5xx_rate: float = Field(default=0, ge=0, le=1, description="Share of calls answered 5xx")
    fail_next_5xx: int = Field(default=0, ge=0, description="The next N calls answer 5xx")
    rate_limit_next: int = Field(default=0, ge=0, description="The next N calls are throttled")
    retry_after_s: int = Field(default=5, ge=0, description="Retry-After sent when throttling")
    malformed_next: int = Field(default=0, ge=0, description="The next N bodies are garbage")
    expire_tokens_next: int = Field(
        default=0, ge=0, description="The next N authenticated calls see an expired token"
    )
    path_filter: str | None = Field(
        default=None, description="Only requests whose path contains this count"
    )


class Knobs:
    """Thread-safe knob state; ``take(name)`` consumes one unit of a counter."""

    def __init__(self, *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.settings = KnobSettings()

    def set(self, **values: object) -> KnobSettings:
        with self._lock:
            self.settings = self.settings.model_copy(update=values)
            KnobSettings.model_validate(self.settings.model_dump())
            return self.settings

    def reset(self) -> None:
        with self._lock:
            self.settings = KnobSettings()

    def applies(self, path: str) -> bool:
        f = self.settings.path_filter
        return f is None or f in path

    def take(self, name: str, path: str = "") -> bool:
        """Consume one unit of counter ``name`` (e.g. ``rate_limit_next``) if any is left."""
        with self._lock:
            if not self.applies(path):
                return False
            left = getattr(self.settings, name)
            if left <= 0:
                return False
            self.settings = self.settings.model_copy(update={name: left - 1})
            return True

    def roll_5xx(self, path: str = "") -> bool:
        if self.take("fail_next_5xx", path):
            return True
        with self._lock:
            rate = self.settings.error_5xx_rate
            return rate > 0 and self.applies(path) and self._rng.random() < rate

    @property
    def latency_s(self) -> float:
        return self.settings.latency_ms / 1000.0
