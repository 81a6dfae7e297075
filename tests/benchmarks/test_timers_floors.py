"""The pause-timer benchmark's Slack floor: the least time Slack's tier budgets allow."""

from __future__ import annotations

import pytest

from benchmarks.timers import slack_floor, slack_limits_text
from sandbox.slack import SlackSettings


def test_the_slack_floor_is_set_by_the_slowest_budget() -> None:
    settings = SlackSettings()  # Slack's budgets: chat.update 50/min after 10
    floor, by = slack_floor(
        {"chat.update": 100, "chat.postMessage": 110, "auth.test": 1},
        busiest_channel_messages=11,
        settings=settings,
    )
    assert floor == pytest.approx(90 / (50 / 60))  # 108 s: the edits past the burst
    assert by.startswith("chat.update (tier3")


def test_the_busiest_channel_can_set_the_floor() -> None:
    settings = SlackSettings()
    floor, by = slack_floor(
        {"chat.postMessage": 40}, busiest_channel_messages=40, settings=settings
    )
    # 40 posts in one channel at 1/s after 3 (the workspace cap allows 40 after 30 in 2 s)
    assert floor == pytest.approx(37.0)
    assert by.startswith("chat.postMessage in the busiest channel")


def test_no_limits_no_floor() -> None:
    settings = SlackSettings(rate_limits_enabled=False)
    assert slack_floor({"chat.update": 10_000}, 100, settings) == (0.0, "no limits")
    assert slack_limits_text(settings) == "off"
    assert "Tier 3 50/min after 10" in slack_limits_text(SlackSettings())
