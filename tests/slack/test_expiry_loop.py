"""The serve lifespan's expiry loop: runs every interval, survives errors, stops on cancel."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from bot.runtime import Runtime
from bot.serve import expire_approvals


class _Approvals:
    def __init__(self) -> None:
        self.calls = 0

    async def expire_due(self) -> list[Any]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("database went away")
        return []


class _Runtime:
    def __init__(self) -> None:
        self.approvals = _Approvals()


async def test_the_loop_keeps_going_after_an_error_and_stops_when_cancelled() -> None:
    runtime = _Runtime()
    task = asyncio.create_task(expire_approvals(cast(Runtime, runtime), interval=0.01))
    for _ in range(200):
        if runtime.approvals.calls >= 4:
            break
        await asyncio.sleep(0.01)
    assert runtime.approvals.calls >= 4  # the error on the 2nd run did not end it
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
