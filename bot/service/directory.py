"""The Directory port: who is in a Slack user group (approver sets name groups)."""

from __future__ import annotations

from typing import Protocol


class Directory(Protocol):
    async def members(self, group_id: str) -> frozenset[str]:
        """The user ids in ``group_id``; raises ``ProviderError`` when it cannot be read."""
        ...


class StaticDirectory:
    """Fixed group membership (console, CLI, tests); unknown groups are empty."""

    def __init__(self, groups: dict[str, frozenset[str]] | None = None) -> None:
        self._groups = dict(groups or {})

    async def members(self, group_id: str) -> frozenset[str]:
        return self._groups.get(group_id, frozenset())
