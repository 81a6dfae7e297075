"""Pacing of Slack calls per channel and per workspace, and coalescing of bursts
(reference §2.6).

Slack budgets every Web API method per workspace (per app) by tier: ``chat.update``
Tier 3 (about 50 a minute), ``views.publish`` and ``chat.postEphemeral`` Tier 4 (about 100
a minute); ``chat.postMessage`` allows about one message per second per channel with short
bursts, plus a workspace-wide cap. Past a budget Slack answers 429 with ``Retry-After``.
The client's ``AsyncRateLimitErrorRetryHandler`` retries a few 429s by itself;
:class:`ChannelPacer` keeps us under the limits in the first place and retries whatever
429 still gets through, so no message is ever dropped for being one too many.

A :class:`ChannelPacer` paces each key (a channel, a card) on its own bucket; with a
:class:`WorkspaceBudget` every send of the pacer also takes a token of that one bucket
(every ``chat.update`` of the process shares Tier 3, and so on). When the workspace
budget is short, the most urgent waiting send gets the next token (:class:`Urgency`:
what someone is looking at now, then thread notes, notify-channel notices, card edits
showing a settled state, card edits of a request still moving, Home refreshes); among
equals, the one that asked first. A 429 makes the whole budget wait ``Retry-After``, not
only the key that met it.

Holding back card edits: an edit of a card whose request is still moving (received,
approved, executing) will be followed by another edit of that card in a moment. While the
``chat.update`` budget is short it waits: it goes only when the budget holds a token for
it and one for the later edit of every card still moving, or when its request settles
meanwhile (then, rendered when it is sent, it shows the settled state: one call instead
of two), or after :data:`HOLD_BACK_MAX` seconds (a long execution still shows "Working").
A card therefore always ends in its final state, and no edit is dropped.

:class:`Coalescer` gathers items added under one key within a short window and hands them
over as one batch (the notifier turns many notify-channel notices into one summary).

Everything here runs in one event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final, Generic, TypeVar

import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Seconds to wait after a 429 that names no ``Retry-After``.
DEFAULT_RETRY_AFTER = 1.0
_EPSILON = 1e-9


def rate_limited_for(exc: BaseException) -> float | None:
    """Seconds Slack asked us to wait when ``exc`` is its 429 answer, else ``None``."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return None
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    if response.status_code != 429 and data.get("error") != "ratelimited":
        return None
    headers: Any = response.headers or {}
    for name, value in headers.items():
        if str(name).lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, list | tuple) and value else value
        try:
            return max(0.0, float(raw))
        except (TypeError, ValueError):
            break
    return DEFAULT_RETRY_AFTER


class Urgency(IntEnum):
    """Which send gets a workspace budget's next token: lower first."""

    NOW = 0  # someone is waiting for it: a new card, a private answer, a Home tab opened
    NOTE = 1  # an outcome note in a card's thread
    NOTICE = 2  # a notify-channel notice
    EDIT = 3  # a card edit showing a settled state
    EDIT_MOVING = 4  # a card edit of a request still moving (it will change again soon)
    REFRESH = 5  # a Home tab refreshed for someone who opened it earlier


#: Sends that wait while their budget is in use (see :class:`WorkspaceBudget`).
HELD_BACK: Final = frozenset({Urgency.EDIT_MOVING})
#: How long a held-back send waits at most; then it is sent like any other.
HOLD_BACK_MAX: Final = 10.0
#: How often held-back sends are looked at again (their urgency may have changed).
_RECHECK: Final = 0.25

#: An urgency fixed when the send is queued, or read again each time a token is handed
#: out (a card edit queued while its request was moving may show a settled state by then).
UrgencyOf = Urgency | Callable[[], Urgency]


def _urgency(of: UrgencyOf) -> Urgency:
    return of() if callable(of) else of


@dataclass(slots=True)
class _Waiter:
    urgency: UrgencyOf
    order: int
    since: float
    future: asyncio.Future[None]


