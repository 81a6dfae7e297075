"""Helpers for tests that run part of the bot in another process and kill it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
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


def terminate_within(proc: subprocess.Popen[str], seconds: float) -> str:
    """SIGTERM ``proc`` and assert it exits within ``seconds``; returns its stderr.

    A process still running after that is killed (so a failed test leaves nothing behind).
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"still running {seconds:g}s after SIGTERM") from None
        assert time.monotonic() - started <= seconds
    stderr = proc.stderr.read() if proc.stderr and not proc.stderr.closed else ""
    if proc.stderr:
        proc.stderr.close()
    return stderr
