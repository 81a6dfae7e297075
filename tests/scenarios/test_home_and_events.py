"""The Home tab, Events API deliveries, the health and metrics endpoints, and what the user
sees when something unexpected breaks after the ack."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bot.slack.handlers import SlackHandlers
from bot.slack.ids import HomeAction
from sandbox.sfmc import STAGING_MID
from tests.scenarios.conftest import BotUnderTest, wait_for

USER = "U0ALICE"
CHANNEL = "C0OPS"


def finished_cards(bot: BotUnderTest, count: int) -> list[dict[str, Any]]:
    """The first ``count`` cards, once each thread holds its result."""
    cards = wait_for(lambda: len(bot.cards()) >= count and bot.cards(), what=f"{count} cards")
    for card in cards[:count]:
        ts = str(card["ts"])

        def settled(ts: str = ts) -> bool:
            return any(
                t.startswith((":white_check_mark:", ":x:", ":warning:"))
                for t in bot.thread_texts(CHANNEL, ts)
            )

        wait_for(settled, what="the result in the thread")
    bot.settle()  # card edits are paced apart from thread replies: let the last one land
    return [dict(bot.slack.message(CHANNEL, c["ts"])) for c in cards[:count]]


def home_text(bot: BotUnderTest, user: str = USER) -> str:
    home = bot.slack.home(user)
    return str(home["blocks"]) if home else ""


def resume_buttons(home: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(block_id, section text)`` of every paused item with a "Resume now" button."""
    return [
        (b["block_id"], b)
        for b in home["blocks"]
        if (b.get("accessory") or {}).get("action_id") == HomeAction.RESUME_NOW
    ]


# -- Home tab -------------------------------------------------------------------------


