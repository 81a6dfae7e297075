"""Bulk requests, the pure part: patterns in the grammar, matching, the preview (skip
reasons from the declared traits, counts, provider calls) and the digest of the frozen set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.bulk import BulkPattern, plan
from bot.domain.commands import BulkCommand, PauseCommand, ResumeBatchCommand
from bot.domain.errors import BadInput
from bot.domain.grammar import format_command, parse_command
from bot.domain.models import (
    NormalState,
    PauseOptions,
    Target,
    TargetKind,
    TargetState,
    ThenAction,
    Verb,
)
from bot.render_bulk import skip_text
from providers.scrip.provider import SCRIP_TRAITS
from providers.sfmc.automations import AUTOMATION_TRAITS
from providers.sfmc.journeys import JOURNEY_TRAITS

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TRAITS = {
    TargetKind.AUTOMATION: AUTOMATION_TRAITS,
    TargetKind.JOURNEY: JOURNEY_TRAITS,
    TargetKind.SCRIP: SCRIP_TRAITS,
}
A, J, S = TargetKind.AUTOMATION, TargetKind.JOURNEY, TargetKind.SCRIP


def _parse(text: str) -> object:
    return parse_command(text, now=NOW)


def _state(kind: TargetKind, key: str, name: str, state: NormalState) -> TargetState:
    return TargetState(
        target=Target(environment="prod", kind=kind, key=key, name=name, id=f"id-{key}"),
        state=state,
        raw_status=state.value,
    )


# -- the grammar --------------------------------------------------------------------------


def test_bulk_patterns_parse_into_bulk_commands() -> None:
    command = _parse("pause prod/automation:black-friday-* for 2d then resume")
    assert command == BulkCommand(
        action=Verb.PAUSE,
        pattern=BulkPattern(environment="prod", kind=A, glob="black-friday-*"),
        options=PauseOptions(duration=timedelta(days=2), then=ThenAction.RESUME),
    )
    every_kind = _parse("resume prod/*:bf25-*")
    assert every_kind == BulkCommand(
        action=Verb.RESUME, pattern=BulkPattern(environment="prod", kind=None, glob="bf25-*")
    )
    assert _parse("stop staging/journey:bf2?-*") == BulkCommand(
        action=Verb.STOP,
        pattern=BulkPattern(environment="staging", kind=J, glob="bf2?-*"),
    )
    assert _parse("pause automation:bf-* --env prod") == BulkCommand(
        action=Verb.PAUSE,
        pattern=BulkPattern(environment="prod", kind=A, glob="bf-*"),
        options=PauseOptions(),
    )
    assert _parse("resume batch 3f2a9c") == ResumeBatchCommand(batch_id="3f2a9c")


@pytest.mark.parametrize(
    "text",
    [
        "pause prod/automation:bf-* for 2d then resume",
        "pause prod/*:bf25-* until 2026-12-01T09:00Z then keep --reason 'wrong offer'",
        "resume prod/scrip:BF25*",
        "stop prod/journey:bf?",
        "resume batch abc123",
    ],
)
def test_bulk_commands_format_back_to_equal_commands(text: str) -> None:
    command = _parse(text)
    assert _parse(format_command(command)) == command  # type: ignore[arg-type]


def test_a_quoted_star_is_a_name_not_a_pattern() -> None:
    command = _parse('pause prod/automation:"bf *"')
    assert isinstance(command, PauseCommand)
    assert command.target.name == "bf *"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("pause prod/automation:*", "has no name part"),
        ("pause prod/*:?*", "has no name part"),
        ("pause prod/widget:bf-*", "unknown kind 'widget'"),
        ("pause bf-*", "give its environment and kind"),
        ("pause automation:bf-*", "names its environment"),
        ("pause prod/automation:bf-* --env staging", "two environments"),
        ("pause prod/journey:bf-* --version 2", "--version does not apply to a bulk pause"),
        ("resume prod/journey:bf-* --all-versions", "--all-versions does not apply"),
        ("pause prod/automation:bf-* --extend-waits", "only for journeys"),
        ("pause prod/journey:bf-* for 20d", "at most 14 days"),
        ("stop prod/*:bf-* now", "unexpected 'now'"),
    ],
)
def test_bad_patterns_get_clear_errors(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        _parse(text)
    assert says in caught.value.message
    assert caught.value.usage


# -- matching -----------------------------------------------------------------------------


def test_a_pattern_matches_names_and_keys_the_way_names_match_elsewhere() -> None:
    pattern = BulkPattern(environment="prod", kind=None, glob="bf25-*")
    assert pattern.matches(A, "bf25-flash-sale", "Flash Sale")  # by key
    assert pattern.matches(S, "0c9d-uuid", "BF25 Flash Sale")  # by name, case and spaces
    assert pattern.matches(J, "promo_x", "bf25_countdown")  # underscores fold like hyphens
    assert not pattern.matches(A, "bf24-flash", "BF24 Flash")
    one_char = BulkPattern(environment="prod", kind=A, glob="bf2?-send")
    assert one_char.matches(A, "bf25-send", "x")
    assert not one_char.matches(A, "bf250-send", "x")
    assert not one_char.matches(J, "bf25-send", "x")  # another kind
    literal = BulkPattern(environment="prod", kind=A, glob="[a]*")
    assert literal.matches(A, "[a]-one", "x")
    assert not literal.matches(A, "a-one", "x")


# -- the preview --------------------------------------------------------------------------


def test_the_preview_says_what_each_target_will_do_and_why_some_are_skipped() -> None:
    states = [
        _state(A, "bf25-send", "BF25 Send", NormalState.ACTIVE),
        _state(A, "bf25-resend", "BF25 Resend", NormalState.PAUSED),
        _state(A, "bf25-import", "BF25 Import", NormalState.WAITING),
        _state(J, "bf25-countdown", "BF25 Countdown", NormalState.ACTIVE),
        _state(S, "uuid-1", "BF25 Points", NormalState.ACTIVE),
        _state(S, "uuid-2", "Other", NormalState.ACTIVE),  # not matched
    ]
    pattern = BulkPattern(environment="prod", glob="bf25-*")
    found = plan(Verb.PAUSE, pattern, PauseOptions(), states, TRAITS, NOW)
    by_key = {t.key: t for t in found.targets}
    assert set(by_key) == {"bf25-send", "bf25-resend", "bf25-import", "bf25-countdown", "uuid-1"}
    assert [t.key for t in found.acting] == ["bf25-send", "bf25-countdown", "uuid-1"]
    assert skip_text(by_key["bf25-resend"].skip_reason) == "already paused"
    assert skip_text(by_key["bf25-import"].skip_reason) == "cannot pause from waiting"
    assert by_key["bf25-send"].described == "active"
    assert found.counts[A].act == 1
    assert found.counts[A].skip == 2
    assert found.counts[J].act == 1
    assert found.counts[S].act == 1
    assert found.provider_calls == {A: 3, J: 3, S: 3}


def test_skip_reasons_come_from_the_declared_traits() -> None:
    states = [
        _state(A, "bf-auto", "BF Auto", NormalState.ACTIVE),
        _state(J, "bf-journey", "BF Journey", NormalState.ACTIVE),
        _state(S, "bf-scrip", "BF Scrip", NormalState.PAUSED),
    ]
    pattern = BulkPattern(environment="prod", glob="bf-*")
    stop_at_end = PauseOptions(duration=timedelta(days=2), then=ThenAction.STOP)
    found = plan(Verb.PAUSE, pattern, stop_at_end, states, TRAITS, NOW)
    reasons = {t.key: skip_text(t.skip_reason) or None for t in found.targets}
    assert reasons["bf-auto"] == "Automation Studio cannot end a pause with a stop ('then stop')"
    assert reasons["bf-journey"] is None
    too_long = PauseOptions(duration=timedelta(days=20))
    found = plan(Verb.PAUSE, pattern, too_long, states, TRAITS, NOW)
    assert {t.key: skip_text(t.skip_reason) or None for t in found.targets}["bf-journey"] == (
        "Journey Builder pauses a journey for at most 14d"
    )
    resumed = plan(Verb.RESUME, pattern, None, states, TRAITS, NOW)
    assert {t.key: skip_text(t.skip_reason) or None for t in resumed.targets} == {
        "bf-auto": "not paused (active)",
        "bf-journey": "not paused (active)",
        "bf-scrip": None,
    }


def test_the_digest_binds_the_frozen_set() -> None:
    pattern = BulkPattern(environment="prod", glob="bf-*")
    states = [
        _state(A, "bf-1", "BF 1", NormalState.ACTIVE),
        _state(A, "bf-2", "BF 2", NormalState.ACTIVE),
    ]
    first = plan(Verb.PAUSE, pattern, PauseOptions(), states, TRAITS, NOW)
    same = plan(Verb.PAUSE, pattern, PauseOptions(), list(reversed(states)), TRAITS, NOW)
    assert first.digest == same.digest  # order does not matter
    one_more = [*states, _state(A, "bf-3", "BF 3", NormalState.ACTIVE)]
    assert plan(Verb.PAUSE, pattern, PauseOptions(), one_more, TRAITS, NOW).digest != first.digest
    now_paused = [states[0], _state(A, "bf-2", "BF 2", NormalState.PAUSED)]
    assert plan(Verb.PAUSE, pattern, PauseOptions(), now_paused, TRAITS, NOW).digest != (
        first.digest
    )  # a target that is skipped now: another set
    longer = PauseOptions(duration=timedelta(days=3))
    assert plan(Verb.PAUSE, pattern, longer, states, TRAITS, NOW).digest != first.digest
    assert plan(Verb.STOP, pattern, None, states, TRAITS, NOW).digest != first.digest
