"""``automation-bot console``: the bot in a terminal, same grammar and service as Slack.

Cards and thread replies are printed as text; ``as <user-id>`` switches who is typing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot import render
from bot.domain.approvals import ApprovalView
from bot.domain.commands import (
    HelpCommand,
    HistoryCommand,
    ListCommand,
    OpenPauseModal,
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StatusCommand,
    StopCommand,
)
from bot.domain.errors import BadInput, BotError
from bot.domain.grammar import parse_command
from bot.domain.help import USAGE, help_text
from bot.domain.models import Verb
from bot.domain.requests import OperationRequest, Via
from bot.runtime import Runtime, build_scheduler
from bot.service.notify import CardRef, Note

CONSOLE_CHANNEL = "console"
PROMPT = "automation> "
BANNER = (
    "automation-bot console. Type commands as in Slack (e.g. `status welcome-series`, "
    "`pause journey:welcome-series for 2d`), `help`, `as <user-id>` to switch user, "
    "`quit` to leave."
)

Write = Callable[[str], None]


class ConsoleNotifier:
    """Prints the card and its thread instead of posting them to Slack."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self._next = 0

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        self._next += 1
        self._write("┌ card\n" + _indent(render.card_text(request, approval)))
        return CardRef(channel=CONSOLE_CHANNEL, ts=f"{self._next}.000000")

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        self._write("┌ card updated\n" + _indent(render.card_text(request, approval)))

    async def reply(self, request: OperationRequest, note: Note) -> None:
        self._write("│ ↳ " + render.note_text(request, note))


def _indent(text: str) -> str:
    return "\n".join(f"│ {line}" for line in text.splitlines())


class Console:
    """Reads lines, runs them, prints what happened."""

    def __init__(self, runtime: Runtime, *, write: Write, user: str = "U0CONSOLE") -> None:
        self._rt = runtime
        self._write = write
        self.user = user

    async def handle(self, line: str) -> bool:
        """Run one line; False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        if text in ("quit", "exit", r"\q"):
            return False
        if text.startswith("as "):
            self.user = text[3:].strip() or self.user
            self._write(f"You are now {self.user}.")
            return True
        try:
            await self._run(text)
        except BotError as exc:
            self._write(render.error_line(exc))
        return True

    async def _run(self, text: str) -> None:
        ops = self._rt.operations
        command = parse_command(text, now=datetime.now(UTC))
        match command:
            case HelpCommand(topic=topic):
                self._write(help_text(topic))
            case OpenPauseModal():
                raise BadInput(
                    "The pause form is a Slack modal; here, give a target.",
                    usage=USAGE[Verb.PAUSE],
                )
            case StatusCommand(target=ref):
                self._write(render.state_line(await ops.status(ref)))
            case ListCommand():
                self._write(render.states_table(await ops.list_targets(command)))
            case HistoryCommand(target=ref):
                state = await ops.resolve(ref)
                t = state.target
                events = await self._rt.store.history(
                    environment=t.environment, kind=t.kind, target_key=t.key
                )
                self._write(render.history_lines(t.label(), events))
            case PauseCommand() | ResumeCommand() | StopCommand() | RunCommand():
                await self._rt.requests.submit(
                    command, requester=self.user, via=Via.CONSOLE, channel=CONSOLE_CHANNEL
                )


async def run_console(
    runtime: Runtime,
    *,
    read: Callable[[str], Awaitable[str | None]],
    write: Write,
    user: str = "U0CONSOLE",
) -> None:
    """The loop: ``read(prompt)`` returns None at end of input. Timers (the end of timed
    pauses, reminders) run in the background while the console is open."""
    console = Console(runtime, write=write, user=user)
    write(BANNER)
    for request in await runtime.recovery.at_start():
        write(f"Recovered request {request.id}: {request.status.value}")
    stop = asyncio.Event()
    scheduler = build_scheduler(runtime, owner=f"console:{os.getpid()}")
    timers = asyncio.create_task(scheduler.run_forever(stop))
    try:
        while True:
            line = await read(PROMPT)
            if line is None or not await console.handle(line):
                break
    finally:
        stop.set()
        await asyncio.wait_for(timers, timeout=10)


async def read_stdin(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
