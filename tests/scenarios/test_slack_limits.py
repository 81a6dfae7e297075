"""The bot under Slack's rate limits (the emulator's tier budgets on, scaled down so they
bite within seconds): nothing is lost, every card and Home tab ends in its final state,
and a modal Slack is too busy to open is either opened or explained."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from bot.slack.ids import BulkAction
from sandbox.campaign import add_campaign
from sandbox.sfmc import STAGING_MID
from sandbox.slack import SANDBOX_BOT_TOKEN
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for
from tests.scenarios.test_bulk_cards import card_saying, card_with, click, text_of

CHANNEL = "C0OPS"
#: One request per channel: posts are paced per channel, so the cards and their edits come
#: together, and chat.update's budget is the workspace's, not the channel's.
CHANNELS = ["C0OPS", "C0GENERAL", "C0APPROVALS", "C0LIMITS1", "C0LIMITS2"]
USER = "U0ALICE"
#: Home tab viewers: more than the Tier 4 burst, opening at once.
VIEWERS = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ADMIN", "U0EVE"]
TARGETS = [
    "automation:hourly-lead-sync",
    "automation:daily-welcome-send",
    "automation:daily-welcome-resend",
    "journey:cart-abandonment",
    "journey:welcome-series-es",
]
#: chat.update (Tier 3) at 20 a minute after 2, views.* (Tier 4) at 30 a minute after 2:
#: a fraction of Slack's budgets, so a handful of requests run into them (and a refresh of
#: every Home tab takes seconds).
LIMITS = {"tier3_per_min": 20, "tier3_burst": 2, "tier4_per_min": 30, "tier4_burst": 2}
#: Requests sent before the Home tabs start refreshing, and while they are refreshing.
FIRST_WAVE = 3


def problems(logs: list[MutableMapping[str, Any]], records: list[logging.LogRecord]) -> list[str]:
    """Errors and tracebacks the bot logged."""
    found = [
        " ".join(f"{k}={v}" for k, v in entry.items())[:300]
        for entry in logs
        if entry.get("log_level") in ("error", "critical", "exception") or "exc_info" in entry
    ]
    found += [
        f"{r.name}: {r.getMessage()[:300]}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info
    ]
    return found


def home_text(bot: BotUnderTest, user: str) -> str:
    home = bot.slack.home(user)
    return str(home["blocks"]) if home else ""


def statuses(bot: BotUnderTest, method: str) -> list[int]:
    return [c.status for c in bot.slack.calls(method)]


def spend(bot: BotUnderTest, method: str, **args: Any) -> None:
    """Use up ``method``'s budget with one call of our own (refused or not, it counts)."""
    response = httpx.post(
        f"{bot.slack_url}/api/{method}",
        data=args,
        headers={"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"},
    )
    assert response.status_code == 200


