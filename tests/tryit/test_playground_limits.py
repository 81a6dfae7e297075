"""The try page runs the Slack emulator at Slack's rate limits unless asked not to."""

from __future__ import annotations

from bot.tryit.playground import Playground


def test_the_try_page_has_slack_rate_limits_on_by_default() -> None:
    assert Playground().slack.settings.rate_limits_enabled is True
    assert Playground(slack_rate_limits=False).slack.settings.rate_limits_enabled is False
