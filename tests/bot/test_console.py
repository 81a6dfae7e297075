"""``automation-bot console``: the same service in a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import config_from_mapping
from bot.console import ConsoleNotifier, run_console
from bot.domain.errors import ProviderError
from bot.runtime import build_runtime
from bot.service.directory import Directory, StaticDirectory
from bot.store import Store, upgrade
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox


def _reader(lines: list[str]):  # type: ignore[no-untyped-def]
    it: Iterator[str] = iter(lines)

    async def read(_: str) -> str | None:
        return next(it, None)

    return read


async def test_console_runs_commands_and_prints_card_and_thread(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    out: list[str] = []
    store = Store.from_url(url)
    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=store,
        notifier=ConsoleNotifier(out.append),
    )
    try:
        await run_console(
            runtime,
            read=_reader(
                [
                    "as U0BOB",
                    "pause automation:daily-welcome-send for 2d --reason 'template fix'",
                    "status daily-welcome-send",
                    "history daily-welcome-send",
                    "pause nonsense for 3 fortnights",
                    "resume daily-welcome-send",
                    "quit",
                    "status never-reached",
                ]
            ),
            write=out.append,
        )
    finally:
        await runtime.aclose()
    text = "\n".join(out)
    assert "You are now U0BOB." in text
    assert "┌ card" in text
    assert "asked by: U0BOB via console" in text
    assert "reason: template fix" in text
    assert "Done: paused (4 Paused) (verified by reading it back)." in text
    assert "History of staging/automation:daily-welcome-send" in text
    assert "requested" in text
    assert "Usage:" in text
    assert "never-reached" not in text
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6


def test_console_command_on_embedded_defaults_exits_at_end_of_input(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_BOT_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console"],
        input="status journey:welcome-series\npause automation:hourly-lead-sync for 1d\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "welcome-series" in done.stdout
    assert "Done: paused" in done.stdout
    assert (tmp_path / "automation-bot.db").exists()


@pytest.mark.parametrize("line", ["", "   "])
async def test_blank_lines_are_ignored(sandbox: Sandbox, tmp_path: Path, line: str) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(url)
    out: list[str] = []
    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=ConsoleNotifier(out.append),
    )
    try:
        await run_console(runtime, read=_reader([line, "exit"]), write=out.append)
    finally:
        await runtime.aclose()
    assert len(out) == 1  # the banner only


class _SlackDown:
    """A directory whose user groups cannot be read right now (Slack unreachable)."""

    async def members(self, group_id: str) -> frozenset[str]:
        raise ProviderError("Slack could not be reached.", provider="Slack", retryable=True)


@pytest.mark.parametrize(
    ("approvers", "directory", "short"),
    [
        (["U0LEAD"], None, True),  # the only approver asks: nobody could approve it
        (["S0APPROVERS"], StaticDirectory({"S0APPROVERS": frozenset({"U0LEAD"})}), True),
        (["S0APPROVERS"], _SlackDown(), False),  # not known now: no false alarm
        (["S0APPROVERS", "U0BOB"], None, False),
    ],
)
async def test_console_card_says_when_nobody_else_could_approve(
    sandbox: Sandbox,
    tmp_path: Path,
    approvers: list[str],
    directory: Directory | None,
    short: bool,
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    mapping = dict(sandbox.mapping, database_url=url)
    prod = dict(mapping["environments"]["prod"])
    prod["approval"] = {"approvers": approvers, "required": 1}
    mapping["environments"] = {**mapping["environments"], "prod": prod}
    out: list[str] = []
    runtime = build_runtime(
        config_from_mapping(mapping),
        store=Store.from_url(url),
        notifier=ConsoleNotifier(out.append),
        directory=directory,
    )
    try:
        lines = ["as U0LEAD", "pause prod/automation:daily-welcome-send for 1d", "quit"]
        await run_console(runtime, read=_reader(lines), write=out.append)
    finally:
        await runtime.aclose()
    text = "\n".join(out)
    assert "[AWAITING_APPROVAL]" in text
    said = "cannot be approved as configured: nobody could approve it; change "
    assert (said + "environments.prod.approval") in text if short else said not in text
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6
