"""The port every provider adapter implements, and the batch capabilities it may declare.

Adapters (``providers/...``) depend on this port and on :mod:`bot.domain` models, never
the reverse. They speak their provider's protocol, return the project's own models and
raise only errors from :mod:`bot.domain.errors`. What a kind of target can do is declared
in :attr:`Provider.traits` (:class:`bot.domain.traits.ProviderTraits`); the service checks
the rules before calling an adapter and verifies by reading back after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.domain.errors import BadInput, BotError
from bot.domain.models import (
    ActionReceipt,
    PauseOptions,
    TargetKind,
    TargetState,
    TargetSummary,
    VersionSelector,
)
from bot.domain.traits import ProviderTraits


class Provider(Protocol):
    """One kind of target in one environment."""

    kind: TargetKind
    #: What this kind of target can do (states and verbs, versions, pauses).
    traits: ProviderTraits

    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        """Read one target by its key (or id). Raises ``NotFound``."""
        ...

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        """Targets whose name equals ``name`` (case-insensitive)."""
        ...

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        """Targets whose key or name contains ``text`` (empty text: the first ``limit``)."""
        ...

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        """Every target with its state (only the paused ones when asked)."""
        ...

    async def pause(
        self, state: TargetState, *, options: PauseOptions, versions: VersionSelector
    ) -> ActionReceipt: ...

    async def resume(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt: ...

    async def stop(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt: ...

    async def run(self, state: TargetState) -> ActionReceipt: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BatchResumes(Protocol):
    """A provider that reads and resumes many targets at once (the ends of many pauses in
    one pass). Declared by implementing both methods; checked with ``isinstance``."""

    async def get_many(self, keys: Sequence[str]) -> dict[str, TargetState]:
        """The states of the targets with these keys (missing keys: not found)."""
        ...

    async def resume_many(self, states: Sequence[TargetState]) -> list[ActionReceipt | BotError]:
        """Resume each target; each one's receipt or error, in order."""
        ...


@runtime_checkable
class Lanes(Protocol):
    """A provider whose targets live in several accounts with limits of their own (SFMC
    business units): a bulk request limits its targets in flight per lane, not per
    provider. Declared by implementing :meth:`lane`; checked with ``isinstance``."""

    def lane(self, key: str) -> Provider:
        """The adapter whose limits the target with this key is held to."""
        ...


def lane_of(provider: Provider, key: str) -> Provider:
    """What a bulk request limits the target ``key`` of ``provider`` by."""
    return provider.lane(key) if isinstance(provider, Lanes) else provider


@dataclass(frozen=True)
class Environment:
    """The providers of one configured environment."""

    name: str
    production: bool
    providers: Mapping[TargetKind, Provider]

    def provider(self, kind: TargetKind) -> Provider:
        found = self.providers.get(kind)
        if found is None:
            configured = ", ".join(k.value for k in self.providers) or "none"
            raise BadInput(
                f"Environment {self.name!r} has no {kind.value} provider configured "
                f"(configured: {configured})."
            )
        return found
