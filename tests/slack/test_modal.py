"""The pause modal: a valid view in every shape, options, and every submission error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Option, OptionGroup
from slack_sdk.models.views import View

from bot.domain.bulk import BulkPattern
from bot.domain.commands import BulkCommand, PauseCommand, TargetRef
from bot.domain.models import (
    PauseOptions,
    TargetKind,
    TargetSummary,
    ThenAction,
    Verb,
    VersionSelector,
)
from bot.slack.ids import ModalAction, ModalBlock, ModalCallback
from bot.slack.metadata import ModalContext, TargetChoice
from bot.slack.modal import option_text, parse_pause_submission, pause_modal, target_options
from tests.slack.test_blocks import EVIL, check_blocks

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTEXT = ModalContext(user_id="U1", channel_id="C1", environment="staging")
J, A, S = TargetKind.JOURNEY, TargetKind.AUTOMATION, TargetKind.SCRIP


def check_view(view: dict[str, Any]) -> dict[str, Any]:
    View(**view).validate_json()
    assert view["type"] == "modal"
    assert view["callback_id"] == ModalCallback.PAUSE
    assert len(view["title"]["text"]) <= 24
    assert view["submit"]["text"] == "Pause"
    assert len(view["private_metadata"]) <= 3000
    check_blocks(view["blocks"], limit=100)
    return view


def block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if "block_id" in b]


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


# -- the view -------------------------------------------------------------------------------


def test_empty_modal() -> None:
    view = check_view(
        pause_modal(context=CONTEXT, environments=["staging", "prod"], default_environment="prod")
    )
    assert view["title"]["text"] == "Pause an automation"
    assert ModalContext.parse(view["private_metadata"]) == CONTEXT
    assert block_ids(view) == [
        ModalBlock.ENVIRONMENT,
        ModalBlock.TARGET,
        ModalBlock.PATTERN,
        ModalBlock.DAYS,
        ModalBlock.END,
        ModalBlock.THEN,
        ModalBlock.REASON,
    ]
    env = block(view, ModalBlock.ENVIRONMENT)
    assert env["dispatch_action"] is True
    assert env["element"]["initial_option"]["value"] == "staging"  # the context's
    target = block(view, ModalBlock.TARGET)
    assert target["dispatch_action"] is True
    assert target["element"]["type"] == "external_select"
    assert target["element"]["min_query_length"] == 0
    assert "initial_option" not in target["element"]
    then_values = [o["value"] for o in block(view, ModalBlock.THEN)["element"]["options"]]
    assert then_values == ["resume", "keep"]
    assert block(view, ModalBlock.END)["element"]["type"] == "datetimepicker"
    assert block(view, ModalBlock.REASON)["element"]["max_length"] == 500


def test_journey_modal_has_journey_inputs_and_keeps_ids() -> None:
    context = ModalContext(user_id="U1", kind=J, key="welcome", name="Welcome Series", version=3)
    view = check_view(
        pause_modal(context=context, environments=["staging"], default_environment="staging")
    )
    assert block_ids(view) == [
        ModalBlock.ENVIRONMENT,
        ModalBlock.TARGET,
        ModalBlock.PATTERN,
        ModalBlock.VERSION,
        ModalBlock.VERSION_NUMBER,
        ModalBlock.DAYS,
        ModalBlock.END,
        ModalBlock.THEN,
        ModalBlock.JOURNEY_OPTIONS,
        ModalBlock.REASON,
    ]
    initial = block(view, ModalBlock.TARGET)["element"]["initial_option"]
    assert initial["value"] == "staging|journey|welcome"
    assert initial["text"]["text"] == "journey · Welcome Series (welcome)"
    assert block(view, ModalBlock.VERSION)["element"]["initial_option"]["value"] == "specific"
    assert block(view, ModalBlock.VERSION_NUMBER)["element"]["initial_value"] == "3"
    then_values = [o["value"] for o in block(view, ModalBlock.THEN)["element"]["options"]]
    assert then_values == ["resume", "stop", "keep"]
    # every input's action_id is the matching ModalAction
    for raw in view["blocks"]:
        if raw["type"] == "input":
            assert raw["element"]["action_id"] == ModalAction[ModalBlock(raw["block_id"]).name]


def test_selected_target_and_kind_drive_the_inputs() -> None:
    selected = TargetSummary(kind=A, key="nightly", name="Nightly Import", id="a1")
    view = check_view(
        pause_modal(
            context=CONTEXT,
            environments=["staging"],
            default_environment="staging",
            selected=selected,
        )
    )
    assert ModalBlock.VERSION not in block_ids(view)
    assert ModalBlock.JOURNEY_OPTIONS not in block_ids(view)
    initial = block(view, ModalBlock.TARGET)["element"]["initial_option"]
    assert initial["value"] == "staging|automation|nightly"
    by_kind = check_view(
        pause_modal(
            context=CONTEXT, environments=["staging"], default_environment="x", selected_kind=J
        )
    )
    assert ModalBlock.VERSION in block_ids(by_kind)
    assert "initial_option" not in block(by_kind, ModalBlock.TARGET)["element"]


def test_modal_survives_hostile_prefill() -> None:
    context = ModalContext(
        user_id="U1", environment="prod", kind=J, key="k" * 255, name=EVIL * 100, version=1
    )
    view = check_view(
        pause_modal(
            context=context,
            environments=[f"env{i}" for i in range(300)],
            default_environment="staging",
        )
    )
    assert len(block(view, ModalBlock.ENVIRONMENT)["element"]["options"]) == 100
    # a key too long for an option value is simply not prefilled
    assert "initial_option" not in block(view, ModalBlock.TARGET)["element"]


# -- options --------------------------------------------------------------------------------


def test_target_options_grouped_by_kind() -> None:
    summaries = [
        TargetSummary(kind=S, key="digest", name="Daily Digest", id="s1"),
        TargetSummary(kind=J, key="welcome-series", name="Welcome Series", id="j1"),
        TargetSummary(kind=A, key="nightly", name="nightly", id="a1"),
    ]
    response = target_options(summaries, environment="prod")
    groups = response["option_groups"]
    assert [g["label"]["text"] for g in groups] == ["Automation Studio", "Journey Builder", "scrip"]
    journey = groups[1]["options"][0]
    assert journey["text"]["text"] == "journey · Welcome Series (welcome-series)"
    assert journey["value"] == "prod|journey|welcome-series"
    assert groups[0]["options"][0]["text"]["text"] == "automation · nightly"
    for group in groups:
        OptionGroup(**group).to_dict()


def test_target_options_limits() -> None:
    summaries = [
        TargetSummary(kind=list(TargetKind)[i % 3], key=f"key-{i}", name=EVIL * 20, id=str(i))
        for i in range(1000)
    ] + [TargetSummary(kind=J, key="k" * 200, name="too long", id="x")]
    response = target_options(summaries, environment="prod")
    options = [o for g in response["option_groups"] for o in g["options"]]
    assert len(options) == 100
    for option in options:
        Option(**option).to_dict()
        assert len(option["text"]["text"]) <= 75
        assert len(option["value"]) <= 150
    assert target_options([], environment="prod") == {"options": []}


def test_option_text() -> None:
    assert option_text(J, "Welcome Series", "welcome-series") == (
        "journey · Welcome Series (welcome-series)"
    )
    assert len(option_text(A, "N" * 500, "k")) == 75


# -- submissions ----------------------------------------------------------------------------


def values(
    *,
    environment: str | None = "staging",
    target: str | None = "staging|journey|welcome",
    version: str | None = None,
    version_number: str | None = None,
    days: str | None = None,
    end: int | None = None,
    then: str | None = "resume",
    journey_options: list[str] | None = None,
    reason: str | None = None,
    pattern: str | None = None,
) -> dict[str, Any]:
    def selected(value: str | None) -> dict[str, Any]:
        return {"selected_option": {"value": value} if value is not None else None}

    out: dict[str, Any] = {
        ModalBlock.ENVIRONMENT: {ModalAction.ENVIRONMENT: selected(environment)},
        ModalBlock.TARGET: {ModalAction.TARGET: selected(target)},
        ModalBlock.DAYS: {ModalAction.DAYS: {"type": "number_input", "value": days}},
        ModalBlock.END: {ModalAction.END: {"selected_date_time": end}},
        ModalBlock.THEN: {ModalAction.THEN: selected(then)},
        ModalBlock.REASON: {ModalAction.REASON: {"value": reason}},
        ModalBlock.PATTERN: {ModalAction.PATTERN: {"value": pattern}},
    }
    if version is not None or version_number is not None:
        out[ModalBlock.VERSION] = {ModalAction.VERSION: selected(version)}
        out[ModalBlock.VERSION_NUMBER] = {ModalAction.VERSION_NUMBER: {"value": version_number}}
    if journey_options is not None:
        out[ModalBlock.JOURNEY_OPTIONS] = {
            ModalAction.JOURNEY_OPTIONS: {
                "selected_options": [{"value": v} for v in journey_options]
            }
        }
    return out


def submit(**kwargs: Any) -> PauseCommand | BulkCommand | dict[str, str]:
    return parse_pause_submission(values(**kwargs), context=CONTEXT, now=NOW)


def ts(delta: timedelta) -> int:
    return int((NOW + delta).timestamp())


def test_valid_journey_submission() -> None:
    command = submit(
        version="specific",
        version_number="3",
        days="5",
        then="stop",
        journey_options=["extend_waits", "queue_entries"],
        reason="  holiday freeze ",
    )
    assert command == PauseCommand(
        target=TargetRef(environment="staging", kind=J, name="welcome"),
        options=PauseOptions(
            duration=timedelta(days=5),
            then=ThenAction.STOP,
            extend_waits=True,
            queue_entries=True,
            reason="holiday freeze",
        ),
        versions=VersionSelector(version=3),
    )


def test_journey_all_versions_until_an_end_time() -> None:
    command = submit(version="all", end=ts(timedelta(days=2)), then="keep", journey_options=[])
    assert command == PauseCommand(
        target=TargetRef(environment="staging", kind=J, name="welcome"),
        options=PauseOptions(until=NOW + timedelta(days=2), then=ThenAction.KEEP),
        versions=VersionSelector(all_versions=True),
    )
    assert isinstance(command, PauseCommand)
    assert command.options.until is not None
    assert command.options.until.tzinfo is UTC


def test_journey_latest_version_and_untimed() -> None:
    command = submit(version="latest", then="keep")
    assert command == PauseCommand(
        target=TargetRef(environment="staging", kind=J, name="welcome"),
        options=PauseOptions(),  # no end: no end action
        versions=VersionSelector(),
    )


def test_automation_submission_ignores_journey_only_fields() -> None:
    command = submit(
        target="staging|automation|nightly",
        version="specific",
        version_number="zzz",
        days="30",
        journey_options=["extend_waits", "queue_entries"],
    )
    assert command == PauseCommand(
        target=TargetRef(environment="staging", kind=A, name="nightly"),
        options=PauseOptions(duration=timedelta(days=30)),
        versions=VersionSelector(),
    )


def test_scrip_may_pause_for_up_to_a_year() -> None:
    command = submit(target="staging|scrip|digest", days="365", then="keep")
    assert isinstance(command, PauseCommand)
    assert command.options.then is ThenAction.KEEP


@pytest.mark.parametrize(
    ("kwargs", "block_id", "message"),
    [
        ({"target": None}, ModalBlock.TARGET, "Choose a target"),
        ({"target": "garbage"}, ModalBlock.TARGET, "could not be read"),
        ({"target": "prod|journey|welcome"}, ModalBlock.TARGET, "is in prod, not staging"),
        ({"environment": None, "target": None}, ModalBlock.TARGET, "Choose a target"),
        ({"days": "0"}, ModalBlock.DAYS, "whole number of days"),
        ({"days": "-2"}, ModalBlock.DAYS, "whole number of days"),
        ({"days": "1.5"}, ModalBlock.DAYS, "whole number of days"),
        ({"days": "abc"}, ModalBlock.DAYS, "whole number of days"),
        ({"days": "15"}, ModalBlock.DAYS, "Journey Builder pauses last at most 14 days"),
        (
            {"target": "staging|scrip|x", "days": "366"},
            ModalBlock.DAYS,
            "at most 365 days",
        ),
        ({"days": "2", "end": ts(timedelta(days=1))}, ModalBlock.END, "not both"),
        ({"end": ts(-timedelta(minutes=1))}, ModalBlock.END, "in the past"),
        ({"end": ts(timedelta(0))}, ModalBlock.END, "in the past"),
        (
            {"end": ts(timedelta(days=14, minutes=1))},
            ModalBlock.END,
            "Journey Builder pauses last at most 14 days",
        ),
        (
            {"target": "staging|automation|x", "end": ts(timedelta(days=366))},
            ModalBlock.END,
            "at most 365 days",
        ),
        ({"end": "soon"}, ModalBlock.END, "Pick an end date"),
        (
            {"target": "staging|automation|x", "days": "2", "then": "stop"},
            ModalBlock.THEN,
            "works only for journeys",
        ),
        ({"then": "stop"}, ModalBlock.THEN, "needs a length"),
        ({"days": "2", "then": "explode"}, ModalBlock.THEN, "Choose what happens"),
        ({"version": "specific"}, ModalBlock.VERSION_NUMBER, "Enter the version number"),
        (
            {"version": "specific", "version_number": "0"},
            ModalBlock.VERSION_NUMBER,
            "whole number, 1 or more",
        ),
        (
            {"version": "specific", "version_number": "2.5"},
            ModalBlock.VERSION_NUMBER,
            "whole number, 1 or more",
        ),
        (
            {"version": "all", "version_number": "2"},
            ModalBlock.VERSION_NUMBER,
            "Clear the version number",
        ),
        ({"reason": "r" * 501}, ModalBlock.REASON, "under 500 characters"),
    ],
)
def test_submission_errors_land_on_their_block(
    kwargs: dict[str, Any], block_id: ModalBlock, message: str
) -> None:
    errors = submit(**kwargs)
    assert isinstance(errors, dict), errors
    assert set(errors) == {block_id}
    assert message in errors[block_id]


def test_environment_missing_everywhere() -> None:
    errors = parse_pause_submission(
        values(environment=None),
        context=ModalContext(user_id="U1"),
        now=NOW,
    )
    assert errors == {ModalBlock.ENVIRONMENT: "Choose an environment."}


def test_errors_are_collected_together() -> None:
    errors = submit(days="0", reason="r" * 600, version="specific")
    assert isinstance(errors, dict)
    assert set(errors) == {ModalBlock.DAYS, ModalBlock.REASON, ModalBlock.VERSION_NUMBER}


def test_environment_falls_back_to_the_context() -> None:
    bare = values()
    del bare[ModalBlock.ENVIRONMENT]
    command = parse_pause_submission(bare, context=CONTEXT, now=NOW)
    assert isinstance(command, PauseCommand)
    assert command.target.environment == "staging"


def test_garbage_values_do_not_raise() -> None:
    assert parse_pause_submission({}, context=CONTEXT, now=NOW) == {
        ModalBlock.TARGET: "Choose a target (or give a pattern below)."
    }
    weird: dict[str, Any] = {ModalBlock.TARGET: "x", ModalBlock.DAYS: {ModalAction.DAYS: 5}}
    assert parse_pause_submission(weird, context=CONTEXT, now=NOW) == {
        ModalBlock.TARGET: "Choose a target (or give a pattern below)."
    }


def test_submission_value_matches_what_the_options_send() -> None:
    (group,) = target_options(
        [TargetSummary(kind=J, key="welcome", name="Welcome", id="j")], environment="staging"
    )["option_groups"]
    value = group["options"][0]["value"]
    assert TargetChoice.parse(value) == TargetChoice(environment="staging", kind=J, key="welcome")
    assert isinstance(submit(target=value), PauseCommand)


# -- a pattern instead of one target: a bulk pause ------------------------------------------


def test_a_pattern_submits_a_bulk_pause_with_the_form_options() -> None:
    command = submit(target=None, pattern=" bf25-* ", days="2", then="keep", reason="recall")
    assert command == BulkCommand(
        action=Verb.PAUSE,
        pattern=BulkPattern(environment="staging", kind=None, glob="bf25-*"),
        options=PauseOptions(duration=timedelta(days=2), then=ThenAction.KEEP, reason="recall"),
    )
    typed = submit(target=None, pattern="staging/journey:bf25-*")
    assert isinstance(typed, BulkCommand)
    assert typed.pattern == BulkPattern(environment="staging", kind=J, glob="bf25-*")
    assert typed.options == PauseOptions()


def test_the_target_is_optional_in_the_view_but_one_of_them_is_needed() -> None:
    view = check_view(
        pause_modal(context=CONTEXT, environments=["staging"], default_environment="staging")
    )
    assert block(view, ModalBlock.TARGET)["optional"] is True
    assert block(view, ModalBlock.PATTERN)["optional"] is True
    errors = submit(target=None)
    assert isinstance(errors, dict)
    assert "pattern" in errors[ModalBlock.TARGET]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"target": None, "pattern": "bf25"}, "*"),
        ({"target": None, "pattern": "automation:*"}, "name"),
        ({"target": None, "pattern": "prod/automation:bf25-*"}, "prod"),
        ({"target": "staging|automation|a1", "pattern": "bf25-*"}, "not both"),
        ({"target": None, "pattern": "automation:bf25-*", "then": "stop", "days": "2"}, "journey"),
        ({"target": None, "pattern": "journey:bf25-*", "days": "15"}, "14"),
    ],
)
def test_a_bad_pattern_lands_on_its_block(kwargs: dict[str, Any], words: str) -> None:
    errors = submit(**kwargs)
    assert isinstance(errors, dict)
    assert words in " ".join(errors.values()), errors
    assert ModalBlock.TARGET not in errors
