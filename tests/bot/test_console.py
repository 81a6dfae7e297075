"""``automation-bot console``: the same service in a terminal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.console import ConsoleNotifier, run_console
from bot.domain.approvals import ApprovalView
from bot.domain.commands import PauseCommand, TargetRef
from bot.domain.errors import BotError
from bot.domain.requests import OperationRequest, Via
from bot.runtime import build_runtime
from bot.service.notify import CardRef
from bot.store import Store, upgrade
from sandbox.sfmc import STAGING_MID
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


async def _console(
    sandbox: Sandbox, url: str, lines: list[str], *, user: str = "U0CONSOLE"
) -> list[str]:
    """One console run (its own runtime and store) over the database at ``url``."""
    out: list[str] = []
    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=ConsoleNotifier(out.append),
    )
    try:
        await run_console(runtime, read=_reader(lines), write=out.append, user=user)
    finally:
        await runtime.aclose()
    return out


def _rows(url: str) -> list[dict[str, Any]]:
    """Every recorded request (status, card, error), oldest first."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, status, target_key, channel, card_ts, error FROM requests "
                    "ORDER BY created_at"
                )
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


async def test_console_twice_over_one_database(sandbox: Sandbox, tmp_path: Path) -> None:
    # The second run used to reuse card id 1 and die on the unique card index, leaving
    # its request to be carried out unasked by the third run.
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    first = await _console(sandbox, url, ["pause automation:hourly-lead-sync for 1h", "quit"])
    assert "Done: paused (4 Paused) (verified by reading it back)." in "\n".join(first)

    second = await _console(sandbox, url, ["pause automation:daily-welcome-send for 1h", "quit"])
    assert "Done: paused (4 Paused) (verified by reading it back)." in "\n".join(second)

    third = await _console(sandbox, url, ["quit"])
    assert not [line for line in third if "Recovered" in line]

    rows = _rows(url)
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert len({(r["channel"], r["card_ts"]) for r in rows}) == 2
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


async def test_two_consoles_at_once_get_distinct_cards(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    outs = await asyncio.gather(
        _console(sandbox, url, ["pause automation:hourly-lead-sync for 1h"], user="U0ALICE"),
        _console(sandbox, url, ["pause automation:daily-welcome-send for 1h"], user="U0BOB"),
    )
    for out in outs:
        assert "Done: paused (4 Paused) (verified by reading it back)." in "\n".join(out)
    rows = _rows(url)
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert len({(r["channel"], r["card_ts"]) for r in rows}) == 2


class _SameCardNotifier(ConsoleNotifier):
    """A notifier whose every card gets the same id (as the old console counter did
    across runs): the second request's card cannot be recorded."""

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        await super().post_card(request, approval)
        return CardRef(channel="console", ts="1.000000")


async def test_a_failed_submission_is_marked_failed_and_never_replayed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    out: list[str] = []
    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=_SameCardNotifier(out.append),
    )
    try:
        await runtime.requests.submit(
            PauseCommand(target=TargetRef(environment=None, kind=None, name="hourly-lead-sync")),
            requester="U0ALICE",
            via=Via.CONSOLE,
            channel="console",
        )
        with pytest.raises(BotError, match="could not be recorded"):
            await runtime.requests.submit(
                PauseCommand(
                    target=TargetRef(environment=None, kind=None, name="daily-welcome-send")
                ),
                requester="U0ALICE",
                via=Via.CONSOLE,
                channel="console",
            )
        failed = [r for r in _rows(url) if r["target_key"] == "daily-welcome-send"]
        assert [r["status"] for r in failed] == ["failed"]
        assert "could not be recorded" in failed[0]["error"]
        assert await runtime.requests.recover() == []
    finally:
        await runtime.aclose()
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6
