"""The one use-case entry point (``bot.service.commands``): each command's typed outcome,
and refusals that carry their verb and target, worded in one place per front end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import render
from bot.domain.errors import AmbiguousTarget, BadInput, NotFound
from bot.domain.grammar import parse_command
from bot.domain.models import Verb
from bot.domain.requests import RequestStatus, Via
from bot.runtime import Runtime, build_runtime
from bot.service.commands import (
    FormNeeded,
    HelpOutcome,
    HistoryOutcome,
    ListOutcome,
    Outcome,
    PickTarget,
    StatusOutcome,
    SubmittedRequest,
)
from bot.service.notify import NullNotifier
from bot.slack.render import error_message, outcome_message
from bot.store import Store, upgrade
from sandbox.sfmc import STAGING_MID
from tests.conftest import Sandbox


@pytest.fixture
async def runtime(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    rt = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=NullNotifier(),
    )
    try:
        yield rt
    finally:
        await rt.aclose()


async def _handle(runtime: Runtime, text: str, via: Via = Via.CONSOLE) -> Outcome:
    command = parse_command(text, now=datetime.now(UTC))
    return await runtime.commands.handle(command, actor="U0ALICE", via=via, channel="C0OPS")


async def test_each_command_gets_its_typed_outcome(runtime: Runtime) -> None:
    status = await _handle(runtime, "status journey:welcome-series")
    assert isinstance(status, StatusOutcome)
    assert status.state.target.key == "welcome-series"

    help_ = await _handle(runtime, "help pause")
    assert help_ == HelpOutcome(topic=Verb.PAUSE)
    assert isinstance(await _handle(runtime, "pause"), FormNeeded)

    submitted = await _handle(runtime, "pause automation:hourly-lead-sync for 1h", Via.CLI)
    assert isinstance(submitted, SubmittedRequest)
    assert submitted.request.status is RequestStatus.SUCCEEDED
    assert submitted.request.via is Via.CLI
    assert [e.action for e in submitted.events] == ["requested", "executing", "verified"]
    assert submitted.card is None  # NullNotifier: posted nowhere

    listed = await _handle(runtime, "list paused")
    assert isinstance(listed, ListOutcome)
    labels = {s.target.label() for s in listed.states}
    assert {"staging/automation:hourly-lead-sync", "prod/automation:weekly-newsletter"} <= labels
    watched = listed.watched[("staging", submitted.request.spec.kind, "hourly-lead-sync")]
    assert watched.paused_by == "U0ALICE"

    history = await _handle(runtime, "history hourly-lead-sync")
    assert isinstance(history, HistoryOutcome)
    assert history.label == "staging/automation:hourly-lead-sync"
    assert [e.via for e in history.events] == [Via.CLI] * 3


async def test_a_name_matching_several_targets_is_a_pick_not_a_request(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    sandbox.sfmc.add_automation(STAGING_MID, key="dupe-a", name="Twin", status=6)
    sandbox.sfmc.add_automation(STAGING_MID, key="dupe-b", name="Twin", status=6)
    outcome = await _handle(runtime, "pause Twin for 1d")
    assert isinstance(outcome, PickTarget)
    assert sorted(m.key for m in outcome.matches) == ["dupe-a", "dupe-b"]
    assert await runtime.store.audit_since(None) == []
    # Slack offers a picker; the console and exec cannot, so they say which to pick.
    picker = outcome_message(outcome)
    assert picker is not None
    assert "Several targets match" in picker.text
    with pytest.raises(AmbiguousTarget) as refused:
        render.outcome_text(outcome)
    assert "Pick one: staging/automation:dupe-a, staging/automation:dupe-b" in (
        render.error_text(refused.value)
    )


async def test_a_refusal_carries_its_verb_and_target(runtime: Runtime) -> None:
    with pytest.raises(NotFound) as refused:
        await _handle(runtime, "pause staging/hourly-lead-sinc for 1d")
    error = refused.value
    assert (error.verb, error.target) == ("pause", "staging/hourly-lead-sinc")
    assert await runtime.store.audit_since(None) == []
    # One wording per front end, from the error alone.
    line = render.error_text(error)
    assert line.startswith("error: ")
    assert 'Did you mean: staging/automation:"Hourly Lead Sync"?' in line
    assert 'Did you mean: staging/automation:"Hourly Lead Sync"?' in error_message(error).text


def test_bad_input_keeps_its_usage_apart_in_slack_and_plain_in_the_console() -> None:
    error = BadInput("Say how long.", usage="/automation pause <target> [for <N>d|<N>h]")
    slack = error_message(error).to_dict()
    assert "Usage" not in slack["blocks"][0]["text"]["text"]
    assert "Usage" in str(slack["blocks"][1])
    assert render.error_text(error) == (
        "error: Say how long.\nUsage: /automation pause <target> [for <N>d|<N>h]"
    )
    assert render.error_text(error, plain=True) == (
        "error: Say how long.\nUsage: pause <target> [for <N>d|<N>h]"
    )


def test_an_unexpected_error_gets_an_error_id_in_slack() -> None:
    message = error_message(RuntimeError("boom"))
    assert "error id" in message.text
    assert "boom" not in message.text


def test_time_left_of_a_watched_pause() -> None:
    now = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert render.time_left(now + timedelta(days=2, hours=3), now) == "2d3h left"
    assert render.time_left(now + timedelta(seconds=30), now) == "due now"
    assert render.time_left(now - timedelta(hours=1), now) == "due now"
