"""The composition root: builds the service graph from the configuration (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config import BotConfig
from bot.metrics import Metrics
from bot.service.notify import Notifier
from bot.service.operations import OperationService
from bot.service.requests import RequestService
from bot.store.repository import Store
from providers.http import new_async_client
from providers.registry import ProviderRegistry


@dataclass
class Runtime:
    """Everything a front end (Slack, console) needs, and how to close it."""

    config: BotConfig
    registry: ProviderRegistry
    store: Store
    operations: OperationService
    requests: RequestService

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.store.close()


def build_runtime(
    config: BotConfig,
    *,
    store: Store,
    notifier: Notifier,
    metrics: Metrics | None = None,
) -> Runtime:
    hooks: dict[str, list[Callable[..., Any]]] | None = None
    if metrics is not None:
        hooks = {
            "request": [metrics.on_provider_request],
            "response": [metrics.on_provider_response],
        }
    registry = ProviderRegistry(config, http=new_async_client(event_hooks=hooks))
    operations = OperationService(environments=registry.environment)
    requests = RequestService(
        operations=operations, store=store, notifier=notifier, metrics=metrics
    )
    return Runtime(
        config=config,
        registry=registry,
        store=store,
        operations=operations,
        requests=requests,
    )
