"""Everything ``automation-bot try`` runs: emulators, the bot and a Slack driver, on one clock."""

from __future__ import annotations

import contextlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from bot.config import BotConfig, SlackSettings, config_from_mapping
from bot.defaults import sandbox_config
from bot.metrics import Metrics
from bot.serve import SLACK_EVENTS_PATH, create_asgi_app
from bot.store import upgrade
from sandbox.clock import Clock
from sandbox.scrip import ScripEmulator
from sandbox.server import ServerThread
from sandbox.sfmc import SfmcEmulator
from sandbox.slack import SlackDriver, SlackEmulator
from sandbox.slack import SlackSettings as EmulatorSettings

SIGNING_SECRET = "try-it-signing-secret"  # noqa: S105 - shared by the page's driver and the bot
OPS_CHANNEL = "C0OPS"
NOTIFY_CHANNEL = "C0NOTIFY"

#: Who the page can act as: (user id, what they are in the sandbox's defaults).
PEOPLE: tuple[tuple[str, str], ...] = (
    ("U0ALICE", "requester"),
    ("U0BOB", "approver"),
    ("U0CAROL", "approver"),
    ("U0DAVE", "viewer"),
    ("U0ADMIN", "approver"),
)


@dataclass
class AckNote:
    """What the bot answered in an HTTP ack that Slack shows only to the user."""

    user: str
    channel: str
    text: str
    ts: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def try_config(*, sfmc_url: str, scrip_url: str, database_url: str) -> BotConfig:
    """The embedded sandbox config, with a notify channel so a pause's end is announced."""
    mapping = sandbox_config(sfmc_url=sfmc_url, scrip_url=scrip_url, database_url=database_url)
    for env in mapping["environments"].values():
        env["notify_channel"] = NOTIFY_CHANNEL
    return config_from_mapping(mapping, source="automation-bot try")


class Playground:
    """The emulators (SFMC, scrip, Slack), the bot in HTTP mode and a driver that signs.

    All share one :class:`~sandbox.clock.Clock`, so moving it forward makes a timed pause end
    for the providers and the bot alike. The bot's database is a fresh SQLite file in a
    temporary folder (or ``database_url``).
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        scheduler_idle: float = 0.2,
        slack_rate_limits: bool = True,
    ) -> None:
        self.clock = Clock()
        self.sfmc = SfmcEmulator(clock=self.clock)
        self.scrip = ScripEmulator(clock=self.clock)
        self.slack = SlackEmulator(
            clock=self.clock, settings=EmulatorSettings(rate_limits_enabled=slack_rate_limits)
        )
        self.slack.add_channel(NOTIFY_CHANNEL, "automation-notices")
        self._database_url = database_url
        self._scheduler_idle = scheduler_idle
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._acks: list[AckNote] = []
        self.driver: SlackDriver | None = None
        self.config: BotConfig | None = None
        self.bot_url = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Playground:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        stack = self._stack
        sfmc = stack.enter_context(ServerThread(self.sfmc.app))
        scrip = stack.enter_context(ServerThread(self.scrip.app))
        slack = stack.enter_context(ServerThread(self.slack.app))
        url = self._database_url
        if url is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bot-try-")))
            url = f"sqlite:///{folder / 'automation-bot.db'}"
        upgrade(url)
        self.config = try_config(sfmc_url=sfmc.url, scrip_url=scrip.url, database_url=url)
        settings = SlackSettings(
            slack_bot_token=SecretStr(self.slack.bot_token),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=slack.url + "/api/",
        )
        app = create_asgi_app(
            self.config,
            settings,
            metrics=Metrics(),
            clock=self.clock.now,
            scheduler_idle=self._scheduler_idle,
        )
        bot = stack.enter_context(ServerThread(app, lifespan="on"))
        self.bot_url = bot.url
        self.driver = stack.enter_context(
            SlackDriver(
                bot_url=bot.url + SLACK_EVENTS_PATH,
                signing_secret=SIGNING_SECRET,
                emulator=self.slack,
                emulator_url=slack.url,
            )
        )

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> Playground:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the page reads ----------------------------------------------------------------

    def remember_ack(
        self, *, user: str, channel: str, data: dict[str, Any] | None
    ) -> AckNote | None:
        """Keep an ephemeral answer the bot gave in its ack (Slack shows it to the user)."""
        if not data or not (data.get("text") or data.get("blocks")):
            return None
        with self._lock:
            note = AckNote(
                user=user,
                channel=channel,
                text=str(data.get("text") or ""),
                ts=f"{self.clock.now().timestamp():.6f}",
                blocks=list(data.get("blocks") or []),
            )
            self._acks.append(note)
            return note

    def acks(self, *, user: str, channel: str) -> list[AckNote]:
        with self._lock:
            return [a for a in self._acks if a.user == user and a.channel == channel]

    def providers(self) -> dict[str, Any]:
        """What SFMC and scrip say now (the emulators' own state, not the bot's)."""
        sfmc = self.sfmc.state()
        return {
            "now": self.clock.now(),
            "automations": sfmc["automations"],
            "journeys": sfmc["journeys"],
            "scrip": self.scrip.automations(),
        }
