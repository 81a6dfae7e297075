"""The whole bot over real HTTP: provider emulators, the Slack emulator, the bot's own
ASGI app on a loopback port, and a driver that signs requests like Slack does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import BotConfig, SlackSettings, config_from_mapping
from bot.metrics import Metrics
from bot.serve import create_asgi_app
from bot.store import upgrade
from sandbox.server import ServerThread
from sandbox.slack import SlackDriver, SlackEmulator
from tests.conftest import Sandbox
from tests.db import DATABASE_PARAMS, isolated_database

SIGNING_SECRET = "test-signing-secret"


def wait_for(condition: Callable[[], Any], *, timeout: float = 15.0, what: str = "") -> Any:
    """Poll until ``condition()`` is truthy (the bot works after its ack)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


class BotUnderTest:
    """A running bot plus everything around it."""

    def __init__(self, providers: Sandbox, database_url: str) -> None:
        self.providers = providers
        self.slack = SlackEmulator()
        self._slack_server = ServerThread(self.slack.app).start()
        mapping = dict(providers.mapping)
        mapping["database_url"] = database_url
        mapping["environments"] = dict(mapping["environments"])
        mapping["environments"]["prod"] = {
            **mapping["environments"]["prod"],
            "notify_channel": "C0OPS",
        }
        self.config: BotConfig = config_from_mapping(mapping, source="scenario")
        upgrade(database_url)
        self.slack_settings = SlackSettings(
            slack_bot_token=SecretStr("xoxb-sandbox"),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=self._slack_server.url + "/api/",
        )
        self.metrics = Metrics()
        self._bot_server: ServerThread | None = None
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
        app = create_asgi_app(self.config, self.slack_settings, metrics=self.metrics)
        self._bot_server = ServerThread(app, port=port, lifespan="on").start()

    def restart(self) -> None:
        """Stop the bot process and start a fresh one on the same database and port."""
        assert self._bot_server is not None
        port = self._bot_server.port
        self._bot_server.stop()
        self.start(port=port)

    def stop(self) -> None:
        self.driver.close()
        if self._bot_server is not None:
            self._bot_server.stop()
        self._slack_server.stop()

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
def bot(request: pytest.FixtureRequest, sandbox: Sandbox, tmp_path: Path) -> Iterator[BotUnderTest]:
    with isolated_database(request.param, tmp_path) as url:
        under_test = BotUnderTest(sandbox, url)
        try:
            yield under_test
        finally:
            under_test.stop()
