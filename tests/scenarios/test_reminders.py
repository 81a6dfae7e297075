"""Timed pauses in Slack: reminders in the thread with their buttons, and the end."""

from __future__ import annotations

from datetime import timedelta

from sandbox.clock import Clock
from sandbox.sfmc import STAGING_MID
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for

TARGET = "hourly-lead-sync"


def _pause_card(bot: BotUnderTest) -> str:
    bot.driver.slash_command(f"pause automation:{TARGET} for 2h then resume")
    card = wait_for(bot.cards, what="a card")[0]
    wait_for(
        lambda: any("verified" in t.lower() for t in bot.thread_texts("C0OPS", card["ts"])),
        what="the verified reply",
    )
    return str(card["ts"])


def _reminder(bot: BotUnderTest, ts: str) -> dict[str, object]:
    def find() -> list[dict[str, object]]:
        return [
            m for m in bot.slack.thread("C0OPS", ts)[1:] if "Reminder" in str(m.get("text", ""))
        ]

    found: list[dict[str, object]] = wait_for(find, what="a reminder")
    return found[-1]


def test_reminder_then_let_it_end_then_the_end_resumes(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    ts = _pause_card(bot)
    clock.advance(timedelta(hours=1, minutes=1))
    reminder = _reminder(bot, ts)
    assert "ends in 5" in str(reminder["text"])  # 58m or 59m: the clock runs on
    bot.driver.block_action(
        action_id="reminder.keep_paused",
        user="U0BOB",
        channel="C0OPS",
        message_ts=str(reminder["ts"]),
    )
    wait_for(
        lambda: any("lets the pause end" in t for t in bot.thread_texts("C0OPS", ts)),
        what="the let-it-end note",
    )
    assert bot.providers.sfmc.automation(STAGING_MID, TARGET).status == 4
    clock.advance(timedelta(hours=1))
    wait_for(
        lambda: any("Resumed: it is now active" in t for t in bot.thread_texts("C0OPS", ts)),
        what="the end of the pause",
    )
    assert bot.providers.sfmc.automation(STAGING_MID, TARGET).status == 6


def test_resume_now_on_a_reminder(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    ts = _pause_card(bot)
    clock.advance(timedelta(hours=1, minutes=1))
    reminder = _reminder(bot, ts)
    bot.driver.block_action(
        action_id="reminder.resume_now",
        user="U0BOB",
        channel="C0OPS",
        message_ts=str(reminder["ts"]),
    )
    wait_for(lambda: bot.providers.sfmc.automation(STAGING_MID, TARGET).status == 6, what="resumed")


def test_extend_on_a_reminder_opens_the_form_prefilled(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    ts = _pause_card(bot)
    clock.advance(timedelta(hours=1, minutes=1))
    reminder = _reminder(bot, ts)
    delivery = bot.driver.block_action(
        action_id="reminder.extend", user="U0BOB", channel="C0OPS", message_ts=str(reminder["ts"])
    )
    view = wait_for(lambda: bot.slack.latest_view("U0BOB"), what="the pause form")
    assert TARGET in str(view)
    assert delivery.status_code == 200
