"""Where an automation's schedule is kept between ``pause`` and ``resume``.

Pausing an SFMC automation (SOAP ``Schedule pause``) keeps its schedule, but resuming
(``Schedule start``) needs a complete ScheduleDefinition (reference sfmc.md §1.6), so the
adapter snapshots the schedule before it pauses and rebuilds it from the snapshot.
Snapshots are keyed by business unit (MID) and the automation's ObjectID.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from bot.domain.models import Schedule


class ScheduleSnapshots(Protocol):
    """Storage for schedule snapshots (the bot's database implements this too)."""

    async def get(self, account_id: int, object_id: str) -> Schedule | None: ...

    async def put(self, account_id: int, object_id: str, schedule: Schedule) -> None: ...

    async def get_many(self, account_id: int, object_ids: Collection[str]) -> dict[str, Schedule]:
        """The snapshots of ``object_ids`` that exist, keyed by lower-cased ObjectID."""
        ...


def _key(account_id: int, object_id: str) -> str:
    return f"{account_id}/{object_id.lower()}"


class InMemoryScheduleSnapshots:
    """Snapshots for one process (lost on restart; resume then falls back to a REST read)."""

    def __init__(self) -> None:
        self._items: dict[str, Schedule] = {}

    async def get(self, account_id: int, object_id: str) -> Schedule | None:
        return self._items.get(_key(account_id, object_id))

    async def put(self, account_id: int, object_id: str, schedule: Schedule) -> None:
        self._items[_key(account_id, object_id)] = schedule

    async def get_many(self, account_id: int, object_ids: Collection[str]) -> dict[str, Schedule]:
        found = {o.lower(): self._items.get(_key(account_id, o)) for o in object_ids}
        return {o: s for o, s in found.items() if s is not None}


class JsonFileScheduleSnapshots:
    """Snapshots in one JSON file, replaced atomically on every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, Schedule]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): Schedule.model_validate(v) for k, v in raw.items()}

    def _write(self, items: dict[str, Schedule]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v.model_dump(mode="json") for k, v in sorted(items.items())}
        fd, tmp = tempfile.mkstemp(prefix=".snapshots-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, account_id: int, object_id: str) -> Schedule | None:
        async with self._lock:
            items = await asyncio.to_thread(self._read)
        return items.get(_key(account_id, object_id))

    async def put(self, account_id: int, object_id: str, schedule: Schedule) -> None:
        async with self._lock:
            items = await asyncio.to_thread(self._read)
            items[_key(account_id, object_id)] = schedule
            await asyncio.to_thread(self._write, items)

    async def get_many(self, account_id: int, object_ids: Collection[str]) -> dict[str, Schedule]:
        async with self._lock:
            items = await asyncio.to_thread(self._read)
        found = {o.lower(): items.get(_key(account_id, o)) for o in object_ids}
        return {o: s for o, s in found.items() if s is not None}
