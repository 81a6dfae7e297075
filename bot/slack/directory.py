"""The Slack adapter of the Directory port: user-group members via ``usergroups.users.list``.

Membership is read when a vote needs it (it can change), cached briefly per group so a
burst of votes costs one call (Tier 2), and concurrent callers share one fetch. Slack's
errors become a :class:`ProviderError` (``provider="Slack"``, ``code`` = Slack's error);
the approval service logs them and treats the group as unreadable, so explicitly listed
approvers still count (reference slack-and-chatops.md §2.8: ``plan_upgrade_required`` on
plans without user groups).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import ProviderError

log = structlog.get_logger(__name__)

#: Errors that will not go away by asking again soon: remembered for the TTL too.
_LASTING_ERRORS = frozenset({"plan_upgrade_required", "no_such_subteam", "missing_scope"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Entry:
    at: datetime
    members: frozenset[str] | None = None
    error: str | None = None


class SlackDirectory:
    """Who is in a Slack user group, cached for ``ttl`` seconds per group."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = 60.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._fetching: dict[str, asyncio.Task[frozenset[str]]] = {}

    async def members(self, group_id: str) -> frozenset[str]:
        entry = self._cache.get(group_id)
        if entry is not None and (self._clock() - entry.at).total_seconds() < self._ttl:
            if entry.error is not None:
                raise _error(group_id, entry.error)
            assert entry.members is not None
            return entry.members
        task = self._fetching.get(group_id)
        if task is None:
            task = asyncio.create_task(self._fetch(group_id))
            self._fetching[group_id] = task
            task.add_done_callback(lambda done: self._forget(group_id, done))
        # shielded: one caller giving up must not cancel the fetch the others wait for
        return await asyncio.shield(task)

    def _forget(self, group_id: str, task: asyncio.Task[frozenset[str]]) -> None:
        if self._fetching.get(group_id) is task:
            del self._fetching[group_id]
        if not task.cancelled():
            task.exception()  # retrieved: nobody may be left waiting for it

    def forget(self, group_id: str | None = None) -> None:
        """Drop the cached membership of ``group_id`` (or of every group)."""
        if group_id is None:
            self._cache.clear()
        else:
            self._cache.pop(group_id, None)

    async def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            code = str(exc.response.get("error") or "unknown_error")
            if code in _LASTING_ERRORS:
                self._cache[group_id] = _Entry(at=self._clock(), error=code)
            log.warning("usergroup_unreadable", group=group_id, error=code)
            raise _error(group_id, code) from exc
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            log.warning("usergroup_unreachable", group=group_id, error=str(exc))
            raise ProviderError(
                f"Slack could not be reached to read user group {group_id}.",
                provider="Slack",
                code="unreachable",
                retryable=True,
            ) from exc
        members = frozenset(str(u) for u in response.get("users") or [])
        self._cache[group_id] = _Entry(at=self._clock(), members=members)
        return members


def _error(group_id: str, code: str) -> ProviderError:
    return ProviderError(
        f"Slack could not list the members of user group {group_id}.",
        provider="Slack",
        code=code,
        retryable=code not in _LASTING_ERRORS,
    )
