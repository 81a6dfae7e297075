"""The composition root: builds the service graph from the configuration (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from bot.config import BotConfig
from bot.domain.outbox import OUTBOX_RETENTION
from bot.metrics import Metrics
from bot.scheduler import Scheduler
from bot.service.approvals import ApprovalService
from bot.service.bulk import BulkService
from bot.service.commands import Commands
from bot.service.directory import Directory, StaticDirectory
from bot.service.notify import Notifier
from bot.service.operations import OperationService
from bot.service.pauses import PauseService, PauseTimings
from bot.service.recovery import RecoveryService
from bot.service.requests import RequestService
from bot.store.batches import BatchStore
from bot.store.repository import Store
from bot.store.snapshots import StoreScheduleSnapshots
from providers.http import new_async_client
from providers.registry import ProviderRegistry

log = structlog.get_logger(__name__)

#: How long Slack delivery keys (event ids, slash-command triggers) are remembered: Slack
#: retries within minutes and signatures older than 5 minutes are refused anyway.
SLACK_KEY_RETENTION = timedelta(days=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a front end (Slack, console, exec) needs, and how to close it.

    Front ends call :attr:`commands` (the one use-case entry point); the services behind it
    are here for the scheduler, the Slack buttons and forms, and tests."""

    config: BotConfig
    registry: ProviderRegistry
    store: Store
    operations: OperationService
    requests: RequestService
    approvals: ApprovalService
    pauses: PauseService
    recovery: RecoveryService
    commands: Commands
    bulk: BulkService

    async def housekeeping(self, now: datetime) -> None:
        """Periodic clean-up (the scheduler runs it hourly): forget Slack delivery keys (event
        ids, slash-command triggers) older than :data:`SLACK_KEY_RETENTION`, long past any
        retry or replay window; and Slack messages sent more than
        :data:`~bot.domain.outbox.OUTBOX_RETENTION` ago (the outbox)."""
        removed = await self.store.prune_events(now - SLACK_KEY_RETENTION)
        if removed:
            log.info("forgot old slack delivery keys", removed=removed)
        pruned = await self.store.prune_outbox(now - OUTBOX_RETENTION)
        if pruned:
            log.info("forgot sent slack messages", removed=pruned)

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.store.close()


def build_runtime(
    config: BotConfig,
    *,
    store: Store,
    notifier: Notifier,
    directory: Directory | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] | None = None,
    timings: PauseTimings | None = None,
) -> Runtime:
    directory = directory or StaticDirectory()
    now = clock or _utcnow
    hooks: dict[str, list[Callable[..., Any]]] | None = None
    if metrics is not None:
        hooks = {
            "request": [metrics.on_provider_request],
            "response": [metrics.on_provider_response],
        }
    registry = ProviderRegistry(
        config,
        http=new_async_client(event_hooks=hooks),
        snapshots=StoreScheduleSnapshots(store),
    )
    operations = OperationService(environments=registry.environment, clock=now)
    requests = RequestService(
        operations=operations,
        store=store,
        notifier=notifier,
        metrics=metrics,
        policies=config.approval_policy,
        directory=directory,
        clock=now,
    )
    approvals = ApprovalService(
        store=store,
        requests=requests,
        policies=config.approval_policy,
        directory=directory,
        clock=now,
    )
    if timings is None:
        settings = config.pauses
        timings = PauseTimings(
            reminders=tuple(settings.reminders),
            open_ended_reminder_every=settings.open_ended_reminder_every,
            journey_grace=settings.journey_grace,
            drift_every=settings.drift_every,
        )
    pauses = PauseService(
        store=store,
        requests=requests,
        operations=operations,
        timings=timings,
        clock=now,
    )
    requests.pause_watcher = pauses
    bulk = BulkService(
        operations=operations,
        batches=BatchStore(store),
        policies=config.approval_policy,
        directory=directory,
        clock=now,
    )
    recovery = RecoveryService(
        store=store, requests=requests, approvals=approvals, clock=now, bulk=bulk
    )
    return Runtime(
        config=config,
        registry=registry,
        store=store,
        operations=operations,
        requests=requests,
        approvals=approvals,
        pauses=pauses,
        recovery=recovery,
        commands=Commands(
            config=config,
            operations=operations,
            requests=requests,
            approvals=approvals,
            store=store,
            bulk=bulk,
        ),
        bulk=bulk,
    )


#: Due jobs one scheduler pass claims (pause ends due together are handled as one batch).
SCHEDULER_BATCH = 200
#: Scheduler passes side by side in one process: while one waits on its slowest call,
#: the others claim and start what has come due (SFMC calls stay within the account's
#: ``max_concurrent_calls`` however many passes run).
SCHEDULER_WORKERS = 4


def build_scheduler(
    runtime: Runtime,
    *,
    owner: str,
    clock: Callable[[], datetime] | None = None,
    idle_sleep: float = 1.0,
    **options: Any,
) -> Scheduler:
    """The scheduler of a runtime: pause timers (due ends handed over together, one batch
    per pass), approval expiries and the periodic recovery pass,
    :data:`SCHEDULER_WORKERS` passes side by side. ``options`` go to :class:`Scheduler`."""
    options.setdefault("batch", SCHEDULER_BATCH)
    options.setdefault("workers", SCHEDULER_WORKERS)
    options.setdefault("housekeeping", runtime.housekeeping)
    return Scheduler(
        runtime.store,
        owner=owner,
        handlers={
            **runtime.pauses.handlers(),
            **runtime.approvals.handlers(),
            **runtime.recovery.handlers(),
            **runtime.bulk.handlers(),
        },
        batch_handlers=runtime.pauses.batch_handlers(),
        clock=clock or _utcnow,
        idle_sleep=idle_sleep,
        **options,
    )
