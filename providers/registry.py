"""Build the provider adapters of each configured environment (a plain, explicit registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from bot.config import BotConfig, EnvironmentSettings
from bot.domain.models import TargetKind
from bot.service.operations import Environment
from providers.base import Provider
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
) -> Environment:
    """The providers of one environment. ``snapshots`` keeps automation schedules between
    pause and resume (the bot's database; an environment's ``snapshot_file`` wins; in
    memory when neither is given)."""
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
        limit = CallLimit(sfmc.max_concurrent_calls)
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
    """Lazily built environments sharing one HTTP connection pool."""

    config: BotConfig
    http: httpx.AsyncClient = field(default_factory=new_async_client)
    snapshots: ScheduleSnapshots | None = None
    _built: dict[str, Environment] = field(default_factory=dict)

    def environment(self, name: str | None) -> Environment:
        key, settings = self.config.environment(name)
        if key not in self._built:
            self._built[key] = build_environment(
                key, settings, http=self.http, snapshots=self.snapshots
            )
        return self._built[key]

    async def aclose(self) -> None:
        for env in self._built.values():
            for provider in env.providers.values():
                await provider.aclose()
        await self.http.aclose()