@pytest.mark.postgres
def test_a_burst_of_card_edits_and_home_refreshes_ends_in_the_final_state(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(slack_limits=LIMITS)
    for user in VIEWERS[5:]:  # beyond the default directory
        bot.slack.add_user(user, user[2:].lower())
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        for user in VIEWERS:  # all at once: more than Tier 4 lets through
            assert bot.driver.app_home_opened(user).status_code == 200
        wait_for(lambda: all(bot.slack.home(u) for u in VIEWERS), timeout=60, what="every Home tab")
        opened = len(bot.slack.calls("views.publish"))
        sends = list(zip(TARGETS, CHANNELS, strict=True))
        for target, channel in sends[:FIRST_WAVE]:
            sent = bot.driver.slash_command(f"pause {target}", channel=channel)
            assert sent.status_code == 200
        # the rest while the Home tabs are being refreshed for the first ones
        wait_for(
            lambda: len(bot.slack.calls("views.publish")) > opened,
            timeout=60,
            what="a Home tab refresh",
        )
        for target, channel in sends[FIRST_WAVE:]:
            sent = bot.driver.slash_command(f"pause {target}", channel=channel)
            assert sent.status_code == 200

        def cards_done() -> bool:
            cards = [c for channel in CHANNELS for c in bot.cards(channel)]
            return len(cards) == len(TARGETS) and all("Done" in c["text"] for c in cards)

        wait_for(cards_done, timeout=120, what="every card in its final state")

        def homes_current() -> bool:
            return all(all(f"staging/{t}" in home_text(bot, u) for t in TARGETS) for u in VIEWERS)

        wait_for(homes_current, timeout=120, what="every Home tab showing every pause")
        bot.settle(timeout=60)
    # the limits were reached, and the bot went on
    assert 429 in statuses(bot, "chat.update")
    assert 429 in statuses(bot, "views.publish")
    for channel in CHANNELS:
        [card] = bot.cards(channel)
        assert "Done" in card["text"]
        assert bot.slack.message_versions(channel, str(card["ts"]))[-1]["text"] == card["text"]
    assert not problems(logs, caplog.records), problems(logs, caplog.records)[:5]


def test_a_modal_opens_after_a_tier4_429(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(slack_limits={"tier4_per_min": 60, "tier4_burst": 1})
    spend(bot, "views.open", trigger_id="1.1.ab", view="{}")
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        assert bot.driver.slash_command("pause").status_code == 200
        view = wait_for(lambda: bot.slack.latest_view(USER), timeout=30, what="the modal")
        bot.settle()
    assert view["type"] == "modal"
    # ours, then the bot's: refused with Retry-After: 1, then opened within the trigger's 3 s
    assert statuses(bot, "views.open") == [200, 429, 200]
    assert not problems(logs, caplog.records), problems(logs, caplog.records)[:5]


def test_a_modal_slack_is_too_busy_to_open_in_time_is_explained(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Retry-After: 3 s, so the trigger (3 s) has expired when the bot may call again
    bot = make_bot(slack_limits={"tier4_per_min": 20, "tier4_burst": 1})
    spend(bot, "views.open", trigger_id="1.1.ab", view="{}")
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        assert bot.driver.slash_command("pause").status_code == 200
        texts = wait_for(bot.reply_texts, timeout=30, what="an answer to the user")
        bot.settle()
    assert bot.slack.latest_view(USER) is None
    assert [c.error for c in bot.slack.calls("views.open")][1:] == [
        "ratelimited",
        "expired_trigger_id",
    ]
    [text] = texts
    assert "Slack" in text
    assert "busy" in text
    assert "try again" in text.lower()
    assert "error id" not in text
    assert not problems(logs, caplog.records), problems(logs, caplog.records)[:5]


def test_a_bulk_pause_of_thirty_targets_under_the_limits_ends_in_its_final_state(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(slack_limits=LIMITS)
    sfmc = bot.providers.sfmc
    campaign = add_campaign(sfmc, None, mids=(STAGING_MID,), automations=20, journeys=10)
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        sent = bot.driver.slash_command("pause staging/*:bf25-*", channel=CHANNEL)
        assert sent.status_code == 200
        preview = card_with(bot, BulkAction.CONFIRM, 0)
        assert "30" in text_of(preview)
        for _ in range(LIMITS["tier3_burst"]):  # Tier 3 used up: the first edits wait
            spend(bot, "chat.update", channel=CHANNEL, ts="1.1", text="x")
        click(bot, BulkAction.CONFIRM, preview)
        ts = str(preview["ts"])
        done = card_saying(bot, ts, "Done")
        bot.settle(timeout=60)
    assert "30 done, 0 failed, 0 left" in text_of(done)
    for key in campaign.automations[STAGING_MID]:
        assert sfmc.automation(STAGING_MID, key).status == 4
    for key in campaign.journeys[STAGING_MID]:
        assert sfmc.journey(STAGING_MID, key).status == "Paused"
    # coalesced: a handful of edits for thirty targets, and the last one is the final state
    edits = [c for c in bot.slack.calls("chat.update") if c.args.get("ts") == ts]
    assert 429 in statuses(bot, "chat.update")  # the limit was reached, and the bot went on
    assert 1 <= len(edits) <= 8, len(edits)
    assert len(bot.cards(CHANNEL)) == 1
    final = bot.slack.message(CHANNEL, ts)
    assert "30 done, 0 failed, 0 left" in text_of(final)
    assert bot.slack.message_versions(CHANNEL, ts)[-1]["text"] == final["text"]
    assert not problems(logs, caplog.records), problems(logs, caplog.records)[:5]
