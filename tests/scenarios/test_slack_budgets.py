"""The bot within Slack's workspace budgets (the emulator's tier limits on, scaled down so
they bite within seconds, and the bot told the same budgets): a burst of requests and then
a burst of pause ends over many channels get through without Slack refusing a call,
every thread gets its notes, every card ends in its final state, and a card whose request
finishes while its edit waits for the budget is edited once, not once per state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sandbox.campaign import add_campaign
from sandbox.clock import Clock
from sandbox.sfmc import STAGING_MID
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotUnderTest, wait_for

#: Pauses made at once, one per channel (a channel's posts are paced per channel; the
#: budgets under test are the workspace's).
N = 10
CHANNELS = [f"C0BUDGET{i:02d}" for i in range(N)]
NOTIFY = "C0NOTIFY"
#: chat.update (Tier 3) at 40 a minute after 3, chat.postMessage 5 a second across the
#: workspace after 10: a fraction of what the requests below ask for at once.
LIMITS = {
    "tier3_per_min": 40,
    "tier3_burst": 3,
    "tier4_per_min": 600,
    "tier4_burst": 10,
    "post_message_workspace_per_min": 300,
    "post_message_workspace_burst": 10,
}
#: What the bot keeps to: one token short of Slack's Tier 3 burst (a call that arrives a
#: little early still finds one).
BOT_BURST = LIMITS["tier3_burst"] - 1
#: Every SFMC call takes this long: a request executes for a couple of seconds.
LATENCY_MS = 400
VERIFIED = "Verified: it is now"
WORKING = "Working"
DONE = "Done"
#: How the card's pause section tells that the pause ended (the automation was resumed).
ENDED = "resumed"
RESUMED = "The pause time is up. Resumed: it is now active"


@pytest.fixture
def bot(clocked_sandbox: Sandbox, clock: Clock, database_url: str) -> Iterator[BotUnderTest]:
    box = clocked_sandbox
    add_campaign(box.sfmc, None, mids=(STAGING_MID,), automations=N, journeys=0)
    under_test = BotUnderTest(
        box,
        database_url,
        clock=clock,
        notify={"staging": NOTIFY},
        slack_limits=LIMITS,
        bot_limits=LIMITS,
    )
    try:
        yield under_test
    finally:
        under_test.stop()


def card_ts(bot: BotUnderTest, channel: str) -> str | None:
    cards = bot.cards(channel)
    return str(cards[0]["ts"]) if cards else None


def shown(message: dict[str, Any]) -> str:
    """A card's text and blocks, as one string."""
    return str(message.get("text", "")) + json.dumps(message.get("blocks", []))


def card_says(bot: BotUnderTest, channel: str, needle: str) -> bool:
    cards = bot.cards(channel)
    return bool(cards) and needle in shown(cards[0])


def pause_section(message: dict[str, Any]) -> str:
    """What the card says after its ``*Pause*`` heading (lower case)."""
    text = shown(message)
    return text.split("*Pause*", 1)[1].lower() if "*Pause*" in text else ""


def ended(bot: BotUnderTest, channel: str) -> bool:
    cards = bot.cards(channel)
    return bool(cards) and ENDED in pause_section(cards[0])


def said(bot: BotUnderTest, channel: str, needle: str) -> bool:
    ts = card_ts(bot, channel)
    return ts is not None and any(needle in t for t in bot.thread_texts(channel, ts))


def refused(bot: BotUnderTest) -> dict[str, int]:
    """Calls Slack answered 429, by method."""
    counts: dict[str, int] = {}
    for call in bot.slack.calls():
        if call.status == 429:
            counts[call.method] = counts.get(call.method, 0) + 1
    return counts


def edits(bot: BotUnderTest) -> list[Any]:
    return [c for c in bot.slack.calls("chat.update") if c.status == 200]


def test_bursts_of_requests_and_pause_ends_stay_within_the_workspace_budgets(
    bot: BotUnderTest, clock: Clock
) -> None:
    # each request executes for a couple of seconds: its card would show "Working"
    bot.providers.sfmc.knobs.set(latency_ms=LATENCY_MS)
    for i, channel in enumerate(CHANNELS):
        command = f"pause automation:bf25-send-{i + 1:03d} for 1h then resume"
        assert bot.driver.slash_command(command, channel=channel).status_code == 200
    wait_for(lambda: all(said(bot, c, VERIFIED) for c in CHANNELS), timeout=90, what="every pause")
    wait_for(lambda: all(card_says(bot, c, DONE) for c in CHANNELS), what="every card done")
    bot.settle(timeout=60)
    made = edits(bot)
    working = [e for e in made if WORKING in str(e.args.get("text"))]
    # a card whose request finished while its edit waited is edited once: only the edits
    # the full budget let through (nobody else needed it then) showed "Working"
    assert len(working) <= BOT_BURST, [str(e.args.get("text"))[:80] for e in working]
    assert len(made) < 2 * N, len(made)  # not an edit per state ("Working", then "Done")
    bot.providers.sfmc.knobs.set(latency_ms=0)

    clock.advance(timedelta(hours=1, minutes=1))  # every pause ends at once
    wait_for(
        lambda: all(said(bot, c, RESUMED) for c in CHANNELS), timeout=90, what="every end note"
    )
    wait_for(lambda: all(ended(bot, c) for c in CHANNELS), what="every card ended")
    bot.settle(timeout=60)
    assert refused(bot) == {}  # not one call over a budget
    assert len(edits(bot)) - len(made) == N  # one edit per card for its end
    for channel in CHANNELS:
        ts = str(card_ts(bot, channel))
        assert ENDED in pause_section(bot.slack.message_versions(channel, ts)[-1])
        assert sum(RESUMED in t for t in bot.thread_texts(channel, ts)) == 1
    notices = " ".join(shown(m) for m in bot.slack.messages(NOTIFY))
    assert all(f"bf25-send-{i + 1:03d}" in notices for i in range(N)), notices
