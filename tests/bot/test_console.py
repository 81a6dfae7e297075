"""``automation-bot console``: the same service in a terminal."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.config import config_from_mapping
from bot.console import PROMPT, ConsoleNotifier, run_console
from bot.domain.approvals import ApprovalView
from bot.domain.commands import PauseCommand, TargetRef
from bot.domain.errors import BotError, ProviderError
from bot.domain.requests import OperationRequest, Via
from bot.runtime import build_runtime
from bot.service.directory import Directory, StaticDirectory
from bot.service.notify import CardRef
from bot.store import Store, upgrade
from sandbox.server import ServerThread
from sandbox.sfmc import PROD_MID, STAGING_MID
from sandbox.slack import SlackEmulator, SlackSettings
from tests.conftest import Sandbox
from tests.scenarios.conftest import wait_for


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


_REQUEST_ID = re.compile(r"request id: ([0-9a-f]{32})")
_PROD_PAUSE = "pause prod/automation:daily-welcome-send for 1h"


def _prod_mutations(sandbox: Sandbox) -> list[Any]:
    return [
        c
        for c in sandbox.sfmc.calls
        if c.mid == PROD_MID
        and c.soap_action
        and ("Schedule" in c.soap_action or "Perform" in c.soap_action)
    ]


async def _interactive(
    sandbox: Sandbox,
    url: str,
    lines: list[str | Callable[[str], str]],
    *,
    directory: StaticDirectory | None = None,
) -> str:
    """A console run whose lines may depend on what it printed so far (e.g. the id of
    the request its card shows)."""
    out: list[str] = []
    pending = iter(lines)

    async def read(_: str) -> str | None:
        line = next(pending, None)
        return line("\n".join(out)) if callable(line) else line

    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=ConsoleNotifier(out.append),
        directory=directory,
    )
    try:
        await run_console(runtime, read=read, write=out.append, user="U0ALICE")
    finally:
        await runtime.aclose()
    return "\n".join(out)


def _with_id(template: str) -> Callable[[str], str]:
    def line(printed: str) -> str:
        found = _REQUEST_ID.findall(printed)
        assert found, printed
        return template.format(id=found[-1])

    return line


async def test_console_production_request_approved_as_another_user(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    text = await _interactive(
        sandbox,
        url,
        [
            "as U0ADMIN",  # an approver, but not of their own request
            _PROD_PAUSE,
            _with_id("approve {id}"),
            "as U0DAVE",
            _with_id("approve {id}"),  # not an approver
            "as U0BOB",  # in the approver group S0APPROVERS (read from the directory)
            _with_id("approve {id}"),
            "as U0CAROL",
            _with_id("approve {id}"),  # too late: it ran once
        ],
        directory=StaticDirectory({"S0APPROVERS": frozenset({"U0BOB", "U0CAROL"})}),
    )
    assert "[AWAITING_APPROVAL] pause prod/automation:daily-welcome-send" in text
    assert "Approval needed: 1 approval(s)" in text
    assert "You asked for this change, so you cannot approve it yourself" in text
    assert "Only approvers for prod can approve or deny this request" in text
    assert "U0BOB approved (1 of 1 approval(s))." in text
    assert "Done: paused (4 Paused) (verified by reading it back)." in text
    assert "already approved and done" in text
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 4
    assert len(_prod_mutations(sandbox)) == 1
    (row,) = _rows(url)
    assert row["status"] == "succeeded"


async def test_console_production_request_denied(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    text = await _interactive(
        sandbox,
        url,
        [_PROD_PAUSE, "as U0ADMIN", _with_id("deny {id}"), "approve", "as"],
    )
    assert "Denied: nothing was changed." in text
    assert "Usage: approve <request-id>" in text
    assert "Usage: as <user-id>" in text
    assert _prod_mutations(sandbox) == []
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6
    (row,) = _rows(url)
    assert row["status"] == "denied"


async def test_console_help_is_plain_text_and_lists_console_commands_and_environments(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    text = await _interactive(
        sandbox,
        url,
        ["help", "help pause", "pause x for 3 fortnights", "frobnicate", "help approve"],
    )
    for markup in ("`", "/automation", "<http", "<@", "form"):
        assert markup not in text, markup
    assert not re.search(r"\*[A-Za-z/][\w /-]*\*", text)  # no bold; a pattern's '*' stays
    assert "unknown command 'frobnicate'" in text
    assert text.count("approve <request-id>") >= 3  # banner, overview and help approve
    for command in ("as <user-id>", "approve <request-id>", "deny <request-id>", "quit"):
        assert command in text, command
    assert "staging: automation, journey, scrip; the default" in text
    assert "prod: automation, journey; PRODUCTION: changes need 1 approval(s)" in text
    assert "Usage: pause <target>" in text


async def test_console_list_all_covers_every_environment(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    text = await _interactive(sandbox, url, ["list all automation"])
    assert "staging/automation:daily-welcome-send" in text
    assert "prod/automation:daily-welcome-send" in text

    text = await _interactive(sandbox, url, ["list all scrip"])  # prod has no scrip
    assert "staging/scrip:" in text
    assert "error" not in text

    text = await _interactive(sandbox, url, ["list all --env prod"])
    assert "prod/journey:" in text
    assert "staging/" not in text


class _Terminal:
    """``automation-bot console`` on a pseudo-terminal: what a person at a keyboard sees."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "console"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env={**env, "TERM": "xterm"},
            preexec_fn=_controlling_terminal,  # Ctrl-C reaches it as from a keyboard
            close_fds=True,
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # the process closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def expect(self, what: str | re.Pattern[str], *, count: int = 1, timeout: float = 60) -> str:
        """Wait until ``what`` has been printed ``count`` times; return the output."""
        pattern = what if isinstance(what, re.Pattern) else re.compile(re.escape(what))
        wait_for(
            lambda: len(pattern.findall(self.output)) >= count,
            timeout=timeout,
            what=f"{pattern.pattern!r} x{count} in:\n{self.output}",
        )
        return self.output

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the console did not leave:\n{self.output}") from None
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=10)
            os.close(self._master)


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _console_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AUTOMATION_BOT_CONFIG", "SLACK_BOT_TOKEN", "SLACK_API_URL")
    }
    return {**env, **extra}


