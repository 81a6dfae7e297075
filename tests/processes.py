"""Helpers for tests that run part of the bot in another process and kill it."""

from __future__ import annotations

import asyncio
import os
import signal
from multiprocessing.process import BaseProcess


async def sigkill(process: BaseProcess) -> None:
    """Kill ``process`` with SIGKILL (no clean-up of any kind runs) and wait for it."""
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    await asyncio.to_thread(process.join, 30)
    assert process.exitcode == -signal.SIGKILL


def reap(process: BaseProcess) -> None:
    """Make sure ``process`` is gone (a failed test must not leave it running)."""
    if process.is_alive():
        process.kill()
        process.join()
