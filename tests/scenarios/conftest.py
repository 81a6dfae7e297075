"""The whole bot over real HTTP: provider emulators, the Slack emulator, the bot's own
ASGI app on a loopback port, and a driver that signs requests like Slack does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.config import BotConfig, SlackSettings, config_from_mapping
from bot.metrics import Metrics
from bot.serve import create_asgi_app
from bot.store import upgrade
from sandbox.clock import Clock
from sandbox.server import ServerThread
from sandbox.slack import SlackDriver, SlackEmulator
from sandbox.slack import SlackSettings as EmulatorSettings
from tests.conftest import Sandbox
from tests.db import DATABASE_PARAMS, isolated_database

SIGNING_SECRET = "test-signing-secret"


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    """Poll until ``condition()`` is truthy (the bot works after its ack)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def _busy(apps: list[Starlette]) -> bool:
    return any(app.state.slot.bot is not None and app.state.slot.bot.busy() for app in apps)


class BotProcess:
    """One bot process (its own ASGI app, engine, caches and loop) and a driver for it."""

    def __init__(self, under_test: BotUnderTest, port: int = 0) -> None:
        app = create_asgi_app(
            under_test.config,
            under_test.slack_settings,
            metrics=Metrics(),
            clock=under_test.clock.now if under_test.clock is not None else None,
            directory_ttl=under_test.directory_ttl,
            scheduler_idle=0.05,
        )
        self.app = app
        self.server = ServerThread(app, port=port, lifespan="on").start()
        self.driver = SlackDriver(
            bot_url=self.server.url + "/slack/events",
            signing_secret=SIGNING_SECRET,
            emulator=under_test.slack,
            emulator_url=under_test.slack_url,
        )

    def stop(self) -> None:
        self.driver.close()
        self.server.stop()


#: The bot's budgets when the emulator enforces none: far above anything a scenario sends.
WIDE_SLACK_LIMITS: Final = {
    "tier3_per_min": 60_000,
    "tier3_burst": 1_000,
    "tier4_per_min": 60_000,
    "tier4_burst": 1_000,
    "post_message_workspace_per_min": 60_000,
    "post_message_workspace_burst": 1_000,
}