def test_home_lists_what_the_bot_paused_and_resume_now_clears_it(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause automation:hourly-lead-sync for 3d")
    finished_cards(bot, 1)
    bot.driver.slash_command("pause journey:cart-abandonment", user="U0BOB")
    finished_cards(bot, 2)

    delivery = bot.driver.app_home_opened(USER)
    assert delivery.status_code == 200
    home = wait_for(lambda: bot.slack.home(USER), what="the Home tab")
    items = resume_buttons(home)
    assert len(items) == 2
    shown = home_text(bot)
    assert "Hourly Lead Sync" in shown
    assert "staging/automation:hourly-lead-sync" in shown
    assert "Cart Abandonment" in shown
    assert "paused by <@U0ALICE> (you)" in shown
    assert "paused by <@U0BOB>" in shown
    assert re.search(r"\*(2d 2\dh|3d) left\*", shown), shown
    assert "No end set" in shown
    # Timed pauses come first (ending soonest on top).
    assert "hourly-lead-sync" in str(items[0][1])
    assert "cart-abandonment" in str(items[1][1])

    publishes = len(bot.slack.calls("views.publish"))
    block_id = items[0][0]
    clicked = bot.driver.block_action(
        action_id=HomeAction.RESUME_NOW, user=USER, view=str(home["id"]), block_id=block_id
    )
    assert clicked.status_code == 200
    cards = finished_cards(bot, 3)
    assert "Done" in cards[2]["text"]
    assert "Resume" in cards[2]["text"]
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6
    wait_for(lambda: "hourly-lead-sync" not in home_text(bot), what="the Home tab without the item")
    assert len(bot.slack.calls("views.publish")) > publishes
    home = bot.slack.home(USER)
    assert home is not None
    assert len(resume_buttons(home)) == 1
    assert "cart-abandonment" in home_text(bot)


def test_home_with_nothing_paused(bot: BotUnderTest) -> None:
    bot.driver.app_home_opened(USER)
    wait_for(lambda: bot.slack.home(USER), what="the Home tab")
    assert "Nothing is paused right now" in home_text(bot)


def test_the_messages_tab_publishes_nothing(bot: BotUnderTest) -> None:
    bot.driver.app_home_opened(USER, tab="messages")
    bot.settle()
    assert bot.slack.calls("views.publish") == []


# -- Events API -----------------------------------------------------------------------


def test_a_retried_event_is_handled_once(bot: BotUnderTest) -> None:
    first = bot.driver.app_home_opened(USER, event_id="Ev0HOME0001")
    wait_for(lambda: bot.slack.calls("views.publish"), what="the Home tab")
    again = bot.driver.app_home_opened(USER, event_id="Ev0HOME0001", retry_num=1)
    assert first.status_code == again.status_code == 200
    assert again.payload == first.payload
    assert again.headers["X-Slack-Retry-Num"] == "1"
    bot.settle()
    assert len(bot.slack.calls("views.publish")) == 1
    # A new event is a new delivery.
    bot.driver.app_home_opened(USER, event_id="Ev0HOME0002")
    wait_for(lambda: len(bot.slack.calls("views.publish")) == 2, what="a second publish")


def test_a_retry_that_overtakes_the_first_delivery_is_still_handled_once(
    bot: BotUnderTest,
) -> None:
    bot.driver.app_home_opened(USER, event_id="Ev0HOME0003", retry_num=1)
    bot.driver.app_home_opened(USER, event_id="Ev0HOME0003", retry_num=2)
    bot.driver.app_home_opened(USER, event_id="Ev0HOME0003")
    wait_for(lambda: bot.slack.calls("views.publish"), what="the Home tab")
    bot.settle()
    assert len(bot.slack.calls("views.publish")) == 1


def test_url_verification_answers_the_challenge(bot: BotUnderTest) -> None:
    delivery = bot.driver.url_verification("challenge-123")
    assert delivery.status_code == 200
    assert "challenge-123" in delivery.text


# -- health and metrics ---------------------------------------------------------------


def test_healthz_and_metrics(bot: BotUnderTest) -> None:
    health = httpx.get(bot.url + "/healthz")
    assert health.status_code == 200
    assert health.json() == {"ok": True}

    bot.driver.slash_command("pause automation:hourly-lead-sync")
    finished_cards(bot, 1)
    metrics = httpx.get(bot.url + "/metrics")
    assert metrics.status_code == 200
    body = metrics.text
    assert re.search(
        r'^automation_bot_commands_total\{verb="pause",via="command"\} 1\.0$', body, re.M
    ), body
    assert re.search(
        r'^automation_bot_requests_total\{kind="automation",outcome="succeeded",verb="pause"\}'
        r" 1\.0$",
        body,
        re.M,
    ), body
    assert "automation_bot_ack_seconds_count" in body


# -- unexpected errors after the ack --------------------------------------------------


@pytest.mark.parametrize("when", ["in_the_work", "before_the_work"])
def test_an_unexpected_error_gets_an_error_id_and_the_bot_keeps_working(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    if when == "in_the_work":

        async def broken(self: SlackHandlers, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("secret-internal-detail")

        monkeypatch.setattr(SlackHandlers, "run_command", broken)
    else:  # raised by the listener itself, after the ack: Bolt's error handler answers

        def broken_now(self: SlackHandlers, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("secret-internal-detail")

        monkeypatch.setattr(SlackHandlers, "run_command", broken_now)

    delivery = bot.driver.slash_command("status journey:welcome-series")
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 3
    answer = wait_for(bot.replies, what="the error answer")[0]
    assert answer["response_type"] == "ephemeral"
    assert re.search(r"error id [0-9a-f]{10}", answer["text"]), answer["text"]
    assert "secret-internal-detail" not in str(answer)
    assert "Traceback" not in str(answer)

    monkeypatch.undo()
    bot.driver.slash_command("status journey:welcome-series")
    texts = wait_for(lambda: len(bot.reply_texts()) >= 2 and bot.reply_texts(), what="status")
    assert "welcome-series" in texts[1]
    assert httpx.get(bot.url + "/healthz").status_code == 200


def test_an_unexpected_error_in_a_button_reaches_the_user(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot.driver.slash_command("pause automation:hourly-lead-sync")
    card = finished_cards(bot, 1)[0]

    async def broken(self: SlackHandlers, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(SlackHandlers, "resume_request", broken)
    bot.driver.block_action(
        action_id="card.resume_now", user=USER, channel=CHANNEL, message_ts=card["ts"]
    )
    answer = wait_for(bot.replies, what="the error answer")[0]
    assert "error id" in answer["text"]
    assert answer.get("replace_original") is False
    assert bot.slack.message(CHANNEL, card["ts"])["text"] == card["text"]
    monkeypatch.undo()
    bot.driver.block_action(
        action_id="card.resume_now", user=USER, channel=CHANNEL, message_ts=card["ts"]
    )
    finished_cards(bot, 2)
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6


def test_an_open_home_tab_follows_new_pauses(bot: BotUnderTest) -> None:
    bot.driver.app_home_opened(USER)
    wait_for(lambda: "Nothing is paused" in home_text(bot), what="the empty Home tab")
    bot.driver.slash_command("pause automation:hourly-lead-sync", user="U0BOB")
    wait_for(lambda: "hourly-lead-sync" in home_text(bot), what="the Home tab with the pause")
    assert "paused by <@U0BOB>" in home_text(bot)


def test_pause_from_the_home_tab_posts_the_card_in_the_app_dm(bot: BotUnderTest) -> None:
    from tests.scenarios.test_modal import option_for, submit, target

    bot.driver.app_home_opened(USER)
    home = wait_for(lambda: bot.slack.home(USER), what="the Home tab")
    bot.driver.block_action(action_id=HomeAction.OPEN_PAUSE_MODAL, user=USER, view=str(home["id"]))
    view = wait_for(lambda: bot.slack.latest_view(USER), what="the modal")
    automation = option_for(bot, view, "lead", "staging|automation|hourly-lead-sync")
    answer = submit(bot, view, target(automation))
    assert answer is None or answer.get("response_action") != "errors", answer
    posted = wait_for(
        lambda: [
            c for c in bot.slack.calls("chat.postMessage") if c.ok and "thread_ts" not in c.args
        ],
        what="the card",
    )
    dm = posted[0].response["channel"] if posted[0].response else None
    assert dm is not None
    assert dm.startswith("D")
    card = bot.slack.messages(dm)[0]
    wait_for(
        lambda: any("Verified" in t for t in bot.thread_texts(dm, card["ts"])),
        what="the verified reply in the DM",
    )
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4
    wait_for(lambda: "hourly-lead-sync" in home_text(bot), what="the Home tab with the pause")
