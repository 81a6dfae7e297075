"""Replays and duplicates: each slash command is handled once, and the same production
request never waits for approval twice.

A slash command's trigger_id is recorded in the database before the ack, so the same
signed body posted again (within Slack's 5-minute window) is answered "already received"
by any bot process, before or after a restart. Two different commands asking for exactly
the same production change get one card: the second requester is pointed at it.
"""

from __future__ import annotations

from sqlalchemy import text

from bot.domain.requests import RequestStatus
from bot.slack.blocks import DUPLICATE_COMMAND
from bot.store import db
from sandbox.sfmc import STAGING_MID
from sandbox.slack import Delivery
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import (
    CHANNEL,
    PROD_PAUSE,
    TARGET,
    ask,
    changes,
    request_of,
    second_driver,
    together,
    wait_reply,
)


def recorded(bot: BotUnderTest) -> list[tuple[str, str]]:
    """Every request in the database: (status, fingerprint), oldest first."""
    engine = db.create_sync_engine_for(bot.config.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT status, fingerprint FROM requests ORDER BY created_at, id")
            ).all()
    finally:
        engine.dispose()
    return [(str(status), str(fingerprint)) for status, fingerprint in rows]


def replay(bot: BotUnderTest, delivery: Delivery) -> Delivery:
    """Post the very same signed bytes again (headers too), as an attacker or a proxy would."""
    return bot.driver.raw(delivery.body, delivery.headers, sign_request=False)


def test_a_replayed_production_command_makes_one_pending_approval(bot: BotUnderTest) -> None:
    first = bot.driver.slash_command(PROD_PAUSE)
    assert first.status_code == 200
    again = replay(bot, first)
    assert again.status_code == 200  # acked at once; the replay is told after the ack
    wait_reply(bot, DUPLICATE_COMMAND)
    wait_for(lambda: bot.cards(), what="the pending card")
    wait_for(lambda: recorded(bot), what="the request")
    assert [status for status, _ in recorded(bot)] == ["awaiting_approval"]
    assert len(bot.cards()) == 1


def test_a_replayed_staging_pause_is_not_turned_into_an_extension(bot: BotUnderTest) -> None:
    first = bot.driver.slash_command("pause automation:daily-welcome-send for 3d")
    assert replay(bot, first).status_code == 200
    wait_reply(bot, DUPLICATE_COMMAND)
    card = wait_for(lambda: bot.cards(), what="a card")[0]
    wait_for(
        lambda: [t for t in bot.thread_texts(CHANNEL, card["ts"]) if "verified" in t.lower()],
        what="the verified reply",
    )
    assert [status for status, _ in recorded(bot)] == ["succeeded"]
    assert len(bot.cards()) == 1
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


def test_a_replay_to_another_process_or_after_a_restart_is_refused(bot: BotUnderTest) -> None:
    replica = bot.start_another()
    first = bot.driver.slash_command(PROD_PAUSE)
    assert replica.driver.raw(first.body, first.headers, sign_request=False).status_code == 200
    wait_reply(bot, DUPLICATE_COMMAND)
    wait_for(lambda: bot.cards(), what="the pending card")
    bot.restart()
    assert replay(bot, first).status_code == 200
    wait_for(
        lambda: len([t for t in bot.reply_texts() if DUPLICATE_COMMAND in t]) == 2,
        what="the second replay told",
    )
    assert [status for status, _ in recorded(bot)] == ["awaiting_approval"]


def test_the_same_production_request_twice_points_at_the_first_card(bot: BotUnderTest) -> None:
    ts = ask(bot, user="U0ALICE")
    second = bot.driver.slash_command(PROD_PAUSE, user="U0CAROL")
    assert second.status_code == 200
    answer = wait_reply(bot, "already waiting for approval")
    assert f"<#{CHANNEL}>" in answer
    assert f"/archives/{CHANNEL}/p{ts.replace('.', '')}|its card>" in answer
    assert "Nothing new was recorded" in answer
    assert [status for status, _ in recorded(bot)] == ["awaiting_approval"]
    assert len(bot.cards()) == 1
    # other parameters are another request: it gets its own card
    bot.driver.slash_command(f"pause prod/{TARGET} for 2d")
    wait_for(lambda: len(bot.cards()) == 2, what="a second card")
    statuses = [status for status, _ in recorded(bot)]
    assert statuses == ["awaiting_approval", "awaiting_approval"]
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert changes(bot) == []


def test_two_identical_production_requests_at_once_make_one_card(bot: BotUnderTest) -> None:
    other = second_driver(bot)
    try:

        def alice() -> None:
            bot.driver.slash_command(PROD_PAUSE, user="U0ALICE")

        def carol() -> None:
            other.slash_command(PROD_PAUSE, user="U0CAROL")

        together(alice, carol)
        wait_reply(bot, "already waiting for approval")
        wait_for(lambda: bot.cards(), what="the pending card")
        assert [status for status, _ in recorded(bot)] == ["awaiting_approval"]
        assert len(bot.cards()) == 1
    finally:
        other.close()
