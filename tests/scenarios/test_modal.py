"""The pause modal over real HTTP: opened by ``/automation pause``, searched live, redrawn
when the environment or the target changes, validated inline, and submitted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from bot.slack.ids import BulkAction, ModalAction, ModalBlock, ModalCallback
from bot.slack.metadata import ModalContext
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.scenarios.conftest import BotUnderTest, wait_for

USER = "U0ALICE"

#: Slack sends the value of every input (initial ones too) under these keys.
_SINGLE = {"static_select", "external_select", "radio_buttons"}


def slack_state(view: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``view.state.values`` as Slack sends it: every input's initial value, then ``values``
    (``{block_id: {action_id: state}}``, each state a full dict like Slack's)."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        el = block["element"]
        kind = el["type"]
        entry: dict[str, Any] = {"type": kind}
        if kind in _SINGLE:
            entry["selected_option"] = el.get("initial_option")
        elif kind == "checkboxes":
            entry["selected_options"] = el.get("initial_options", [])
        elif kind == "datetimepicker":
            entry["selected_date_time"] = el.get("initial_date_time")
        else:
            initial = el.get("initial_value")
            entry["value"] = None if initial is None else str(initial)
        state.setdefault(block["block_id"], {})[el["action_id"]] = entry
    for block_id, actions in (values or {}).items():
        for action_id, given in actions.items():
            state.setdefault(block_id, {})[action_id] = {
                **state.get(block_id, {}).get(action_id, {}),
                **given,
            }
    return state


def block_ids(view: Mapping[str, Any]) -> list[str]:
    return [str(b.get("block_id")) for b in view.get("blocks") or []]


def options_of(data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    assert data is not None, "the options request got no JSON answer"
    found = list(data.get("options") or [])
    for group in data.get("option_groups") or []:
        found.extend(group["options"])
    return found


def open_modal(bot: BotUnderTest, *, channel: str = "C0GENERAL") -> dict[str, Any]:
    delivery = bot.driver.slash_command("pause", channel=channel)
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 3
    view = wait_for(lambda: bot.slack.latest_view(USER), what="the pause modal")
    opened = bot.slack.calls("views.open")
    assert len(opened) == 1
    assert opened[0].ok
    assert opened[0].args["trigger_id"] == delivery.trigger_id
    return dict(view)


def suggest(bot: BotUnderTest, view: Mapping[str, Any], query: str) -> list[dict[str, Any]]:
    delivery = bot.driver.block_suggestion(
        action_id=ModalAction.TARGET, value=query, user=USER, view=str(view["id"])
    )
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 3
    return options_of(delivery.data)


def option_for(
    bot: BotUnderTest, view: Mapping[str, Any], query: str, value: str
) -> dict[str, Any]:
    found = [o for o in suggest(bot, view, query) if o["value"] == value]
    assert found, f"{value} is not among the options for {query!r}"
    return found[0]


def redrawn(bot: BotUnderTest, view_id: str, old_hash: str) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (v := bot.slack.view(view_id)) and v["hash"] != old_hash and v,
            what="views.update of the modal",
        )
    )


def choose_target(
    bot: BotUnderTest, view: Mapping[str, Any], option: Mapping[str, Any]
) -> dict[str, Any]:
    """The user picks ``option`` in the target select (it dispatches block_actions)."""
    state = slack_state(
        view, {ModalBlock.TARGET: {ModalAction.TARGET: {"selected_option": dict(option)}}}
    )
    delivery = bot.driver.block_action(
        action_id=ModalAction.TARGET,
        user=USER,
        view=str(view["id"]),
        selected_option=option,
        state_values=state,
    )
    assert delivery.status_code == 200
    return redrawn(bot, str(view["id"]), str(view["hash"]))


def choose_environment(bot: BotUnderTest, view: Mapping[str, Any], name: str) -> dict[str, Any]:
    delivery = bot.driver.block_action(
        action_id=ModalAction.ENVIRONMENT,
        user=USER,
        view=str(view["id"]),
        value=name,
        state_values=slack_state(view),
    )
    assert delivery.status_code == 200
    return redrawn(bot, str(view["id"]), str(view["hash"]))


def submit(
    bot: BotUnderTest, view: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any] | None:
    current = bot.slack.view(str(view["id"]))
    delivery = bot.driver.view_submission(str(view["id"]), slack_state(current, values), user=USER)
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 3
    return delivery.data


def target(option: Mapping[str, Any]) -> dict[str, Any]:
    return {ModalBlock.TARGET: {ModalAction.TARGET: {"selected_option": dict(option)}}}


def text(block: ModalBlock, action: ModalAction, value: str) -> dict[str, Any]:
    return {block: {action: {"value": value}}}


def radio(block: ModalBlock, action: ModalAction, value: str) -> dict[str, Any]:
    return {block: {action: {"selected_option": {"value": value}}}}


def merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for block_id, actions in part.items():
            out.setdefault(block_id, {}).update(actions)
    return out


# -- opening and searching ------------------------------------------------------------


def test_pause_without_arguments_opens_the_modal_at_once(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    assert view["type"] == "modal"
    assert view["callback_id"] == ModalCallback.PAUSE
    assert bot.slack.view_is_open(str(view["id"]))
    context = ModalContext.parse(view["private_metadata"])
    assert (context.user_id, context.channel_id) == (USER, "C0GENERAL")
    assert ModalBlock.ENVIRONMENT in block_ids(view)
    assert ModalBlock.TARGET in block_ids(view)
    # Journey-only inputs wait until a journey is chosen.
    assert ModalBlock.VERSION not in block_ids(view)
    assert ModalBlock.JOURNEY_OPTIONS not in block_ids(view)
    assert bot.reply_texts() == []
    assert bot.cards("C0GENERAL") == []


def test_target_search_covers_automations_journeys_and_scrip(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    welcome = {o["value"] for o in suggest(bot, view, "welcome")}
    assert "staging|automation|daily-welcome-send" in welcome
    assert "staging|journey|welcome-series" in welcome
    assert any(v.startswith("staging|scrip|") for v in welcome)
    points = suggest(bot, view, "points")
    assert {o["value"].split("|")[1] for o in points} == {"scrip"}
    assert any("Nightly Points Expiry" in o["text"]["text"] for o in points)
    assert suggest(bot, view, "no-such-thing-anywhere") == []


def test_choosing_a_journey_shows_journey_inputs_and_an_automation_hides_them(
    bot: BotUnderTest,
) -> None:
    view = open_modal(bot)
    journey = option_for(bot, view, "welcome", "staging|journey|welcome-series")
    view = choose_target(bot, view, journey)
    ids = block_ids(view)
    assert ModalBlock.VERSION in ids
    assert ModalBlock.VERSION_NUMBER in ids
    assert ModalBlock.JOURNEY_OPTIONS in ids
    then = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.THEN)
    assert "stop" in {o["value"] for o in then["element"]["options"]}
    select = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.TARGET)
    assert select["element"]["initial_option"]["value"] == journey["value"]

    automation = option_for(bot, view, "welcome", "staging|automation|daily-welcome-send")
    view = choose_target(bot, view, automation)
    ids = block_ids(view)
    assert ModalBlock.VERSION not in ids
    assert ModalBlock.JOURNEY_OPTIONS not in ids
    then = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.THEN)
    assert "stop" not in {o["value"] for o in then["element"]["options"]}
    # Every redraw is a views.update of the same modal, never a second modal.
    bot.settle()
    assert len(bot.slack.views(USER)) == 1
    assert len(bot.slack.calls("views.update")) == 2


def test_changing_the_environment_redraws_the_modal(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    journey = option_for(bot, view, "welcome", "staging|journey|welcome-series")
    view = choose_target(bot, view, journey)
    view = choose_environment(bot, view, "prod")
    env = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.ENVIRONMENT)
    assert env["element"]["initial_option"]["value"] == "prod"
    assert ModalContext.parse(view["private_metadata"]).environment == "prod"
    select = next(b for b in view["blocks"] if b["block_id"] == ModalBlock.TARGET)
    assert select["element"].get("initial_option") is None
    assert ModalBlock.VERSION not in block_ids(view)
    # The search now looks in prod (which has no scrip).
    values = {o["value"] for o in suggest(bot, view, "welcome")}
    assert "prod|journey|welcome-series" in values
    assert all(v.startswith("prod|") for v in values)
    assert not any(v.split("|")[1] == "scrip" for v in values)


# -- validation -----------------------------------------------------------------------


def _assert_refused(
    bot: BotUnderTest, view: Mapping[str, Any], answer: dict[str, Any] | None, block: str
) -> str:
    assert answer is not None
    assert answer["response_action"] == "errors", answer
    assert block in answer["errors"], answer["errors"]
    assert bot.slack.view_is_open(str(view["id"]))
    return str(answer["errors"][block])


def test_submission_errors_are_shown_inline_on_their_block(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    message = _assert_refused(bot, view, submit(bot, view, {}), ModalBlock.TARGET)
    assert "target" in message.lower()

    automation = option_for(bot, view, "lead", "staging|automation|hourly-lead-sync")
    for bad in ("0", "abc", "2.5"):
        answer = submit(
            bot, view, merge(target(automation), text(ModalBlock.DAYS, ModalAction.DAYS, bad))
        )
        _assert_refused(bot, view, answer, ModalBlock.DAYS)

    answer = submit(
        bot,
        view,
        merge(
            target(automation),
            text(ModalBlock.DAYS, ModalAction.DAYS, "2"),
            radio(ModalBlock.THEN, ModalAction.THEN, "stop"),
        ),
    )
    assert "journeys" in _assert_refused(bot, view, answer, ModalBlock.THEN)

    past = str(int(time.time()) - 3600)
    answer = submit(
        bot,
        view,
        merge(
            target(automation), {ModalBlock.END: {ModalAction.END: {"selected_date_time": past}}}
        ),
    )
    assert "past" in _assert_refused(bot, view, answer, ModalBlock.END)

    journey = option_for(bot, view, "welcome", "staging|journey|welcome-series")
    view = choose_target(bot, view, journey)
    answer = submit(
        bot, view, merge(target(journey), text(ModalBlock.DAYS, ModalAction.DAYS, "15"))
    )
    assert "14" in _assert_refused(bot, view, answer, ModalBlock.DAYS)
    later = str(int(time.time()) + 20 * 86400)
    answer = submit(
        bot,
        view,
        merge(target(journey), {ModalBlock.END: {ModalAction.END: {"selected_date_time": later}}}),
    )
    assert "14" in _assert_refused(bot, view, answer, ModalBlock.END)

    bot.settle()
    assert bot.cards("C0GENERAL") == []
    assert bot.cards("C0OPS") == []
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6
    assert bot.providers.sfmc.journey(STAGING_MID, "welcome-series").status == "Published"


# -- a valid submission ---------------------------------------------------------------


@pytest.mark.parametrize("channel", ["C0GENERAL", "G0PRIVATE"])
def test_valid_journey_submission_pauses_it_with_the_chosen_options(
    bot: BotUnderTest, channel: str
) -> None:
    view = open_modal(bot, channel=channel)
    journey = option_for(bot, view, "welcome", "staging|journey|welcome-series")
    view = choose_target(bot, view, journey)
    answer = submit(
        bot,
        view,
        merge(
            target(journey),
            text(ModalBlock.DAYS, ModalAction.DAYS, "3"),
            radio(ModalBlock.THEN, ModalAction.THEN, "stop"),
            {
                ModalBlock.JOURNEY_OPTIONS: {
                    ModalAction.JOURNEY_OPTIONS: {
                        "selected_options": [{"value": "extend_waits"}, {"value": "queue_entries"}]
                    }
                }
            },
            text(ModalBlock.REASON, ModalAction.REASON, "holiday <freeze>"),
        ),
    )
    assert answer is None or answer.get("response_action") != "errors", answer
    assert not bot.slack.view_is_open(str(view["id"]))

    card = wait_for(lambda: bot.cards(channel), what="a card in the modal's channel")[0]
    assert bot.cards("C0OPS") == []
    wait_for(
        lambda: any("Verified" in t for t in bot.thread_texts(channel, card["ts"])),
        what="the verified reply",
    )
    latest = wait_for(  # card edits are paced apart from thread replies
        lambda: (m := bot.slack.message(channel, card["ts"])) and "Done" in m["text"] and m,
        what="the card to show Done",
    )
    assert "holiday &lt;freeze&gt;" in str(latest["blocks"])

    paused = bot.providers.sfmc.journey(STAGING_MID, "welcome-series")
    assert paused.status == "Paused"
    assert paused.pause is not None
    assert paused.pause.paused_days == 3
    assert paused.pause.guardrail_action == "stop"
    assert paused.pause.extend_wait_end_dates is True
    assert paused.pause.retain_contact_injection is True


def test_valid_automation_submission_without_an_end(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    automation = option_for(bot, view, "lead", "staging|automation|hourly-lead-sync")
    view = choose_target(bot, view, automation)
    answer = submit(bot, view, target(automation))
    assert answer is None or answer.get("response_action") != "errors", answer
    card = wait_for(lambda: bot.cards("C0GENERAL"), what="a card")[0]
    wait_for(
        lambda: any("Verified" in t for t in bot.thread_texts("C0GENERAL", card["ts"])),
        what="the verified reply",
    )
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4
    assert 'via="modal"' in bot.metrics.render().decode()


def test_a_refused_submission_is_explained_in_the_channel(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    paused = option_for(bot, view, "newsletter", "staging|automation|weekly-newsletter")
    answer = submit(bot, view, target(paused))
    assert answer is None or answer.get("response_action") != "errors", answer
    refusal = wait_for(lambda: bot.slack.ephemerals("C0GENERAL", USER), what="a refusal")[0]
    assert "paused" in refusal["text"].lower()
    assert bot.cards("C0GENERAL") == []


def test_production_from_the_modal_waits_for_approval_on_a_card(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    view = choose_environment(bot, view, "prod")
    prod = option_for(bot, view, "lead", "prod|automation|hourly-lead-sync")
    answer = submit(bot, view, merge(target(prod)))
    assert answer is None or answer.get("response_action") != "errors", answer
    card = wait_for(lambda: bot.cards("C0GENERAL"), what="a pending card")[0]
    assert "Waiting for approval" in card["text"]
    assert "approval.approve" in str(card["blocks"])
    assert bot.slack.ephemerals("C0GENERAL", USER) == []
    assert bot.cards("C0OPS") == []
    assert bot.providers.sfmc.automation(PROD_MID, "hourly-lead-sync").status == 6


def test_a_target_from_another_environment_is_refused_inline(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    staging = option_for(bot, view, "lead", "staging|automation|hourly-lead-sync")
    view = choose_target(bot, view, staging)
    view = choose_environment(bot, view, "prod")
    # Slack keeps the staging choice in the target select across the redraw.
    answer = submit(bot, view, target(staging))
    assert "prod" in _assert_refused(bot, view, answer, ModalBlock.TARGET)


# -- every target matching a pattern (a bulk pause) ---------------------------------------


def pattern(value: str) -> dict[str, Any]:
    return text(ModalBlock.PATTERN, ModalAction.PATTERN, value)


def test_a_pattern_instead_of_a_target_posts_the_bulk_preview_card(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    assert ModalBlock.PATTERN in block_ids(view)
    answer = submit(
        bot, view, merge(pattern("*welcome*"), text(ModalBlock.DAYS, ModalAction.DAYS, "1"))
    )
    assert answer is None or answer.get("response_action") != "errors", answer
    card = wait_for(lambda: bot.cards("C0GENERAL"), what="the preview card")[0]
    shown = str(card["blocks"])
    assert "Preview" in shown
    assert "staging/automation:daily-welcome-send" in shown
    assert BulkAction.CONFIRM in shown  # the same card as the typed command, with Confirm
    assert bot.slack.ephemerals("C0GENERAL", USER) == []
    # nothing changes before the requester confirms
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6


def test_a_bad_or_empty_pattern_is_refused_inline_and_nothing_is_lost(bot: BotUnderTest) -> None:
    view = open_modal(bot)
    answer = submit(bot, view, pattern("welcome"))  # no wildcard
    assert "*" in _assert_refused(bot, view, answer, ModalBlock.PATTERN)
    answer = submit(bot, view, pattern("automation:*"))  # no name part
    assert "name" in _assert_refused(bot, view, answer, ModalBlock.PATTERN)
    answer = submit(bot, view, pattern("prod/automation:bf25-*"))  # another environment
    assert "prod" in _assert_refused(bot, view, answer, ModalBlock.PATTERN)
    answer = submit(bot, view, pattern("no-such-campaign-*"))  # matches nothing
    assert "no target" in _assert_refused(bot, view, answer, ModalBlock.PATTERN).lower()
    lead = option_for(bot, view, "lead", "staging|automation|hourly-lead-sync")
    answer = submit(bot, view, merge(target(lead), pattern("*welcome*")))
    assert "not both" in _assert_refused(bot, view, answer, ModalBlock.PATTERN)
    bot.settle()
    assert bot.cards("C0GENERAL") == []
    assert bot.slack.ephemerals("C0GENERAL", USER) == []
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6


def test_a_pattern_slower_to_resolve_than_the_ack_allows_still_gets_its_card(
    bot: BotUnderTest,
) -> None:
    view = open_modal(bot)
    bot.providers.scrip.knobs.set(latency_ms=2500)  # listing scrip takes longer than 2 s
    answer = submit(bot, view, pattern("*welcome*"))  # acked within 3 s all the same
    assert answer is None or answer.get("response_action") != "errors", answer
    card = wait_for(lambda: bot.cards("C0GENERAL"), what="the preview card")[0]
    assert BulkAction.CONFIRM in str(card["blocks"])
    bot.providers.scrip.knobs.set(latency_ms=0)