def test_console_on_a_terminal_edits_lines_with_readline(tmp_path: Path) -> None:
    term = _Terminal(tmp_path, _console_env())
    try:
        # Each key press waits for the prompt: keys typed before readline has the
        # terminal may be read by the terminal's own line editing instead.
        term.expect(PROMPT)
        term.type("status journey:welcome-series\r")
        term.expect('"Welcome Series":')
        term.expect(PROMPT, count=2)
        term.type("\x1b[A\r")  # arrow up: the line again, from readline's history
        term.expect('"Welcome Series":', count=2)
        term.expect(PROMPT, count=3)
        term.type("statux\x7fs automation:hourly-lead-sync\r")  # backspace edits the line
        term.expect('"Hourly Lead Sync": active')
        term.expect(PROMPT, count=4)
        term.type("\x04")  # Ctrl-D leaves
        assert term.close() == 0, term.output
    finally:
        term.kill()
    assert "Traceback" not in term.output


def test_console_ctrl_c_at_the_prompt_clears_the_line(tmp_path: Path) -> None:
    term = _Terminal(tmp_path, _console_env())
    try:
        term.expect(PROMPT)
        term.type("pause automation:hourly-lead-s")
        term.expect("hourly-lead-s")
        term.type("\x03")  # Ctrl-C: the half-typed line is dropped
        term.expect("^C (quit or Ctrl-D leaves)")
        term.expect(PROMPT, count=2)
        term.type("status automation:hourly-lead-sync\r")
        term.expect('"Hourly Lead Sync": active')
        term.expect(PROMPT, count=3)
        term.type("\x04")  # Ctrl-D leaves
        assert term.close() == 0, term.output
    finally:
        term.kill()
    assert "Traceback" not in term.output
    assert "paused (4 Paused)" not in term.output
    # Without SLACK_BOT_TOKEN the console says that approver groups cannot be read.
    assert "groups S0APPROVERS are read from Slack" in term.output


def test_console_approver_groups_are_read_from_slack(tmp_path: Path) -> None:
    emulator = SlackEmulator(
        settings=SlackSettings(rate_limits_enabled=False)
    )  # S0APPROVERS: U0BOB, U0CAROL
    with ServerThread(emulator.app) as server:
        env = _console_env(SLACK_BOT_TOKEN=emulator.bot_token, SLACK_API_URL=server.url + "/api/")
        term = _Terminal(tmp_path, env)
        try:
            term.expect(PROMPT)
            term.type(_PROD_PAUSE + "\r")
            found = _REQUEST_ID.search(term.expect(_REQUEST_ID))
            assert found is not None
            term.expect(PROMPT, count=2)
            term.type("as U0CAROL\r")  # approves through her group, not by name
            term.expect("You are now U0CAROL.")
            term.expect(PROMPT, count=3)
            term.type(f"approve {found.group(1)}\r")
            term.expect("Done: paused (4 Paused) (verified by reading it back).")
            term.expect(PROMPT, count=4)
            term.type("quit\r")
            assert term.close() == 0, term.output
        finally:
            term.kill()
        assert emulator.calls("usergroups.users.list")
    assert "U0CAROL approved (1 of 1 approval(s))." in term.output
    assert "read from Slack" not in term.output


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
