"""What a provider package's factory gets to build its adapters for one environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.domain.models import TargetKind
from bot.service.ports import Provider
from providers.http import CallLimit
from providers.sfmc.snapshots import ScheduleSnapshots


@dataclass(frozen=True)
class BuildContext:
    """One environment being built: its name, the shared HTTP client (belongs to the
    registry), where automation schedules are kept while paused, and the list each
    factory appends its :class:`CallLimit` pools to (closed by the registry)."""

    environment: str
    http: httpx.AsyncClient
    snapshots: ScheduleSnapshots | None = None
    limits: list[CallLimit] = field(default_factory=list)


#: Builds the adapters of one config section (the section's own model, e.g. SfmcSettings).
ProviderFactory = Callable[[Any, BuildContext], Mapping[TargetKind, Provider]]