class BotUnderTest:
    """A running bot plus everything around it.

    ``clock`` (a :class:`sandbox.clock.Clock`) replaces the bot's wall clock, so a test can
    move time past an approval's expiry (the bot's scheduler, polling every 0.05 s here,
    expires it); ``directory_ttl`` how long it caches user-group members;
    ``approval`` overrides keys of the prod environment's approval settings;
    ``notify`` sets environments' ``notify_channel`` (prod's is ``C0OPS`` unless given);
    ``slack_limits``: Slack's rate limits on in the emulator, with these settings (e.g.
    ``{"tier3_per_min": 30}``); without it they are off, so scenarios run at full speed.
    ``bot_limits``: the budgets the bot keeps to (its ``slack_limits`` section); without
    it, Slack's own when the emulator's limits are on, and wide ones when they are off
    (the bot does not wait for budgets nobody enforces).
    """

    def __init__(
        self,
        providers: Sandbox,
        database_url: str,
        *,
        clock: Clock | None = None,
        directory_ttl: float = 60.0,
        approval: Mapping[str, Any] | None = None,
        notify: Mapping[str, str] | None = None,
        slack_limits: Mapping[str, Any] | None = None,
        bot_limits: Mapping[str, Any] | None = None,
    ) -> None:
        self.providers = providers
        self.clock = clock
        self.directory_ttl = directory_ttl
        limits = {"rate_limits_enabled": slack_limits is not None, **(slack_limits or {})}
        self.slack = SlackEmulator(settings=EmulatorSettings.model_validate(limits))
        self._slack_server = ServerThread(self.slack.app).start()
        self.slack_url = self._slack_server.url
        mapping = dict(providers.mapping)
        mapping["database_url"] = database_url
        mapping["environments"] = dict(mapping["environments"])
        prod = dict(mapping["environments"]["prod"])
        prod["notify_channel"] = "C0OPS"
        if approval:
            prod["approval"] = {**prod["approval"], **approval}
        mapping["environments"]["prod"] = prod
        for environment, channel in (notify or {}).items():
            mapping["environments"][environment] = {
                **mapping["environments"][environment],
                "notify_channel": channel,
            }
        if bot_limits is not None:
            mapping["slack_limits"] = dict(bot_limits)
        elif slack_limits is None:
            mapping["slack_limits"] = WIDE_SLACK_LIMITS
        self.config: BotConfig = config_from_mapping(mapping, source="scenario")
        upgrade(database_url)
        self.slack_settings = SlackSettings(
            slack_bot_token=SecretStr("xoxb-sandbox"),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=self._slack_server.url + "/api/",
        )
        self.metrics = Metrics()
        self._bot_server: ServerThread | None = None
        self._app: Starlette | None = None
        self._others: list[BotProcess] = []
        self.start()
        self.driver = SlackDriver(
            bot_url=self.url + "/slack/events",
            signing_secret=SIGNING_SECRET,
            emulator=self.slack,
            emulator_url=self._slack_server.url,
        )

    @property
    def url(self) -> str:
        assert self._bot_server is not None
        return self._bot_server.url

    def start(self, port: int = 0) -> None:
        app = create_asgi_app(
            self.config,
            self.slack_settings,
            metrics=self.metrics,
            clock=self.clock.now if self.clock is not None else None,
            directory_ttl=self.directory_ttl,
            scheduler_idle=0.05,
        )
        self._app = app
        self._bot_server = ServerThread(app, port=port, lifespan="on").start()

    def start_another(self) -> BotProcess:
        """A second bot process on the same database and Slack emulator (a replica)."""
        other = BotProcess(self)
        self._others.append(other)
        return other

    def restart(self) -> None:
        """Stop the bot process and start a fresh one on the same database and port."""
        assert self._bot_server is not None
        port = self._bot_server.port
        self._bot_server.stop()
        self.start(port=port)

    def stop_bot(self) -> int:
        """Stop the bot process and leave its port free (e.g. for a bot process a test
        kills); the port, for :meth:`start` later."""
        assert self._bot_server is not None
        port = self._bot_server.port
        self._bot_server.stop()
        self._bot_server = None
        return port

    def stop(self) -> None:
        self.driver.close()
        for other in self._others:
            other.stop()
        if self._bot_server is not None:
            self._bot_server.stop()
        self._slack_server.stop()

    # -- waiting for the bot ---------------------------------------------------------

    def busy(self) -> bool:
        """Whether any bot process has work in flight (requests, queued Slack messages)."""
        apps = [self._app] if self._app is not None else []
        return _busy(apps + [other.app for other in self._others])

    def activity(self) -> tuple[int, ...]:
        """Counts of what the bot has done that others can see (Slack and provider calls)."""
        return (
            len(self.slack.calls()),
            len(self.slack.responses()),
            len(self.providers.sfmc.calls),
            len(self.providers.scrip.calls),
        )

    def settle(
        self, *, quiet: float = 0.3, timeout: float = 15.0, in_flight_ok: bool = False
    ) -> None:
        """Wait until the bot has gone quiet: nothing in flight in any of its processes and
        no new Slack or provider call for ``quiet`` seconds. Checks that something did *not*
        happen (or happened only once) come after this, never after a fixed sleep.
        ``in_flight_ok``: a test holding a call open on purpose waits only for the calls."""
        deadline = time.monotonic() + timeout
        seen = self.activity()
        since = time.monotonic()
        while True:
            now = time.monotonic()
            current = self.activity()
            if (not in_flight_ok and self.busy()) or current != seen:
                seen, since = current, now
            elif now - since >= quiet:
                return
            if now > deadline:
                raise AssertionError(f"the bot did not go quiet within {timeout:g}s")
            time.sleep(0.02)

    # -- what the bot said ----------------------------------------------------------

    def cards(self, channel: str = "C0OPS") -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel) if m.get("user") == "U0BOT"]

    def thread_texts(self, channel: str, ts: str) -> list[str]:
        return [m.get("text", "") for m in self.slack.thread(channel, ts)][1:]

    def replies(self) -> list[dict[str, Any]]:
        """Payloads the bot sent to response_urls (ephemeral answers), oldest first."""
        return [r.payload for r in self.slack.responses() if r.payload is not None]

    def reply_texts(self) -> list[str]:
        return [p.get("text", "") for p in self.replies()]


@pytest.fixture(params=DATABASE_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for the test's bot (and its replicas): SQLite, and PostgreSQL
    when one is configured."""
    with isolated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves on (wall time plus an offset)."""
    return Clock()


@pytest.fixture
def clocked_sandbox(clock: Clock) -> Iterator[Sandbox]:
    """The provider and Slack emulators on the test's clock (a journey's guardrail acts
    when its PausedDays are up; tokens expire while time jumps ahead)."""
    box = Sandbox(clock=clock)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def bot(sandbox: Sandbox, database_url: str) -> Iterator[BotUnderTest]:
    under_test = BotUnderTest(sandbox, database_url)
    try:
        yield under_test
    finally:
        under_test.stop()


BotFactory = Callable[..., BotUnderTest]


@pytest.fixture
def make_bot(sandbox: Sandbox, database_url: str) -> Iterator[BotFactory]:
    """Start one bot with options (see :class:`BotUnderTest`); stopped after the test."""
    started: list[BotUnderTest] = []

    def make(**options: Any) -> BotUnderTest:
        assert not started, "one bot per test (use start_another() for a replica)"
        under_test = BotUnderTest(sandbox, database_url, **options)
        started.append(under_test)
        return under_test

    try:
        yield make
    finally:
        for under_test in started:
            under_test.stop()
