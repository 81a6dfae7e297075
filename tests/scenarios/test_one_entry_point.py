"""One use-case entry point: Slack (signed requests over real HTTP), the console loop and
``automation-bot exec`` (a real subprocess) give the same command the same records and the
same outcome; a timed pause made by ``exec`` is ended on time by a serving bot."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.console import ConsoleNotifier, run_console
from bot.domain.jobs import JobKind, job_key
from bot.domain.requests import RequestStatus, Via
from bot.runtime import build_runtime
from bot.store import Store, upgrade
from sandbox.clock import Clock
from sandbox.sfmc import STAGING_MID
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for

PAUSE = "pause automation:daily-welcome-send for 1h"
USER = "U0ALICE"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Records:
    """What one change left in the bot's database, without ids and times."""

    request: tuple[Any, ...]
    audit: list[tuple[str, str, Via]]
    pause: tuple[Any, ...]
    timer_due_at_pause_end: bool
    via: Via


def _records(url: str) -> Records:
    async def read() -> Records:
        store = Store.from_url(url)
        try:
            events = await store.audit_since(None)
            request_ids = {e.request_id for e in events if e.request_id}
            assert len(request_ids) == 1, events
            (request_id,) = request_ids
            request = await store.get_request(request_id)
            pause = await store.pause_for_request(request_id)
            assert request is not None
            assert pause is not None
            assert request.pause_ends_at is not None
            job = await store.job(job_key(JobKind.PAUSE_END, pause.id))
            spec = request.spec
            return Records(
                request=(
                    spec.verb,
                    spec.environment,
                    spec.kind,
                    spec.key,
                    request.status,
                    request.requested_by,
                ),
                audit=[(e.action, e.actor, e.via) for e in events],
                pause=(
                    pause.active,
                    pause.then,
                    pause.paused_by,
                    pause.ends_at == request.pause_ends_at,
                ),
                timer_due_at_pause_end=job is not None and job.due_at == pause.ends_at,
                via=request.via,
            )
        finally:
            await store.close()

    return asyncio.run(read())


def _exec(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``automation-bot exec`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTOMATION_BOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "exec", *args, "--config", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config_file(sandbox: Sandbox, url: str, path: Path) -> Path:
    path.write_text(yaml.safe_dump(dict(sandbox.mapping, database_url=url)), encoding="utf-8")
    return path


def _by_slack(make_bot: BotFactory) -> tuple[Records, str]:
    bot = make_bot()
    bot.driver.slash_command(PAUSE, user=USER)
    wait_for(lambda: _pause_planned(bot), what="the pause and its end to be recorded")
    bot.driver.slash_command("list paused", user=USER)
    listed = wait_for(
        lambda: [str(p.get("blocks")) for p in bot.replies() if "Paused targets" in str(p)],
        what="the list",
    )[0]
    return _records(bot.config.database_url), listed


def _pause_planned(bot: BotUnderTest) -> bool:
    """The request is settled and its pause's end is planned (the card says Done then)."""

    async def read() -> bool:
        store = Store.from_url(bot.config.database_url)
        try:
            ids = [e.request_id for e in await store.audit_since(None) if e.request_id]
            if not ids:
                return False
            request = await store.get_request(ids[0])
            pause = await store.pause_for_request(ids[0])
            if request is None or request.status is not RequestStatus.SUCCEEDED or pause is None:
                return False
            return await store.job(job_key(JobKind.PAUSE_END, pause.id)) is not None
        finally:
            await store.close()

    return asyncio.run(read())


def _by_console(tmp_path: Path) -> tuple[Records, str]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    upgrade(url)
    sandbox = Sandbox()
    out: list[str] = []
    lines = iter([PAUSE, "list paused"])

    async def read(_: str) -> str | None:
        return next(lines, None)

    async def run() -> None:
        runtime = build_runtime(
            sandbox.config.model_copy(update={"database_url": url}),
            store=Store.from_url(url),
            notifier=ConsoleNotifier(out.append),
        )
        try:
            await run_console(runtime, read=read, write=out.append, user=USER)
        finally:
            await runtime.aclose()

    try:
        asyncio.run(run())
        return _records(url), out[-1]
    finally:
        sandbox.stop()


def _by_exec(tmp_path: Path) -> tuple[Records, str]:
    url = f"sqlite:///{tmp_path / 'exec.db'}"
    upgrade(url)
    sandbox = Sandbox()
    try:
        config = _config_file(sandbox, url, tmp_path / "exec.yaml")
        paused = _exec(config, PAUSE, "--user", USER)
        assert paused.returncode == 0, (paused.stdout, paused.stderr)
        listed = _exec(config, "list paused")
        assert listed.returncode == 0, listed.stderr
        return _records(url), listed.stdout
    finally:
        sandbox.stop()


def test_slack_console_and_exec_record_the_same_change_and_list_it_alike(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    slack, slack_list = _by_slack(make_bot)
    console, console_list = _by_console(tmp_path)
    cli, cli_list = _by_exec(tmp_path)

    assert (slack.via, console.via, cli.via) == (Via.COMMAND, Via.CONSOLE, Via.CLI)
    for front_end in (slack, console, cli):
        assert front_end.request == (
            "pause",
            "staging",
            "automation",
            "daily-welcome-send",
            RequestStatus.SUCCEEDED,
            USER,
        )
        assert front_end.audit == [
            ("requested", USER, front_end.via),
            ("executing", USER, front_end.via),
            ("verified", USER, front_end.via),
        ]
        assert front_end.pause == (True, "resume", USER, True)
        assert front_end.timer_due_at_pause_end

    # The same outcome (every environment, and what the bot watches) in every front end.
    for listed, who in ((slack_list, f"<@{USER}>"), (console_list, USER), (cli_list, USER)):
        assert "staging/automation:daily-welcome-send" in listed, listed
        assert "prod/automation:weekly-newsletter" in listed, listed
        assert f"paused by the bot for {who}, ends " in listed, listed
        assert re.search(r" \((59m|1h) left\), then resume", listed), listed


def test_exec_timed_pause_is_ended_on_time_by_a_serving_bot(
    make_bot: BotFactory, sandbox: Sandbox, tmp_path: Path
) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    config = _config_file(sandbox, bot.config.database_url, tmp_path / "bot.yaml")
    paused = _exec(config, "pause automation:hourly-lead-sync for 1h", "--user", USER)
    assert paused.returncode == 0, (paused.stdout, paused.stderr)
    assert "a running bot (automation-bot serve" in paused.stdout
    assert sandbox.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4

    clock.advance(timedelta(hours=1, minutes=1))  # the serving bot's scheduler sees it due
    wait_for(
        lambda: sandbox.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6,
        timeout=30,
        what="the serving bot to resume it",
    )
    history = wait_for(
        lambda: (
            (h := _exec(config, "history hourly-lead-sync")).returncode == 0
            and "pause_ended" in h.stdout
            and h.stdout
        ),
        timeout=60,
        what="the end in the audit trail",
    )
    assert re.search(r"requested\s+U0ALICE via cli", history), history
    ended = next(line for line in history.splitlines() if "pause_ended" in line)
    when = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC", ended)
    assert when, ended
    at = datetime.strptime(when.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert at >= datetime.now(UTC) + timedelta(minutes=59)  # on the bot's clock: at the end
