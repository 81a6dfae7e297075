"""Scheduled jobs (DESIGN §3 ``scheduler``): what is due when, and the retry policy.

A job is one piece of timed work (a pause that ends, a reminder, an approval that
expires, a drift check) identified by a unique ``key`` (``"pause_end:42"``): scheduling
the same key again moves it instead of adding a second one. Pure models and rules; the
store keeps the jobs and leases them, :mod:`bot.scheduler` runs them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: After this many failed attempts a job is given up (marked done with its last error).
MAX_ATTEMPTS = 10
#: The first retry waits this long; every further one twice as long as the one before...
RETRY_BASE = timedelta(seconds=10)
#: ...but never longer than this.
RETRY_CAP = timedelta(minutes=30)


class JobKind(StrEnum):
    PAUSE_END = "pause_end"
    PAUSE_REMINDER = "pause_reminder"
    APPROVAL_EXPIRY = "approval_expiry"
    DRIFT_CHECK = "drift_check"
    JOURNEY_CHECK = "journey_check"
    BATCH_END = "batch_end"  # a timed bulk pause ends: one job for the whole batch
    RECOVERY = "recovery"  # finish what a stopped process left: see bot.service.recovery


def job_key(kind: JobKind, ident: object) -> str:
    """The dedupe key of ``kind``'s job for ``ident``: ``job_key(PAUSE_END, 42)`` is
    ``"pause_end:42"``."""
    return f"{kind.value}:{ident}"


class Job(BaseModel):
    """One scheduled job and its lease (``owner`` holds it until ``locked_until``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    kind: JobKind
    key: str
    due_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0  # how many times it was claimed (the current run included)
    owner: str | None = None
    locked_until: datetime | None = None
    done_at: datetime | None = None
    last_error: str | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def late_by(self, now: datetime) -> timedelta:
        """How long after ``due_at`` it is at ``now`` (zero when not late): a job run after
        downtime tells the thread it is late and by how much."""
        return max(now - self.due_at, timedelta(0))


def retry_delay(
    attempts: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP
) -> timedelta:
    """Exponential backoff: the wait before the next try after ``attempts`` failed tries
    (``base``, ``2 * base``, ``4 * base``, ... never more than ``cap``)."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    exponent = min(attempts - 1, 32)  # 2**32 * base exceeds any sensible cap
    return min(base * (1 << exponent), cap)
