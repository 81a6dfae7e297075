"""Buttons on cards and pickers, and the card and thread that follow every step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.slack.ids import CardAction, CardBlock, ModalAction, ModalBlock, PickerAction
from bot.slack.metadata import ButtonValue, ModalContext
from sandbox.sfmc import STAGING_MID
from sandbox.sfmc.schedule import Schedule
from tests.scenarios.conftest import BotUnderTest, wait_for

USER = "U0ALICE"
CHANNEL = "C0OPS"


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by action_id."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks") or []:
        for el in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if isinstance(el, dict) and el.get("type") == "button":
                found.setdefault(str(el["action_id"]), el)
    return found


def finished_card(bot: BotUnderTest, index: int = 0, channel: str = CHANNEL) -> dict[str, Any]:
    """The ``index``-th card once its thread holds the result."""
    cards = wait_for(lambda: len(bot.cards(channel)) > index and bot.cards(channel), what="card")
    ts = str(cards[index]["ts"])

    def settled() -> bool:
        results = (":white_check_mark:", ":x:", ":warning:")
        return any(t.startswith(results) for t in bot.thread_texts(channel, ts))

    wait_for(settled, what="the result in the thread")
    bot.settle()  # card edits are paced apart from thread replies: let the last one land
    return dict(bot.slack.message(channel, ts))


def status_text(message: dict[str, Any]) -> str:
    block = next(b for b in message["blocks"] if b.get("block_id") == CardBlock.STATUS)
    return str(block["elements"][0]["text"])


# -- Resume now -------------------------------------------------------------------------


def test_resume_now_on_a_paused_card_resumes_the_target(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause automation:hourly-lead-sync for 2d")
    paused = finished_card(bot)
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4
    assert CardAction.RESUME_NOW in buttons(paused)
    assert CardAction.OPEN_PAUSE_MODAL not in buttons(paused)

    delivery = bot.driver.block_action(
        action_id=CardAction.RESUME_NOW, user="U0BOB", channel=CHANNEL, message_ts=paused["ts"]
    )
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 3
    resumed = finished_card(bot, 1)
    assert resumed["ts"] != paused["ts"]
    thread = bot.thread_texts(CHANNEL, resumed["ts"])
    assert any("Resumed" in t and "Verified" in t for t in thread), thread
    assert "<@U0BOB>" in str(resumed["blocks"])
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6
    # A resumed target offers to pause it again, not to resume it.
    assert CardAction.OPEN_PAUSE_MODAL in buttons(resumed)
    assert CardAction.RESUME_NOW not in buttons(resumed)


def test_resume_now_on_a_journey_card(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause journey:cart-abandonment for 1d")
    paused = finished_card(bot)
    assert bot.providers.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Paused"
    bot.driver.block_action(
        action_id=CardAction.RESUME_NOW, user=USER, channel=CHANNEL, message_ts=paused["ts"]
    )
    resumed = finished_card(bot, 1)
    assert "Done" in resumed["text"]
    assert bot.providers.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Published"


def test_resume_now_twice_acts_once_and_explains_the_second_click(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause automation:hourly-lead-sync")
    paused = finished_card(bot)
    for _ in range(2):
        bot.driver.block_action(
            action_id=CardAction.RESUME_NOW, user=USER, channel=CHANNEL, message_ts=paused["ts"]
        )
    resumed = finished_card(bot, 1)
    assert "Done" in resumed["text"]
    answer = wait_for(bot.reply_texts, what="an answer to the second click")[0]
    assert "already" in answer.lower() or "not paused" in answer
    bot.settle()
    assert len(bot.cards()) == 2
    posted = [c for c in bot.slack.calls("chat.postMessage") if "thread_ts" not in c.args]
    assert len(posted) == 2
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6


# -- Pause… ---------------------------------------------------------------------------


def test_pause_button_opens_the_modal_prefilled_with_the_target(bot: BotUnderTest) -> None:
    from tests.scenarios.test_modal import submit, text

    bot.driver.slash_command("pause automation:hourly-lead-sync")
    finished_card(bot)
    bot.driver.slash_command("resume automation:hourly-lead-sync")
    card = finished_card(bot, 1)
    assert CardAction.OPEN_PAUSE_MODAL in buttons(card)

    delivery = bot.driver.block_action(
        action_id=CardAction.OPEN_PAUSE_MODAL, user=USER, channel=CHANNEL, message_ts=card["ts"]
    )
    assert delivery.status_code == 200
    view = wait_for(lambda: bot.slack.latest_view(USER), what="the modal")
    assert bot.slack.calls("views.open")[0].args["trigger_id"] == delivery.trigger_id
    context = ModalContext.parse(view["private_metadata"])
    assert (context.channel_id, context.thread_ts) == (CHANNEL, card["ts"])
    assert (context.environment, context.key) == ("staging", "hourly-lead-sync")
    select = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.TARGET)
    assert select["element"]["initial_option"]["value"] == "staging|automation|hourly-lead-sync"
    assert "Hourly Lead Sync" in select["element"]["initial_option"]["text"]["text"]

    # Submitted as prefilled (Slack sends the initial choices): a pause card follows.
    answer = submit(bot, view, text(ModalBlock.DAYS, ModalAction.DAYS, "1"))
    assert answer is None or answer.get("response_action") != "errors", answer
    paused = finished_card(bot, 2)
    assert "Done" in paused["text"]
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4


def test_pause_button_on_a_journey_card_shows_the_journey_inputs(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause journey:cart-abandonment")
    paused = finished_card(bot)
    bot.driver.block_action(
        action_id=CardAction.RESUME_NOW, user=USER, channel=CHANNEL, message_ts=paused["ts"]
    )
    resumed = finished_card(bot, 1)
    bot.driver.block_action(
        action_id=CardAction.OPEN_PAUSE_MODAL, user=USER, channel=CHANNEL, message_ts=resumed["ts"]
    )
    view = wait_for(lambda: bot.slack.latest_view(USER), what="the modal")
    ids = [b.get("block_id") for b in view["blocks"]]
    assert ModalBlock.VERSION in ids
    assert ModalBlock.JOURNEY_OPTIONS in ids


# -- the picker -----------------------------------------------------------------------


def _add_twins(bot: BotUnderTest) -> None:
    for key in ("twin-east", "twin-west"):
        bot.providers.sfmc.add_automation(
            STAGING_MID,
            key=key,
            name="Twin",
            status=6,
            schedule=Schedule("Daily", start=datetime(2024, 1, 8, 5), end=datetime(2079, 6, 6)),
        )


def test_a_name_matching_several_targets_answers_with_a_picker(bot: BotUnderTest) -> None:
    _add_twins(bot)
    bot.driver.slash_command("pause Twin for 1d")
    picker = wait_for(bot.replies, what="the picker")[0]
    assert picker["response_type"] == "ephemeral"
    assert "Several targets match" in picker["text"]
    choices = [
        b["accessory"]
        for b in picker["blocks"]
        if (b.get("accessory") or {}).get("action_id") == PickerAction.CHOOSE
    ]
    keys = {ButtonValue.parse(c["value"]).key for c in choices}
    assert keys == {"twin-east", "twin-west"}
    assert bot.cards() == []

    west = next(c for c in choices if ButtonValue.parse(c["value"]).key == "twin-west")
    delivery = bot.driver.block_action(
        action_id=PickerAction.CHOOSE, user=USER, channel=CHANNEL, value=west["value"]
    )
    assert delivery.status_code == 200
    card = finished_card(bot)
    assert "twin-west" in str(card["blocks"])
    assert "Done" in card["text"]
    assert bot.providers.sfmc.automation(STAGING_MID, "twin-west").status == 4
    assert bot.providers.sfmc.automation(STAGING_MID, "twin-east").status == 6
    # The picker is removed through the click's response_url.
    removed = [
        r.payload
        for r in bot.slack.responses(delivery.response_url)
        if r.payload and r.payload.get("delete_original")
    ]
    assert removed
    # The pause keeps the original command's options (for 1d).
    assert "1d" in str(card["blocks"]) or "1 day" in str(card["blocks"])


# -- the card and its thread follow every step ----------------------------------------


def test_card_is_edited_in_place_and_every_step_is_a_thread_reply(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause journey:welcome-series-es for 2d then stop")
    card = finished_card(bot)
    assert len(bot.cards()) == 1
    updates = [c for c in bot.slack.calls("chat.update") if c.args.get("ts") == card["ts"]]
    assert len(updates) >= 1
    assert all(c.ok for c in updates)
    versions = [status_text(v) for v in bot.slack.message_versions(CHANNEL, card["ts"])]
    assert "Received" in versions[0]
    done = next(i for i, v in enumerate(versions) if "Done" in v)
    assert done == len(versions) - 1
    # Each edit shows the request as stored when it is sent: on a busy machine "Working"
    # may already be "Done" by then, so it is skipped; when it is shown, it comes first.
    working = [i for i, v in enumerate(versions) if "Working" in v]
    assert all(i < done for i in working)
    thread = bot.thread_texts(CHANNEL, card["ts"])
    assert thread[0].startswith("Pausing")
    assert thread[-1].startswith(":white_check_mark: Paused")
    assert "Verified" in thread[-1]
    assert len(thread) == 2


def test_a_provider_failure_ends_the_card_as_failed_with_the_code(bot: BotUnderTest) -> None:
    # Only the pause call itself is throttled: the checks before it read fine.
    bot.providers.sfmc.knobs.set(rate_limit_next=50, path_filter="/interactions/pause/")
    bot.driver.slash_command("pause journey:cart-abandonment for 1d")
    card = finished_card(bot)
    assert status_text(card).startswith(":x: Failed")
    thread = bot.thread_texts(CHANNEL, card["ts"])
    assert thread[0].startswith("Pausing")
    failure = thread[-1]
    assert failure.startswith(":x: Could not pause journey 'cart-abandonment'"), failure
    assert failure.count("Could not") == 1
    assert "50100" in failure
    assert failure.count("\n") == 0
    assert bot.providers.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Published"
    # A failed card offers to try again through the modal, never "Resume now".
    assert CardAction.OPEN_PAUSE_MODAL in buttons(card)
    assert CardAction.RESUME_NOW not in buttons(card)
    assert 'outcome="failed"' in bot.metrics.render().decode()


def test_a_scrip_trigger_refusal_ends_the_card_as_failed_with_the_code(
    bot: BotUnderTest,
) -> None:
    # The welcome drip's last run has finished ("completed"); a strict scrip refuses to
    # trigger anything that is not idle, which only the trigger call itself finds out.
    bot.providers.scrip.options.trigger_requires_strict_idle = True
    bot.driver.slash_command('run scrip:"Welcome Points Drip"')
    card = finished_card(bot)
    assert status_text(card).startswith(":x: Failed")
    failure = bot.thread_texts(CHANNEL, card["ts"])[-1]
    assert failure.startswith(":x: Could not run")
    # scrip's own message for the refusal, and the state it found.
    assert "Automation cannot be triggered" in failure
    assert "active/completed" in failure
    assert failure.count("\n") == 0