class WorkspaceBudget:
    """One token bucket for one Slack method across the workspace: ``per_min`` calls a
    minute after a burst of ``burst``, shared by every key of the pacers that hold it.

    :meth:`take` returns at once while tokens are left and nobody waits; otherwise the
    caller waits its turn, and each token goes to the most urgent waiter (the first of
    equals). :meth:`hold` (a 429's ``Retry-After``) empties the bucket and stops it for
    that long.

    Holding back: a send whose urgency is in :data:`HELD_BACK` (a card edit of a request
    still moving: another edit of that card is sure to follow) goes only while the bucket
    holds a token for it and one for the later send of every held-back one (or is full),
    so it never takes a token a settled card will need. Otherwise it waits until its urgency changes
    (the request settled: the edit then shows the settled state, one call instead of
    two) or ``hold_max`` seconds pass (a long execution still shows "Working"). Nothing is
    dropped, only delayed.

    Runs in one event loop; not thread-safe.
    """

    def __init__(
        self,
        *,
        per_min: float,
        burst: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        name: str = "budget",
        hold_max: float = HOLD_BACK_MAX,
    ) -> None:
        if per_min <= 0 or burst < 1:
            raise ValueError("per_min must be positive and burst at least 1")
        self.rate = per_min / 60.0
        self.burst = burst
        self.name = name
        self.hold_max = hold_max
        self._clock = clock
        self._sleep = sleep
        self._bucket = _Bucket(tokens=float(burst), updated=clock())
        self._held_until = 0.0
        self._waiters: list[_Waiter] = []
        self._order = 0
        self._dispatcher: asyncio.Task[None] | None = None
        #: Calls let through so far, and how many of them waited for a token.
        self.taken = 0
        self.waited = 0

    def waiting(self) -> int:
        """Sends waiting for a token now."""
        return sum(1 for w in self._waiters if not w.future.done())

    async def take(self, urgency: UrgencyOf = Urgency.NOW) -> None:
        """Spend one call of the budget, waiting for a token by ``urgency``."""
        now = self._clock()
        if not self.waiting() and self._ready() and self._may_go(_urgency(urgency), now, now):
            self._spend()
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._order += 1
        self._waiters.append(_Waiter(urgency, self._order, now, future))
        self.waited += 1
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(
                self._dispatch(), name=f"budget:{self.name}", context=contextvars.Context()
            )
        await future

    def hold(self, seconds: float) -> None:
        """Slack refused a call (429): nobody sends for ``seconds``, then the bucket
        refills from empty."""
        now = self._clock()
        self._held_until = max(self._held_until, now + seconds)
        self._bucket.tokens = 0.0
        self._bucket.updated = max(self._bucket.updated, self._held_until)

    def _ready(self) -> bool:
        if self._clock() < self._held_until:
            return False
        self._refill()
        return self._bucket.tokens >= 1 - _EPSILON

    def _may_go(self, urgency: Urgency, since: float, now: float) -> bool:
        if urgency not in HELD_BACK or now - since >= self.hold_max:
            return True
        # a token for this send, and one for the later send of each held-back one (this
        # one's included: those are sure to come), or a full bucket
        held = sum(1 for w in self._waiters if _urgency(w.urgency) in HELD_BACK)
        return self._bucket.tokens >= min(self.burst, 1 + max(1, held)) - _EPSILON

    def _spend(self) -> None:
        self._bucket.tokens = max(0.0, self._bucket.tokens - 1)
        self.taken += 1

    def _refill(self) -> None:
        now = self._clock()
        bucket = self._bucket
        if now > bucket.updated:
            refilled = bucket.tokens + (now - bucket.updated) * self.rate
            bucket.tokens = min(float(self.burst), refilled)
            bucket.updated = now

    async def _dispatch(self) -> None:
        while True:
            self._waiters = [w for w in self._waiters if not w.future.done()]
            if not self._waiters:
                return
            now = self._clock()
            if now < self._held_until:
                await self._sleep(self._held_until - now)
                continue
            if not self._ready():
                await self._sleep((1 - self._bucket.tokens) / self.rate)
                continue
            ranked = sorted((_urgency(w.urgency), w.order, w) for w in self._waiters)
            first = next((w for u, _, w in ranked if self._may_go(u, w.since, now)), None)
            if first is None:  # only held-back sends: look again soon
                await self._sleep(_RECHECK)
                continue
            self._waiters.remove(first)
            self._spend()
            first.future.set_result(None)
            await asyncio.sleep(0)  # let it send before the next one is chosen


