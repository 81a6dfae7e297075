"""The interface every provider adapter implements.

Adapters speak their provider's protocol and return the project's own models
(:mod:`bot.domain.models`); they raise only errors from :mod:`bot.domain.errors`.
State rules (which verb from which state) live in :mod:`bot.domain.rules`; the service
checks them before calling an adapter and verifies by reading back after.
"""

from __future__ import annotations

from typing import Protocol

from bot.domain.models import (
    ActionReceipt,
    PauseOptions,
    TargetKind,
    TargetState,
    TargetSummary,
    VersionSelector,
)


class Provider(Protocol):
    """One kind of target in one environment."""

    kind: TargetKind

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
