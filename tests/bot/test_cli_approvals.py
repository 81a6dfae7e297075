"""``automation-bot exec`` on production (a request awaiting approval) and ``audit export``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.domain.requests import OperationRequest, RequestStatus
from bot.slack.ids import ApprovalAction
from bot.store import Store, upgrade
from sandbox.server import ServerThread
from sandbox.sfmc import PROD_MID
from sandbox.slack import SlackEmulator, SlackSettings
from tests.conftest import Sandbox

runner = CliRunner()
PAUSE_PROD = "pause prod/daily-welcome-send for 1d"
_REQUEST_ID = re.compile(r"Request ([0-9a-f]{32}) recorded")


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(settings=SlackSettings(rate_limits_enabled=False))
    with ServerThread(emulator.app) as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", emulator.bot_token)
        monkeypatch.setenv("SLACK_API_URL", server.url + "/api/")
        monkeypatch.delenv("AUTOMATION_BOT_CONFIG", raising=False)
        yield emulator


def _write_config(sandbox: Sandbox, path: Path, database_url: str, **prod: Any) -> Path:
    mapping = dict(sandbox.mapping, database_url=database_url)
    if prod:
        environments = dict(mapping["environments"])
        environments["prod"] = {**environments["prod"], **prod}
        mapping["environments"] = environments
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def config_file(sandbox: Sandbox, tmp_path: Path, db_url: str) -> Path:
    return _write_config(sandbox, tmp_path / "bot.yaml", db_url)


def _exec(config: Path, text: str, *extra: str) -> Any:
    return runner.invoke(app, ["exec", text, "--config", str(config), *extra])


def _mutations(sandbox: Sandbox) -> list[Any]:
    return [
        c
        for c in sandbox.sfmc.calls
        if (c.soap_action and ("Schedule" in c.soap_action or "Perform" in c.soap_action))
        or "/pause/" in c.path
        or "/resume/" in c.path
        or "/stop/" in c.path
    ]


def _request(url: str, request_id: str) -> OperationRequest | None:
    async def get() -> OperationRequest | None:
        store = Store.from_url(url)
        try:
            return await store.get_request(request_id)
        finally:
            await store.close()

    return asyncio.run(get())


def _action_ids(message: dict[str, Any]) -> set[str]:
    return {
        el.get("action_id", "")
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for el in block.get("elements", [])
    }


def test_prod_exec_records_request_and_posts_one_card(
    sandbox: Sandbox, slack: SlackEmulator, config_file: Path, db_url: str
) -> None:
    result = _exec(config_file, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 0, (result.stdout, result.stderr)

    match = _REQUEST_ID.search(result.stdout)
    assert match, result.stdout
    request_id = match.group(1)
    assert "awaiting 1 approval(s)" in result.stdout
    assert "U0ADMIN" in result.stdout
    assert "C0APPROVALS" in result.stdout
    assert "slack.com/archives/C0APPROVALS/p" in result.stdout  # the card's permalink
    assert "Nothing was changed yet" in result.stdout

    cards = slack.messages("C0APPROVALS")
    assert len(cards) == 1
    assert {ApprovalAction.APPROVE.value, ApprovalAction.DENY.value} <= _action_ids(cards[0])
    assert len(slack.calls("chat.getPermalink")) == 1

    assert _mutations(sandbox) == []
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6

    request = _request(db_url, request_id)
    assert request is not None
    assert request.status is RequestStatus.AWAITING_APPROVAL
    assert request.requested_by == "U0ALICE"
    assert request.via.value == "cli"
    assert request.channel == "C0APPROVALS"
    assert request.card_ts == cards[0]["ts"]


def test_prod_exec_without_user_exits_2(
    sandbox: Sandbox, slack: SlackEmulator, config_file: Path
) -> None:
    result = _exec(config_file, PAUSE_PROD)
    assert result.exit_code == 2
    assert "--user" in result.stderr
    assert slack.calls("chat.postMessage") == []
    assert [c for c in sandbox.sfmc.calls if c.mid == PROD_MID] == []


def test_prod_exec_without_slack_token_exits_2(
    sandbox: Sandbox, slack: SlackEmulator, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    result = _exec(config_file, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert slack.calls() == []
    assert [c for c in sandbox.sfmc.calls if c.mid == PROD_MID] == []


def test_prod_exec_with_refused_token_exits_2(
    slack: SlackEmulator, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-this-one")
    result = _exec(config_file, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert slack.calls("chat.postMessage") == []


def test_prod_exec_unmigrated_database_exits_2(
    sandbox: Sandbox, slack: SlackEmulator, tmp_path: Path
) -> None:
    config = _write_config(sandbox, tmp_path / "bot.yaml", f"sqlite:///{tmp_path / 'new.db'}")
    result = _exec(config, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 2
    assert "automation-bot db upgrade" in result.stderr
    assert slack.calls("chat.postMessage") == []


def test_prod_exec_without_approval_channel_exits_2(
    sandbox: Sandbox, slack: SlackEmulator, tmp_path: Path, db_url: str
) -> None:
    config = _write_config(
        sandbox,
        tmp_path / "bot.yaml",
        db_url,
        approval={"approvers": ["U0ADMIN", "U0BOB"], "required": 1},
    )
    result = _exec(config, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 2
    assert "approval.channel" in result.stderr
    assert slack.calls("chat.postMessage") == []


def test_non_production_exec_needs_no_slack_or_database(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    config = _write_config(sandbox, tmp_path / "bot.yaml", f"sqlite:///{tmp_path / 'none.db'}")
    result = _exec(config, "pause hourly-lead-sync", "--user", "U0ALICE")
    assert result.exit_code == 0, result.stderr
    assert "(verified)" in result.stdout
    assert not (tmp_path / "none.db").exists()


def _export(config: Path, *extra: str) -> Any:
    return runner.invoke(app, ["audit", "export", "--config", str(config), *extra])


def test_audit_export_prints_json_lines_and_honours_since(
    slack: SlackEmulator, config_file: Path
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert _exec(config_file, PAUSE_PROD, "--user", "U0ALICE").exit_code == 0

    result = _export(config_file)
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    requested = [e for e in events if e["action"] == "requested"]
    assert len(requested) == 1
    event = requested[0]
    assert set(event) == {
        "id",
        "at",
        "actor",
        "action",
        "via",
        "request_id",
        "environment",
        "kind",
        "target_key",
        "detail",
    }
    assert event["actor"] == "U0ALICE"
    assert event["via"] == "cli"
    assert (event["environment"], event["kind"], event["target_key"]) == (
        "prod",
        "automation",
        "daily-welcome-send",
    )
    assert datetime.fromisoformat(event["at"]).utcoffset() == timedelta(0)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    since = _export(config_file, "--since", before.isoformat())
    assert since.exit_code == 0
    assert [json.loads(line)["id"] for line in since.stdout.splitlines()] == [
        e["id"] for e in events
    ]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    none = _export(config_file, "--since", later)
    assert none.exit_code == 0
    assert none.stdout == ""


def test_audit_export_bad_since_exits_2(config_file: Path) -> None:
    result = _export(config_file, "--since", "last tuesday")
    assert result.exit_code == 2
    assert "--since" in result.stderr
    assert "ISO-8601" in result.stderr


def test_audit_export_unmigrated_database_exits_2(sandbox: Sandbox, tmp_path: Path) -> None:
    config = _write_config(sandbox, tmp_path / "bot.yaml", f"sqlite:///{tmp_path / 'new.db'}")
    result = _export(config)
    assert result.exit_code == 2
    assert "automation-bot db upgrade" in result.stderr


def test_prod_exec_card_not_posted_exits_1_and_says_so(
    sandbox: Sandbox, slack: SlackEmulator, tmp_path: Path, db_url: str
) -> None:
    config = _write_config(
        sandbox,
        tmp_path / "bot.yaml",
        db_url,
        approval={"approvers": ["U0ADMIN", "U0BOB"], "required": 1, "channel": "no-such-channel"},
    )
    result = _exec(config, PAUSE_PROD, "--user", "U0ALICE")
    assert result.exit_code == 1
    assert "could not be posted" in result.stderr
    assert _REQUEST_ID.search(result.stderr)
    assert _mutations(sandbox) == []
