"""What reaches ``/slack/events`` from outside: malformed, unsigned, from another workspace.

Every request is sent over real HTTP to the bot's endpoint. Malformed or unsigned ones get
a 4xx (never a 500) well within Slack's 3 seconds and one short log line, with no traceback
and nothing the sender wrote echoed at length; requests from a workspace other than the
installed one (``auth.test`` of the bot token) change nothing.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from structlog.testing import capture_logs

from bot.domain.requests import RequestStatus
from bot.slack.ids import ApprovalAction, ModalBlock
from bot.slack.inbound import OTHER_WORKSPACE
from sandbox.slack import SlackDriver
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import (
    APPROVE,
    CHANNEL,
    DENY,
    ask,
    automation_status,
    changes,
    click,
    request_of,
    wait_status,
)
from tests.scenarios.test_modal import open_modal

#: Slack gives up on an answer after 3 s; a malformed request must be answered well before.
ACK_LIMIT_S = 3.0
#: No log line may be longer than this (an attacker must not be able to fill the log).
LOG_LINE_MAX = 600
FORM = "application/x-www-form-urlencoded"


# -- the generator ---------------------------------------------------------------------------


def _slash_fields(driver: SlackDriver) -> dict[str, str]:
    return {
        "token": "x",
        "team_id": driver.team_id,
        "channel_id": "C0OPS",
        "user_id": "U0ALICE",
        "command": "/automation",
        "text": "help",  # answered in the ack: a well-formed variant needs no response_url
        "response_url": driver.emulator_url + "/response/none",
        "trigger_id": "1.2.3",
    }


def _interaction(driver: SlackDriver, kind: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": kind,
        "team": {"id": driver.team_id},
        "user": {"id": "U0BOB", "team_id": driver.team_id},
        "trigger_id": "1.2.3",
    }
    if kind == "block_actions":
        base["actions"] = [{"action_id": ApprovalAction.APPROVE, "value": "{}"}]
        base["channel"] = {"id": CHANNEL}
    elif kind == "block_suggestion":
        base.update(action_id="pause_modal.target.select", value="wel")
    else:
        base["view"] = {
            "id": "V0X",
            "type": "modal",
            "callback_id": "pause_modal",
            "private_metadata": "{}",
        }
    return base


def _event(driver: SlackDriver, kind: str) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": kind, "user": "U0BOB"}
    if kind.startswith("reaction"):
        inner.update(reaction=APPROVE, item={"type": "message", "channel": CHANNEL, "ts": "1.2"})
    return {"type": "event_callback", "team_id": driver.team_id, "event_id": "Ev1", "event": inner}


_JUNK: list[Any] = [
    None,
    123,
    -1.5,
    True,
    "",
    [],
    {},
    [1, 2],
    {"id": 5},
    "x" * 20_000,
    "\u202e\u0000<script>",
    {"nested": {"deeper": ["x" * 5000]}},
]


def _mutate(rng: random.Random, value: dict[str, Any]) -> dict[str, Any]:
    """Drop, retype or replace a (possibly nested) field of ``value``."""
    mutated: dict[str, Any] = json.loads(json.dumps(value))
    node: Any = mutated
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return mutated
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, (dict, list)) and child and rng.random() < 0.5:
            node = child
            continue
        if isinstance(node, dict) and rng.random() < 0.4:
            del node[key]
        else:
            node[key] = rng.choice(_JUNK)
        return mutated


def malformed_bodies(driver: SlackDriver, count: int, seed: int) -> Iterator[tuple[bytes, str]]:
    """``count`` malformed bodies (and their content type), the same for a given seed."""
    rng = random.Random(seed)
    fixed: list[tuple[bytes, str]] = [
        (b"", FORM),
        (b"payload=123", FORM),
        (b"payload=%7B%22type%22%3A%22block_ac", FORM),
        (b"payload=null", FORM),
        (b'payload=["block_actions"]', FORM),
        (b"payload=%FF%FE", FORM),
        (b"\xff\xfe\xfdgarbage", FORM),
        (b"\xc3\x28{", "application/json"),
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b"1e999999", "application/json"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json"),
        (b"a=1&a=2&command=/automation", FORM),
        (b"%%%===&&&", FORM),
        (b"token=x&command=/automation&text=help", FORM),  # no user, team, trigger_id
        (urlencode({**_slash_fields(driver), "user_id": ""}).encode(), FORM),
        (json.dumps({"type": "url_verification"}).encode(), "application/json"),
        (
            json.dumps({"type": "shortcut", "team": {"id": "T0SANDBOX"}}).encode(),
            "application/json",
        ),
        (b"payload=" + quote(json.dumps({"type": "block_actions"})).encode(), FORM),
    ]
    yield from fixed
    for _ in range(count - len(fixed)):
        shape = rng.randrange(3)
        if shape == 0:
            fields = _mutate(rng, _slash_fields(driver))
            body = urlencode(
                {k: json.dumps(v) if not isinstance(v, str) else v for k, v in fields.items()}
            )
            yield body.encode(), FORM
        elif shape == 1:
            kind = rng.choice(["block_actions", "block_suggestion", "view_submission"])
            payload = _mutate(rng, _interaction(driver, kind))
            yield b"payload=" + quote(json.dumps(payload)).encode(), FORM
        else:
            kind = rng.choice(["reaction_added", "reaction_removed", "app_home_opened"])
            yield json.dumps(_mutate(rng, _event(driver, kind))).encode(), "application/json"


def _log_problems(
    logs: list[MutableMapping[str, Any]], records: list[logging.LogRecord]
) -> list[str]:
    problems = []
    for entry in logs:
        line = " ".join(f"{k}={v}" for k, v in entry.items())
        if "exc_info" in entry or "exception" in entry or "Traceback" in line:
            problems.append(f"traceback in {line[:200]}")
        if len(line) > LOG_LINE_MAX:
            problems.append(f"{len(line)}-character log line: {line[:200]}")
    for record in records:
        line = record.getMessage()
        if record.exc_info or "Traceback" in line:
            problems.append(f"traceback from {record.name}: {line[:200]}")
        if len(line) > LOG_LINE_MAX:
            problems.append(f"{len(line)}-character log line from {record.name}")
    return problems


# -- malformed and unsigned requests ---------------------------------------------------------


def test_malformed_signed_and_unsigned_requests_get_a_quick_4xx_and_one_short_log_line(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    problems: list[str] = []
    sent = refused = 0
    with capture_logs() as logs:

        def send(body: bytes, content_type: str, **options: Any) -> int:
            nonlocal sent, refused
            mark = len(logs)
            delivery = bot.driver.raw(body, content_type=content_type, **options)
            sent += 1
            lines = [e for e in logs[mark:] if e.get("event") == "slack_request_refused"]
            status = delivery.status_code
            if status >= 500:
                problems.append(f"{status} for {body[:80]!r}")
            if delivery.elapsed_s >= ACK_LIMIT_S:
                problems.append(f"{delivery.elapsed_s:.1f}s for {body[:80]!r}")
            if status in (400, 401, 403, 413):
                refused += 1
                if len(lines) != 1:
                    problems.append(f"{len(lines)} refusal lines for {body[:80]!r}")
            return status

        for body, content_type in malformed_bodies(bot.driver, count=300, seed=2026):
            send(body, content_type)
            assert send(body, content_type, sign_request=False) == 401, body[:80]
        # a bad signature, a stale one and a malformed timestamp are refused the same way
        body = b"payload=123"
        for headers in (
            {"X-Slack-Signature": "v0=" + "0" * 64},
            {"X-Slack-Request-Timestamp": "abc"},
            {"X-Slack-Request-Timestamp": "9" * 40},
        ):
            assert send(body, FORM, headers=headers) == 401
        assert send(body, FORM, timestamp_offset=-301) == 401
    assert sent >= 600
    assert refused > sent * 0.8  # a few generated bodies are well-formed: they are served
    assert not problems, problems[:10]
    assert not _log_problems(logs, caplog.records), _log_problems(logs, caplog.records)[:10]
    assert bot.cards() == []
    assert changes(bot) == []


def test_a_slash_command_without_user_id_is_refused_at_once(bot: BotUnderTest) -> None:
    fields = _slash_fields(bot.driver)
    del fields["user_id"]
    with capture_logs() as logs:
        delivery = bot.driver.raw(urlencode(fields).encode(), content_type=FORM)
    assert delivery.status_code == 400
    assert delivery.elapsed_s < 1.0
    assert [e["reason"] for e in logs if e.get("event") == "slack_request_refused"] == [
        "malformed request: user_id: Field required"
    ]


def test_slacks_unsigned_ssl_check_is_answered_and_does_nothing(bot: BotUnderTest) -> None:
    delivery = bot.driver.raw(b"ssl_check=1&token=x", sign_request=False, content_type=FORM)
    assert delivery.status_code == 200
    assert delivery.text == ""
    # anything more than the check itself still needs a signature
    extra = bot.driver.raw(b"ssl_check=1&command=/automation", sign_request=False)
    assert extra.status_code == 401


def test_a_slash_command_that_mentions_payload_is_still_a_command(bot: BotUnderTest) -> None:
    delivery = bot.driver.slash_command("status payload-sync")
    assert delivery.status_code == 200
    wait_for(bot.reply_texts, what="an answer to the command")


def test_a_modal_submission_with_tampered_private_metadata_gets_a_field_error(
    bot: BotUnderTest,
) -> None:
    view = open_modal(bot)
    for metadata in ("not json", "{" * 2000, json.dumps({"user_id": 5})):
        delivery = bot.driver.view_submission(
            view, {}, user="U0ALICE", view_overrides={"private_metadata": metadata}
        )
        assert delivery.status_code == 200, delivery.text
        data = delivery.data or {}
        assert data.get("response_action") == "errors"
        assert "could not be read" in data["errors"][ModalBlock.TARGET]
    assert bot.cards() == []
    assert changes(bot) == []


# -- another workspace -----------------------------------------------------------------------


def test_approve_click_and_reaction_from_another_workspace_change_nothing(
    bot: BotUnderTest,
) -> None:
    ts = ask(bot)
    for driver in (
        bot.driver.as_team("T0INTRUDER"),
        bot.driver.as_team("T0SANDBOX", enterprise_id="E0INTRUDER"),
    ):
        clicked = driver.block_action(
            action_id=ApprovalAction.APPROVE, user="U0BOB", channel=CHANNEL, message_ts=ts
        )
        assert clicked.status_code == 403
        assert "installed in another workspace" in clicked.text
        reacted = driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
        assert reacted.status_code == 403
    # the installed workspace's deny is the one that counts, and only it
    bot.driver.reaction_added("U0BOB", DENY, CHANNEL, ts)
    wait_status(bot, ts, RequestStatus.DENIED)
    assert changes(bot) == []
    assert automation_status(bot) != 4
    assert request_of(bot, ts).status is RequestStatus.DENIED


def test_a_pending_request_stays_pending_after_a_foreign_approve(bot: BotUnderTest) -> None:
    ts = ask(bot)
    foreign = bot.driver.as_team("T0INTRUDER")
    assert (
        foreign.block_action(
            action_id=ApprovalAction.APPROVE, user="U0BOB", channel=CHANNEL, message_ts=ts
        ).status_code
        == 403
    )
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    click(bot, ts, ApprovalAction.APPROVE, "U0BOB")  # the real one still works
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    assert len(changes(bot)) == 1


def test_a_slash_command_from_another_workspace_is_answered_and_does_nothing(
    bot: BotUnderTest,
) -> None:
    started = time.perf_counter()
    delivery = bot.driver.as_team("T0INTRUDER").slash_command(
        "pause prod/daily-welcome-send for 1d"
    )
    assert time.perf_counter() - started < ACK_LIMIT_S
    assert delivery.status_code == 200
    assert delivery.data == {"response_type": "ephemeral", "text": OTHER_WORKSPACE}
    home = bot.driver.as_team("T0INTRUDER").app_home_opened("U0BOB")
    assert home.status_code == 403
    # the installed workspace is still served
    bot.driver.slash_command("status journey:welcome-series")
    wait_for(bot.reply_texts, what="the status answer")
    assert bot.cards() == []
    assert changes(bot) == []
