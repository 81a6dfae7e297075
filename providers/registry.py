"""Build the provider adapters of each configured environment: a map from an
environment's config section (``sfmc:``, ``scrip:``) to the factory of its package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from pydantic import BaseModel

from bot.domain.models import TargetKind
from bot.service.ports import Environment, Provider
from providers.factory import BuildContext, ProviderFactory
from providers.http import CallLimit, new_async_client
from providers.scrip import factory as scrip_factory
from providers.sfmc import factory as sfmc_factory
from providers.sfmc.snapshots import ScheduleSnapshots

#: config section -> the factory that builds its adapters (one line per provider package).
FACTORIES: Mapping[str, ProviderFactory] = {
    "sfmc": sfmc_factory.build,
    "scrip": scrip_factory.build,
}


class EnvironmentConfig(Protocol):
    """What building one environment reads from the config."""

    @property
    def production(self) -> bool: ...

    def provider_sections(self) -> Mapping[str, BaseModel]:
        """The provider sections that are set, by name (``sfmc``, ``scrip``)."""
        ...


class ProvidersConfig(Protocol):
    def environment(self, name: str | None) -> tuple[str, EnvironmentConfig]: ...


def build_environment(
    name: str,
    settings: EnvironmentConfig,
    *,
    http: httpx.AsyncClient,
    snapshots: ScheduleSnapshots | None = None,
    limits: list[CallLimit] | None = None,
) -> Environment:
    """The providers of one environment. ``snapshots`` keeps automation schedules between
    pause and resume (the bot's database; an environment's ``snapshot_file`` wins; in
    memory when neither is given). Each business unit's :class:`CallLimit` (with its own
    connection pools) is appended to ``limits``, for the caller to close."""
    ctx = BuildContext(
        environment=name,
        http=http,
        snapshots=snapshots,
        limits=limits if limits is not None else [],
    )
    providers: dict[TargetKind, Provider] = {}
    for section, value in settings.provider_sections().items():
        providers.update(FACTORIES[section](value, ctx))
    return Environment(name=name, production=settings.production, providers=providers)


@dataclass
class ProviderRegistry:
    """Lazily built environments. Token requests and scrip share ``http``; each SFMC
    business unit's SOAP and REST calls go through the small pools of its
    :class:`CallLimit`."""

    config: ProvidersConfig
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
