"""Build the provider adapters of each configured environment (a plain, explicit registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from bot.config import BotConfig, EnvironmentSettings
from bot.domain.models import TargetKind
from bot.service.operations import Environment
from bot.service.ports import Provider
from providers.http import CallLimit, new_async_client
from providers.scrip import ScripProvider
from providers.sfmc.auth import TokenProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.journeys import SfmcJourneyProvider
from providers.sfmc.snapshots import (
    InMemoryScheduleSnapshots,
    JsonFileScheduleSnapshots,
    ScheduleSnapshots,
)


def build_environment(
    name: str,
    settings: EnvironmentSettings,
    *,
    http: httpx.AsyncClient,
    snapshots: ScheduleSnapshots | None = None,
    limits: list[CallLimit] | None = None,
) -> Environment:
    """The providers of one environment. ``snapshots`` keeps automation schedules between
    pause and resume (the bot's database; an environment's ``snapshot_file`` wins; in
    memory when neither is given). Each business unit's :class:`CallLimit` (with its own
    connection pools) is appended to ``limits``, for the caller to close."""
    providers: dict[TargetKind, Provider] = {}
    if settings.sfmc is not None:
        sfmc = settings.sfmc
        tokens = TokenProvider(
            auth_url=str(sfmc.auth_url),
            client_id=sfmc.client_id,
            client_secret=sfmc.client_secret,
            account_id=sfmc.account_id,
            http=http,
        )
        kept: ScheduleSnapshots = (
            JsonFileScheduleSnapshots(sfmc.snapshot_file)
            if sfmc.snapshot_file
            else snapshots or InMemoryScheduleSnapshots()
        )
        limit = CallLimit.pooled(sfmc.max_concurrent_calls, event_hooks=http.event_hooks)
        if limits is not None:
            limits.append(limit)
        providers[TargetKind.AUTOMATION] = SfmcAutomationProvider(
            environment=name, tokens=tokens, http=http, snapshots=kept, limit=limit
        )
        providers[TargetKind.JOURNEY] = SfmcJourneyProvider(
            environment=name, tokens=tokens, http=http, limit=limit
        )
    if settings.scrip is not None:
        providers[TargetKind.SCRIP] = ScripProvider(
            environment=name,
            base_url=str(settings.scrip.base_url),
            api_key=settings.scrip.api_key,
            program_id=settings.scrip.program_id,
            http=http,
        )
    return Environment(name=name, production=settings.production, providers=providers)


@dataclass
class ProviderRegistry:
    """Lazily built environments. Token requests and scrip share ``http``; each SFMC
    business unit's SOAP and REST calls go through the small pools of its
    :class:`CallLimit`."""

    config: BotConfig
    http: httpx.AsyncClient = field(default_factory=new_async_client)
    snapshots: ScheduleSnapshots | None = None
    _built: dict[str, Environment] = field(default_factory=dict)
    _limits: list[CallLimit] = field(default_factory=list)

    def environment(self, name: str | None) -> Environment:
        key, settings = self.config.environment(name)
        if key not in self._built:
            self._built[key] = build_environment(
                key, settings, http=self.http, snapshots=self.snapshots, limits=self._limits
            )
        return self._built[key]

    async def aclose(self) -> None:
        for env in self._built.values():
            for provider in env.providers.values():
                await provider.aclose()
        for limit in self._limits:
            await limit.aclose()
        await self.http.aclose()

    def clients(self) -> list[httpx.AsyncClient]:
        """Every HTTP client the providers built so far send through."""
        return [self.http, *(c for limit in self._limits for c in limit.clients)]
