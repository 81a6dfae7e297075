"""A bulk request in Slack: one preview card in the channel, Confirm, the card edited in
place to its per-target result table, Resume batch, and one approval on production."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.slack.ids import BulkAction
from providers.sfmc.automations import SfmcAutomationProvider
from sandbox.campaign import add_campaign
from sandbox.clock import Clock
from sandbox.scrip.seed import WELCOME_POINTS
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for

USER = "U0ALICE"
CHANNEL = "C0OPS"


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks") or []:
        for el in block.get("elements") or []:
            if isinstance(el, dict) and el.get("type") == "button":
                found.setdefault(str(el["action_id"]), el)
    return found


def text_of(message: dict[str, Any]) -> str:
    parts = []
    for block in message.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
    return "\n".join(parts)


def card_with(bot: BotUnderTest, action: str, index: int) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        cards = bot.cards(CHANNEL)
        if len(cards) <= index:
            return None
        card = bot.slack.message(CHANNEL, str(cards[index]["ts"]))
        return card if action in buttons(card) else None

    return dict(wait_for(found, what=f"card {index} with {action}"))


def card_saying(bot: BotUnderTest, ts: str, words: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        card = bot.slack.message(CHANNEL, ts)
        return card if words in text_of(card) else None

    return dict(wait_for(found, what=f"the card saying {words!r}"))


def click(bot: BotUnderTest, action: str, card: dict[str, Any], user: str = USER) -> None:
    delivery = bot.driver.block_action(
        action_id=action,
        user=user,
        value=buttons(card)[action]["value"],
        channel=CHANNEL,
        message_ts=card["ts"],
    )
    assert delivery.status_code == 200


def test_a_bulk_pause_from_preview_card_to_result_table_and_back(bot: BotUnderTest) -> None:
    sfmc = bot.providers.sfmc
    bot.driver.slash_command("pause staging/*:*welcome* for 1d")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    shown = text_of(preview)
    assert "Preview" in shown
    assert "staging/automation:daily-welcome-send" in shown
    assert "skipped: cannot pause from stopped" in shown
    assert BulkAction.CANCEL in buttons(preview)
    assert sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6  # nothing yet

    # slow enough that the card is sent while it works (only its latest state is sent)
    sfmc.knobs.set(latency_ms=300)
    click(bot, BulkAction.CONFIRM, preview)
    done = card_saying(bot, str(preview["ts"]), "Done")
    sfmc.knobs.set(latency_ms=0)
    table = text_of(done)
    assert "5 done, 0 failed, 0 left" in table
    assert "paused (4 Paused) (verified)" in table
    assert len(bot.cards(CHANNEL)) == 1  # one card, edited in place
    edits = [
        str(c.args.get("blocks"))
        for c in bot.slack.calls("chat.update")
        if c.args.get("ts") == preview["ts"]
    ]
    assert any("Working" in e and "left" in e for e in edits)  # the progress bar
    assert len(edits) <= 5  # coalesced: not one edit per target
    assert sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    assert sfmc.journey(STAGING_MID, "welcome-series-es").status == "Paused"

    click(bot, BulkAction.RESUME, done)
    again = card_with(bot, BulkAction.CONFIRM, 1)
    assert "Bulk resume" in again["text"]
    click(bot, BulkAction.CONFIRM, again)
    card_saying(bot, str(again["ts"]), "Done")
    assert sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert sfmc.automation(STAGING_MID, "daily-welcome-send-test").status == 5  # left alone
    assert sfmc.journey(STAGING_MID, "welcome-series-es").status == "Published"


def test_a_production_bulk_pause_needs_one_approval(bot: BotUnderTest) -> None:
    sfmc = bot.providers.sfmc
    add_campaign(sfmc, None, mids=(PROD_MID,), automations=4, journeys=2)
    bot.driver.slash_command("pause prod/*:bf25-*")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    click(bot, BulkAction.CONFIRM, preview)
    waiting = card_with(bot, BulkAction.APPROVE, 0)
    assert "Awaiting one approval" in text_of(waiting)
    assert sfmc.automation(PROD_MID, "bf25-send-001").status == 6

    click(bot, BulkAction.APPROVE, waiting, user="U0ADMIN")
    done = card_saying(bot, str(preview["ts"]), "Done")
    assert "6 done, 0 failed, 0 left" in text_of(done)
    for n in range(1, 5):
        assert sfmc.automation(PROD_MID, f"bf25-send-00{n}").status == 4


# -- a timed bulk pause ends as one batch, with one note in the card's thread --------------


@pytest.fixture
def clocked_bot(
    clocked_sandbox: Sandbox, database_url: str, clock: Clock
) -> Iterator[BotUnderTest]:
    under_test = BotUnderTest(clocked_sandbox, database_url, clock=clock)
    try:
        yield under_test
    finally:
        under_test.stop()


def test_a_timed_bulk_pause_ends_with_one_thread_note(
    clocked_bot: BotUnderTest, clock: Clock
) -> None:
    bot = clocked_bot
    sfmc = bot.providers.sfmc
    bot.driver.slash_command("pause staging/automation:daily-welcome-* for 1h")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    click(bot, BulkAction.CONFIRM, preview)
    ts = str(preview["ts"])
    card_saying(bot, ts, "Done")
    assert sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4

    clock.advance(timedelta(hours=1, minutes=1))
    wait_for(lambda: any("ended" in t for t in bot.thread_texts(CHANNEL, ts)), what="the end note")
    bot.settle()
    notes = bot.thread_texts(CHANNEL, ts)
    assert len(notes) == 1  # one note for the whole batch
    assert "2 resumed (verified), 0 failed" in notes[0]
    assert sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert sfmc.automation(STAGING_MID, "daily-welcome-resend").status == 6
    assert sfmc.automation(STAGING_MID, "daily-welcome-send-test").status == 5
    assert len(bot.cards(CHANNEL)) == 1  # the end is a note, not another card


def test_a_failure_in_the_middle_is_retried_then_shown_with_its_code(bot: BotUnderTest) -> None:
    # every call about one scrip automation is throttled, with a wait too long to sit out
    bot.providers.scrip.knobs.set(rate_limit_next=3, retry_after_s=120, path_filter=WELCOME_POINTS)
    bot.driver.slash_command("pause staging/*:*welcome*")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    click(bot, BulkAction.CONFIRM, preview)
    done = text_of(card_saying(bot, str(preview["ts"]), "Done"))
    assert ":warning: *Done*" in done
    assert "4 done, 1 failed, 0 left" in done
    assert "FAILED after 3 tries: code too_many_requests" in done
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


# -- approve / deny a production batch by reaction on its card ------------------------------

APPROVE, DENY = "white_check_mark", "x"


def awaiting_batch(bot: BotUnderTest, requester: str = USER) -> str:
    add_campaign(bot.providers.sfmc, None, mids=(PROD_MID,), automations=3, journeys=1)
    bot.driver.slash_command("pause prod/*:bf25-*", user=requester)
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    click(bot, BulkAction.CONFIRM, preview, user=requester)
    card_with(bot, BulkAction.APPROVE, 0)
    return str(preview["ts"])


def test_a_production_batch_is_approved_by_a_reaction_on_its_card(bot: BotUnderTest) -> None:
    sfmc = bot.providers.sfmc
    ts = awaiting_batch(bot)
    bot.driver.reaction_added("U0ADMIN", f"{APPROVE}::skin-tone-2", CHANNEL, ts)
    done = card_saying(bot, ts, "Done")
    assert "4 done, 0 failed, 0 left" in text_of(done)
    for n in range(1, 4):
        assert sfmc.automation(PROD_MID, f"bf25-send-00{n}").status == 4
    # a second approval after the decision changes nothing
    bot.driver.reaction_added("U0CAROL", APPROVE, CHANNEL, ts)
    bot.settle()
    assert "4 done, 0 failed, 0 left" in text_of(bot.slack.message(CHANNEL, ts))


def test_a_production_batch_is_denied_by_a_reaction(bot: BotUnderTest) -> None:
    ts = awaiting_batch(bot)
    bot.driver.reaction_added("U0ADMIN", DENY, CHANNEL, ts)
    card_saying(bot, ts, "Denied")
    bot.settle()
    assert bot.providers.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


def test_reactions_of_non_approvers_and_the_requester_do_not_count(bot: BotUnderTest) -> None:
    ts = awaiting_batch(bot)
    bot.driver.reaction_added("U0DAVE", APPROVE, CHANNEL, ts)
    wait_for(
        lambda: any("is not an approver" in t for t in bot.thread_texts(CHANNEL, ts)),
        what="the note about a non-approver's reaction",
    )
    bot.driver.reaction_added("U0DAVE", DENY, CHANNEL, ts)
    bot.driver.reaction_added(USER, APPROVE, CHANNEL, ts)  # the requester (not an approver)
    bot.driver.reaction_added("U0DAVE", "tada", CHANNEL, ts)  # not an approval emoji
    bot.settle()
    notes = [t for t in bot.thread_texts(CHANNEL, ts) if "is not an approver" in t]
    assert len(notes) == 2  # once per person
    assert notes[0].startswith("<@U0DAVE> reacted")
    assert notes[1].startswith(f"<@{USER}> reacted")
    assert bot.slack.ephemerals(CHANNEL, "U0DAVE") == []
    assert bot.slack.ephemerals(CHANNEL, USER) == []  # the thread said it already
    assert "Awaiting one approval" in text_of(bot.slack.message(CHANNEL, ts))
    assert bot.providers.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


def test_an_approver_reacting_on_their_own_batch_is_told_privately(bot: BotUnderTest) -> None:
    ts = awaiting_batch(bot, requester="U0BOB")  # Bob is an approver (S0APPROVERS)
    bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
    refusal = wait_for(lambda: bot.slack.ephemerals(CHANNEL, "U0BOB"), what="a private refusal")
    assert "cannot approve it yourself" in refusal[0]["text"]
    bot.settle()
    assert not any("is not an approver" in t for t in bot.thread_texts(CHANNEL, ts))
    assert "Awaiting one approval" in text_of(bot.slack.message(CHANNEL, ts))
    assert bot.providers.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


# -- a batch and a single request never change the same target at once ---------------------


def test_a_single_request_on_a_target_a_running_batch_holds_is_refused_as_busy(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfmc = bot.providers.sfmc
    # 12 automations, the batch working on 10 at once: two wait their turn while the
    # first ten wait for their answers (and the business unit's 20 calls leave room for
    # the single request's reads)
    traits = SfmcAutomationProvider.traits.model_copy(update={"parallel_targets": 10})
    monkeypatch.setattr(SfmcAutomationProvider, "traits", traits)
    campaign = add_campaign(sfmc, None, mids=(STAGING_MID,), automations=12, journeys=0)
    keys = campaign.automations[STAGING_MID]
    bot.driver.slash_command("pause staging/automation:bf25-*")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    batch_id = buttons(preview)[BulkAction.CONFIRM]["value"]
    sfmc.hold_answers(soap_action="Schedule")  # the first ten pauses wait for their answer
    try:
        click(bot, BulkAction.CONFIRM, preview)
        wait_for(
            lambda: sum(c.soap_action == "Schedule" for c in list(sfmc.calls)) >= 10,
            what="the batch acting on its first ten targets",
        )
        waiting = next(k for k in keys if sfmc.automation(STAGING_MID, k).status == 6)
        bot.driver.slash_command(f"pause staging/automation:{waiting}")
        said = wait_for(bot.reply_texts, what="the answer to the single request")
    finally:
        sfmc.release_answers()
    assert f"Batch {batch_id} is changing" in said[0]
    assert "try again" in said[0]
    done = card_saying(bot, str(preview["ts"]), "Done")
    assert "12 done, 0 failed, 0 left" in text_of(done)
    bot.settle()
    assert len(bot.cards(CHANNEL)) == 1  # the refused request has no card


def test_a_batch_skips_a_target_a_single_request_is_changing(bot: BotUnderTest) -> None:
    scrip = bot.providers.scrip
    # every answer about this scrip automation is slow: the single request is in flight
    # (recorded, its change on its way) for seconds
    scrip.knobs.set(latency_ms=5000, path_filter=WELCOME_POINTS)
    bot.driver.slash_command("pause staging/scrip:welcome-points-drip")
    wait_for(lambda: bot.cards(CHANNEL), what="the single request's card")
    bot.driver.slash_command("pause staging/scrip:welcome-points*")
    preview = card_with(bot, BulkAction.CONFIRM, 1)
    click(bot, BulkAction.CONFIRM, preview)
    done = text_of(card_saying(bot, str(preview["ts"]), "Done"))
    scrip.knobs.set(latency_ms=0)
    assert "0 done, 0 failed, 0 left" in done, done
    assert "busy: request" in done
    single = bot.cards(CHANNEL)[0]
    wait_for(
        lambda: any("Verified" in t for t in bot.thread_texts(CHANNEL, str(single["ts"]))),
        what="the single request verified",
    )
    assert scrip.automation(WELCOME_POINTS)["status"] == "paused"


# -- bulk pauses on the Home tab and in `list paused` ---------------------------------------


def test_a_bulk_pause_shows_on_the_home_tab_and_in_list_paused(bot: BotUnderTest) -> None:
    assert bot.driver.app_home_opened("U0BOB").status_code == 200
    wait_for(lambda: bot.slack.home("U0BOB"), what="Bob's Home tab")
    bot.driver.slash_command("pause staging/automation:daily-welcome-* for 2d")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    batch_id = buttons(preview)[BulkAction.CONFIRM]["value"]
    click(bot, BulkAction.CONFIRM, preview)
    card_saying(bot, str(preview["ts"]), "Done")

    # the Home tab Bob opened before is refreshed once the batch is done
    home = wait_for(
        lambda: (h := bot.slack.home("U0BOB")) and "daily-welcome-send" in str(h) and h,
        what="Bob's Home tab showing the bulk pause",
    )
    shown = str(home["blocks"])
    assert "staging/automation:daily-welcome-send" in shown
    assert "staging/automation:daily-welcome-resend" in shown
    assert "daily-welcome-send-test" not in shown  # skipped by the batch: not held
    assert f"paused by <@{USER}>" in shown
    assert f"batch `{batch_id}`" in shown
    assert "left" in shown  # ends in 2 days: the time left
    assert "then it resumes" in shown
    assert "2 paused" in shown
    assert BulkAction.RESUME in shown
    assert "Resume batch" in shown

    bot.driver.slash_command("list paused automation welcome")
    [listed] = wait_for(
        lambda: [str(r["blocks"]) for r in bot.replies() if "daily-welcome-send" in str(r)],
        what="the list of paused automations",
    )
    assert f"paused by the bot for <@{USER}> (batch `{batch_id}`)" in listed, listed
    assert "left), then resume" in listed


def test_removing_a_reaction_withdraws_the_vote_on_a_batch(make_bot: BotFactory) -> None:
    bot = make_bot(approval={"approvers": ["S0APPROVERS", "U0ADMIN", "U0CAROL"], "required": 2})
    ts = awaiting_batch(bot)

    def counted(n: int) -> bool:
        return f'automation_bot_approvals_total{{outcome="counted"}} {n}.0' in (
            bot.metrics.render().decode()
        )

    bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
    wait_for(lambda: counted(1), what="Bob's approval counted")
    bot.driver.reaction_removed("U0BOB", APPROVE, CHANNEL, ts)
    bot.settle()
    bot.driver.reaction_added("U0CAROL", APPROVE, CHANNEL, ts)
    wait_for(lambda: counted(2), what="Carol's approval counted")
    bot.settle()
    # Bob's approval was withdrawn: one of two, so nothing was done yet
    assert "Awaiting" in text_of(bot.slack.message(CHANNEL, ts))
    assert bot.providers.sfmc.automation(PROD_MID, "bf25-send-001").status == 6
    bot.driver.reaction_added("U0ADMIN", APPROVE, CHANNEL, ts)
    card_saying(bot, ts, "Done")
    assert bot.providers.sfmc.automation(PROD_MID, "bf25-send-001").status == 4
