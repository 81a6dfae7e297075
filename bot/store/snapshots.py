"""Schedule snapshots kept in the bot's database (``schedule_snapshots``, migration 0006).

The SFMC automation adapter snapshots an automation's schedule before it pauses it and
rebuilds the schedule from the snapshot to resume it (``Schedule start`` needs a complete
definition). Kept in the database, the snapshot survives restarts and is shared by every
replica, so ending a pause needs no REST read of the schedule.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.domain.models import Schedule
from bot.store.repository import Store


class StoreScheduleSnapshots:
    """:class:`providers.sfmc.snapshots.ScheduleSnapshots` over the :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, account_id: int, object_id: str) -> Schedule | None:
        found = await self._store.snapshots(account_id, [object_id])
        return found.get(object_id.lower())

    async def put(self, account_id: int, object_id: str, schedule: Schedule) -> None:
        await self._store.put_snapshot(account_id, object_id, schedule)

    async def get_many(self, account_id: int, object_ids: Collection[str]) -> dict[str, Schedule]:
        """Keyed by lower-cased ObjectID."""
        return await self._store.snapshots(account_id, object_ids)
