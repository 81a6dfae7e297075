"""Start every emulator on loopback, in-process (used by tests, the CLI and the demo)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sandbox.scrip import ScripEmulator
from sandbox.server import ServerThread
from sandbox.sfmc import SfmcEmulator


@dataclass(frozen=True)
class SandboxUrls:
    sfmc: str
    scrip: str


@contextlib.contextmanager
def running_sandbox(
    *, host: str = "127.0.0.1", sfmc_port: int = 0, scrip_port: int = 0
) -> Iterator[SandboxUrls]:
    """Run the SFMC and scrip emulators until the block ends."""
    with (
        ServerThread(SfmcEmulator().app, host=host, port=sfmc_port) as sfmc,
        ServerThread(ScripEmulator().app, host=host, port=scrip_port) as scrip,
    ):
        yield SandboxUrls(sfmc=sfmc.url, scrip=scrip.url)
