"""Start every emulator on loopback, in-process (used by tests, the CLI and the demo)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sandbox.scrip import ScripEmulator
from sandbox.server import ServerThread
from sandbox.sfmc import SfmcEmulator
from sandbox.slack import SlackEmulator


@dataclass(frozen=True)
class SandboxUrls:
    sfmc: str
    scrip: str
    slack: str | None = None


@contextlib.contextmanager
def running_sandbox(
    *,
    host: str = "127.0.0.1",
    sfmc_port: int = 0,
    scrip_port: int = 0,
    slack_port: int | None = None,
) -> Iterator[SandboxUrls]:
    """Run the SFMC and scrip emulators (and the Slack one when ``slack_port`` is given)
    until the block ends."""
    with contextlib.ExitStack() as stack:
        sfmc = stack.enter_context(ServerThread(SfmcEmulator().app, host=host, port=sfmc_port))
        scrip = stack.enter_context(ServerThread(ScripEmulator().app, host=host, port=scrip_port))
        slack = None
        if slack_port is not None:
            slack = stack.enter_context(
                ServerThread(SlackEmulator().app, host=host, port=slack_port)
            )
        yield SandboxUrls(sfmc=sfmc.url, scrip=scrip.url, slack=slack.url if slack else None)