@dataclass(slots=True)
class _Job:
    send: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]
    urgency: UrgencyOf = Urgency.NOW


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ChannelPacer:
    """A FIFO of sends per key (a channel), each key at most ``rate`` per second after a
    burst of ``burst``.

    A key with work has one worker task, started on demand and ended when its queue is
    empty, so keys proceed in parallel while order within a key is kept (a thread reply
    queued after its card is never sent before it). A send that fails with a 429 is sent
    again after ``Retry-After``, as often as it takes; any other failure goes to the
    caller. A caller that stops waiting does not take its send out of the queue.

    With a ``budget`` (Slack's workspace-wide budget of the method) each send also takes
    one of its tokens, after its key's, by the ``urgency`` it was submitted with; a 429
    holds the whole budget for ``Retry-After``.
    """

    def __init__(
        self,
        *,
        rate: float = 1.0,
        burst: int = 3,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        name: str = "posts",
        budget: WorkspaceBudget | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.budget = budget
        self.rate = rate
        self.burst = burst
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._queues: dict[str, deque[_Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        #: 429s seen (and retried) so far.
        self.rate_limited = 0

    def submit(
        self, key: str, send: Callable[[], Awaitable[T]], urgency: UrgencyOf = Urgency.NOW
    ) -> asyncio.Future[T]:
        """Queue ``send`` (called once it is ``key``'s turn and, with a budget, its
        ``urgency``'s); its result as a future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queues.setdefault(key, deque()).append(_Job(send, future, urgency))
        if key not in self._workers:
            # A fresh context: a worker started inside a store transaction (an event
            # published with its state change) must not run in that transaction.
            self._workers[key] = loop.create_task(
                self._work(key), name=f"pacer:{self.name}", context=contextvars.Context()
            )
        return future

    async def post(
        self, key: str, send: Callable[[], Awaitable[T]], urgency: UrgencyOf = Urgency.NOW
    ) -> T:
        """Queue ``send`` and wait for its result (Slack's response)."""
        return await self.submit(key, send, urgency)

    def pending(self, key: str | None = None) -> int:
        """Sends queued or in flight (for ``key``, or for all keys)."""
        if key is not None:
            return len(self._queues.get(key, ()))
        return sum(len(q) for q in self._queues.values())

    async def drain(self, within: float | None = None) -> bool:
        """Wait until every queue is empty (shutdown); whether it got there in time."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._workers:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._workers.values()), timeout=left)
        return True

    # -- the worker of one key ------------------------------------------------------------

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue[0]
                await self._take_token(key, job.urgency)
                await self._send(key, job)
                queue.popleft()
        finally:
            # No await between the last emptiness check and here: a send queued from now
            # on starts a new worker.
            self._workers.pop(key, None)
            if self._queues.get(key) is queue:
                del self._queues[key]
            for job in queue:  # only when cancelled (the loop is going away)
                job.future.cancel()
            self._prune()

    async def _take_token(self, key: str, urgency: UrgencyOf) -> None:
        """Wait for a token of ``key`` and then of the budget; the key's is spent only when
        the send goes (only this key's worker spends it), so a send that waited for the
        budget does not go right after one the key sent meanwhile."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=self._clock())
        while True:
            self._refill(bucket)
            if bucket.tokens >= 1 - _EPSILON:
                break
            await self._sleep((1 - bucket.tokens) / self.rate)
        if self.budget is not None:
            await self.budget.take(urgency)
            self._refill(bucket)
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def _refill(self, bucket: _Bucket) -> None:
        now = self._clock()
        if now > bucket.updated:
            refilled = bucket.tokens + (now - bucket.updated) * self.rate
            bucket.tokens = min(float(self.burst), refilled)
            bucket.updated = now

    async def _send(self, key: str, job: _Job) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await job.send()
            except Exception as exc:
                wait = rate_limited_for(exc)
                if wait is None:
                    if not job.future.done():
                        job.future.set_exception(exc)
                    else:
                        log.warning("paced_send_failed", pacer=self.name, key=key, exc_info=exc)
                    return
                self.rate_limited += 1
                if self.budget is not None:
                    self.budget.hold(wait)
                log.warning(
                    "slack_rate_limited",
                    pacer=self.name,
                    key=key,
                    retry_after=wait,
                    attempt=attempt,
                )
                await self._sleep(wait)
                if self.budget is not None:
                    await self.budget.take(job.urgency)
                continue
            if not job.future.done():
                job.future.set_result(result)
            return

    def _prune(self) -> None:
        """Forget the buckets of idle keys that are full again (they start full anyway)."""
        for key in [k for k in self._buckets if k not in self._workers]:
            bucket = self._buckets[key]
            self._refill(bucket)
            if bucket.tokens >= self.burst - _EPSILON:
                del self._buckets[key]


@dataclass(slots=True)
class _Batch(Generic[T]):
    opened: float
    last: float
    items: list[T] = field(default_factory=list)


class Coalescer(Generic[T]):
    """Items added under one key are handed to ``flush(key, items)`` together.

    A batch opens with its first item and closes once ``window`` seconds pass without a
    new one, or ``max_hold`` seconds after it opened, whichever comes first. Items added
    while a batch is being flushed start the next batch; batches of one key are flushed
    one after another, in order. A failing flush is logged.
    """

    def __init__(
        self,
        flush: Callable[[str, list[T]], Awaitable[None]],
        *,
        window: float = 2.0,
        max_hold: float = 20.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        name: str = "notices",
    ) -> None:
        if window < 0 or max_hold < window:
            raise ValueError("window must be >= 0 and max_hold >= window")
        self.window = window
        self.max_hold = max_hold
        self.name = name
        self._flush = flush
        self._clock = clock
        self._sleep = sleep
        self._batches: dict[str, _Batch[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._hurry = False

    def add(self, key: str, item: T) -> None:
        now = self._clock()
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(opened=now, last=now)
        batch.items.append(item)
        batch.last = now
        if key not in self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks[key] = loop.create_task(
                self._run(key), name=f"coalesce:{self.name}", context=contextvars.Context()
            )

    def pending(self) -> int:
        return sum(len(b.items) for b in self._batches.values())

    async def drain(self, within: float | None = None) -> bool:
        """Close every open batch now and wait for the flushes (shutdown)."""
        self._hurry = True
        try:
            loop = asyncio.get_running_loop()
            deadline = None if within is None else loop.time() + within
            while self._tasks:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    return False
                await asyncio.wait(set(self._tasks.values()), timeout=left)
            return True
        finally:
            self._hurry = False

    async def _run(self, key: str) -> None:
        try:
            while (batch := self._batches.get(key)) is not None:
                while not self._hurry:
                    now = self._clock()
                    due = min(batch.last + self.window, batch.opened + self.max_hold)
                    if now >= due:
                        break
                    await self._sleep(due - now)
                del self._batches[key]
                try:
                    await self._flush(key, batch.items)
                except Exception:
                    log.exception("coalesced_flush_failed", key=key, items=len(batch.items))
        finally:
            self._tasks.pop(key, None)
