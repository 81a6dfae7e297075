"""The scheduler (DESIGN §3): runs due jobs (pause ends, reminders, approval expiries,
drift checks), leased in the database so several replicas can run against one database.

Each pass (:meth:`Scheduler.run_once`) leases a batch of due jobs to this scheduler's
``owner`` in one statement (:meth:`bot.store.repository.Store.claim_due`: ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, the store's ``BEGIN IMMEDIATE`` on SQLite), runs their
handlers at most ``concurrency`` at a time, and records each outcome: done, or failed and
retried later with exponential backoff (given up after ``max_attempts``). While jobs run, a
heartbeat keeps their leases alive. Jobs missed while the bot was down are simply due at
start: they run first (oldest first), and :meth:`bot.domain.jobs.Job.late_by` tells the
handler how late it is, for the thread.

**Handlers must be idempotent.** Delivery is at least once: when a process dies (SIGKILL,
OOM, a lost host) or stalls while holding a lease, the lease runs out and another
replica runs the job again, though the first run may have done part or all of its work.
A handler therefore checks the current state before acting and makes its writes
conditional (e.g. close the pause with the store's conditional update and post to the
thread only when that update won; read the target's state before resuming it). The
store's ``complete`` only counts for the lease holder, so a job is *recorded* done once.
A handler may re-arm its own key with ``Store.schedule``: the job then stays pending at
its new time instead of being completed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

import structlog
from structlog.typing import FilteringBoundLogger

from bot.domain.jobs import MAX_ATTEMPTS, RETRY_BASE, RETRY_CAP, Job, JobKind, retry_delay
from bot.store.repository import Store, utcnow

log = structlog.get_logger(__name__)

Handler = Callable[[Job], Awaitable[None]]
#: Runs many due jobs of one kind at once; each job's outcome: None (done) or its error.
BatchHandler = Callable[[Sequence[Job]], Awaitable[Mapping[int, BaseException | None]]]

#: The longest error text kept on a job.
MAX_ERROR_CHARS = 2000


class Scheduler:
    """Runs due jobs of the kinds it has ``handlers`` for, as ``owner`` (unique per
    process, e.g. host and pid)."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str,
        handlers: Mapping[JobKind, Handler],
        batch_handlers: Mapping[JobKind, BatchHandler] | None = None,
        workers: int = 1,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 50,
        concurrency: int = 20,
        idle_sleep: float = 1.0,
        max_attempts: int = MAX_ATTEMPTS,
        retry_base: timedelta = RETRY_BASE,
        retry_cap: timedelta = RETRY_CAP,
        heartbeat: float | None = None,
        housekeeping: Callable[[datetime], Awaitable[object]] | None = None,
        housekeeping_every: float = 3600.0,
    ) -> None:
        if batch < 1 or concurrency < 1 or max_attempts < 1 or workers < 1:
            raise ValueError("batch, concurrency, workers and max_attempts must be at least 1")
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        self.store = store
        self.owner = owner
        self.handlers = dict(handlers)
        self.batch_handlers = dict(batch_handlers or {})
        self.workers = workers
        self._slots: asyncio.Semaphore | None = None
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self.concurrency = concurrency
        self.idle_sleep = idle_sleep
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        #: Seconds between lease renewals of running jobs (a third of the lease by default).
        self.heartbeat = heartbeat if heartbeat is not None else lease.total_seconds() / 3
        #: Run at start and then every ``housekeeping_every`` seconds with the current time
        #: (e.g. forgetting old Slack delivery keys); idempotent, so replicas may overlap.
        self.housekeeping = housekeeping
        self.housekeeping_every = housekeeping_every

    @property
    def kinds(self) -> set[JobKind]:
        return set(self.handlers) | set(self.batch_handlers)

    async def run_once(self) -> int:
        """Lease the due jobs (up to ``batch``), run them, record the outcomes; how many
        jobs were leased. Jobs of a kind with a batch handler go to it together; the others
        run one by one, at most ``concurrency`` at a time (across this scheduler's workers).
        """
        if not self.kinds:
            return 0
        jobs = await self.store.claim_due(
            owner=self.owner,
            now=self.clock(),
            lease=self.lease,
            limit=self.batch,
            kinds=self.kinds,
        )
        if not jobs:
            return 0
        running = {job.id for job in jobs}
        renewals = asyncio.create_task(self._renew_leases(running))
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots
        batches: dict[JobKind, list[Job]] = {}
        singles: list[Job] = []
        for job in jobs:
            if job.kind in self.batch_handlers:
                batches.setdefault(job.kind, []).append(job)
            else:
                singles.append(job)

        async def run(job: Job) -> None:
            try:
                async with slots:
                    await self._run(job)
            finally:
                running.discard(job.id)

        async def run_batch(kind: JobKind, group: list[Job]) -> None:
            try:
                await self._run_batch(kind, group)
            finally:
                running.difference_update(job.id for job in group)

        try:
            await asyncio.gather(
                *(run(job) for job in singles),
                *(run_batch(kind, group) for kind, group in batches.items()),
            )
        finally:
            renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals
        return len(jobs)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run passes until ``stop`` is set, in ``workers`` loops side by side (while one
        waits on its slowest job, another claims what has come due): each goes straight on
        while full batches come back (a backlog after downtime), otherwise polls every
        ``idle_sleep`` seconds. A failing pass (e.g. the database is away) is logged and
        tried again."""
        log.info("scheduler started", owner=self.owner, kinds=sorted(self.kinds))
        await asyncio.gather(
            *(self._loop(stop, worker) for worker in range(self.workers)),
            self._housekeep(stop),
        )
        log.info("scheduler stopped", owner=self.owner)

    async def _loop(self, stop: asyncio.Event, worker: int = 0) -> None:
        # The workers' idle polls are spread over the interval, not all at once: work that
        # comes due waits idle_sleep / workers for a claim, not idle_sleep.
        if worker:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.idle_sleep * worker / self.workers)
        while not stop.is_set():
            try:
                leased = await self.run_once()
            except Exception:
                log.exception("scheduler pass failed", owner=self.owner)
                leased = 0
            if leased >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.idle_sleep)

    async def _housekeep(self, stop: asyncio.Event) -> None:
        if self.housekeeping is None:
            return
        while not stop.is_set():
            try:
                await self.housekeeping(self.clock())
            except Exception:
                log.exception("housekeeping failed, will try again", owner=self.owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.housekeeping_every)

    async def _run_batch(self, kind: JobKind, jobs: list[Job]) -> None:
        """Hand ``jobs`` to their batch handler; record each outcome (the done ones in one
        statement)."""
        try:
            outcomes: Mapping[int, BaseException | None] = await self.batch_handlers[kind](jobs)
        except Exception as exc:
            outcomes = {job.id: exc for job in jobs}
        done = [job for job in jobs if job.id in outcomes and outcomes[job.id] is None]
        for job in jobs:
            if job.id not in outcomes:
                outcomes = {
                    **outcomes,
                    job.id: RuntimeError("the batch handler gave no outcome for this job"),
                }
        for job in jobs:
            error = outcomes[job.id]
            if error is not None:
                await self._failed(job, error)
        recorded = await self.store.complete_many([job.id for job in done], owner=self.owner)
        now = self.clock()
        for job in done:
            bound = log.bind(job_id=job.id, kind=job.kind.value, key=job.key, attempt=job.attempts)
            if job.id in recorded:
                bound.info("job done", late_by_s=job.late_by(now).total_seconds())
            else:
                await self._not_recorded(job, bound)

    async def _run(self, job: Job) -> None:
        bound = log.bind(job_id=job.id, kind=job.kind.value, key=job.key, attempt=job.attempts)
        late = job.late_by(self.clock())
        try:
            await self.handlers[job.kind](job)
        except Exception as exc:
            await self._failed(job, exc)
            return
        if await self.store.complete(job.id, owner=self.owner):
            bound.info("job done", late_by_s=late.total_seconds())
        else:
            await self._not_recorded(job, bound)

    async def _not_recorded(self, job: Job, bound: FilteringBoundLogger) -> None:
        """A run whose ``complete`` did not count: either its handler re-armed its own key
        (a drift check or a journey check scheduling the next one: expected), or the lease
        went to someone else meanwhile (worth a warning)."""
        now = self.clock()
        current = await self.store.job(job.key)
        if (
            current is not None
            and current.id == job.id
            and not current.done
            and current.owner is None
            and current.attempts == 0
            and current.due_at > now
        ):
            bound.info(
                "job done, scheduled again", next_due_in_s=(current.due_at - now).total_seconds()
            )
            return
        bound.warning("job ran but its lease was lost (taken over, rescheduled or cancelled)")

    async def _failed(self, job: Job, exc: BaseException) -> None:
        """Record a failed run: retried later with backoff, or given up after
        ``max_attempts``."""
        bound = log.bind(job_id=job.id, kind=job.kind.value, key=job.key, attempt=job.attempts)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        if job.attempts >= self.max_attempts:
            held = await self.store.fail(job.id, owner=self.owner, error=error, retry_at=None)
            bound.error("job given up", error=error, held=held, exc_info=exc)
            return
        delay = retry_delay(job.attempts, base=self.retry_base, cap=self.retry_cap)
        held = await self.store.fail(
            job.id, owner=self.owner, error=error, retry_at=self.clock() + delay
        )
        bound.warning(
            "job failed, will retry",
            error=error,
            retry_in_s=delay.total_seconds(),
            held=held,
            exc_info=exc,
        )

    async def _renew_leases(self, running: set[int]) -> None:
        """Extend the leases of ``running`` jobs every ``heartbeat`` seconds."""
        while True:
            await asyncio.sleep(self.heartbeat)
            until = self.clock() + self.lease
            for job_id in sorted(running):
                try:
                    held = await self.store.extend_lease(job_id, owner=self.owner, until=until)
                except Exception:
                    log.exception("lease renewal failed", job_id=job_id, owner=self.owner)
                    continue
                if not held:
                    log.warning("lease lost while running", job_id=job_id, owner=self.owner)
