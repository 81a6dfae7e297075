"""Recovery: finish what a stopped process left, at start and then periodically.

Votes that already decide a request but were not acted on are acted on
(:meth:`bot.service.approvals.ApprovalService.recover`); received or approved requests
are executed and executing requests whose owner's lease ran out are taken over
(:meth:`bot.service.requests.RequestService.recover`). The periodic pass is one scheduler
job (``recovery``) that re-arms itself, so one process at a time runs it; every step is a
conditional transition besides, so a request still runs exactly once across replicas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog

from bot.domain.jobs import Job, JobKind, job_key
from bot.domain.requests import OperationRequest
from bot.service.approvals import ApprovalService
from bot.service.bulk import BulkService
from bot.service.requests import RequestService
from bot.store.repository import Store

log = structlog.get_logger(__name__)

#: How often the periodic recovery pass runs.
RECOVERY_EVERY = timedelta(seconds=30)
RECOVERY_KEY = job_key(JobKind.RECOVERY, "requests")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RecoveryService:
    def __init__(
        self,
        *,
        store: Store,
        requests: RequestService,
        approvals: ApprovalService,
        clock: Callable[[], datetime] = _utcnow,
        every: timedelta = RECOVERY_EVERY,
        bulk: BulkService | None = None,
    ) -> None:
        self._bulk = bulk
        self._store = store
        self._requests = requests
        self._approvals = approvals
        self._clock = clock
        self.every = every

    async def run(self) -> list[OperationRequest]:
        """One pass: decided approvals first (they become approved requests), then the
        requests themselves. What was carried on, in order."""
        decided = await self._approvals.recover()
        done = await self._requests.recover()
        if self._bulk is not None:  # bulk batches: expired approvals, stalled executions
            batches = await self._bulk.recover()
            if batches:
                log.info("recovered batches", batches=[b.id for b in batches])
        return [*decided, *done]

    async def at_start(self) -> list[OperationRequest]:
        """The start-up pass; then make sure the periodic pass is scheduled."""
        done = await self.run()
        await self._store.ensure_job(
            kind=JobKind.RECOVERY,
            key=RECOVERY_KEY,
            due_at=self._clock() + self.every,
            payload={},
        )
        return done

    def handlers(self) -> Mapping[JobKind, Callable[[Job], Awaitable[None]]]:
        return {JobKind.RECOVERY: self.recovery_job}

    async def recovery_job(self, job: Job) -> None:
        """The periodic pass; it schedules the next one."""
        done = await self.run()
        if done:
            log.info("recovered requests", requests=[r.id for r in done])
        await self._store.schedule(
            kind=JobKind.RECOVERY, key=job.key, due_at=self._clock() + self.every, payload={}
        )
