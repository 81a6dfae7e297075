"""``automation-bot console``: the bot in a terminal, same grammar and service as Slack.

Cards and thread replies are printed as text; ``as <user-id>`` switches who is typing, and
``approve <request-id>`` / ``deny <request-id>`` vote on a production request as that user
(the approvals service decides, exactly as it does for Slack buttons).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from bot import render
from bot.domain.approvals import ApprovalView, Decision, is_group_id
from bot.domain.bulk import BatchStatus
from bot.domain.errors import BadInput, BotError
from bot.domain.events import Event
from bot.domain.grammar import parse_command
from bot.domain.requests import OperationRequest, Via
from bot.runtime import Runtime, build_scheduler
from bot.service.bulk import BatchDone, BatchStarted
from bot.service.commands import HelpOutcome, SubmittedRequest
from bot.service.notify import CardRef

log = structlog.get_logger(__name__)

CONSOLE_CHANNEL = "console"
PROMPT = "automation> "
BANNER = (
    "automation-bot console. Type commands as in Slack, without the slash command (e.g. "
    "status welcome-series, pause journey:welcome-series for 2d); help lists them all, "
    "as <user-id> switches user, approve <request-id> approves, quit or Ctrl-D leaves."
)
QUIT = frozenset({"quit", "exit", r"\q"})
#: The console's own commands (``help <word>`` shows the console's part of the help).
_CONSOLE_WORDS = frozenset({"as", "approve", "deny", "confirm", "cancel", *QUIT})

Write = Callable[[str], None]
T = TypeVar("T")


class ConsoleNotifier:
    """Prints the card and its thread instead of posting them to Slack."""

    def __init__(self, write: Write) -> None:
        self._write = write

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        self._write("┌ card\n" + _indent(render.card_text(request, approval)))
        # The card's id is its request's id: unique across runs over one database and
        # across consoles open at once (a counter would restart at 1 every run).
        return CardRef(channel=CONSOLE_CHANNEL, ts=request.id)

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        self._write("┌ card updated\n" + _indent(render.card_text(request, approval)))

    async def publish(self, request: OperationRequest, event: Event) -> None:
        self._write("│ ↳ " + render.event_text(request, event))


def _indent(text: str) -> str:
    return "\n".join(f"│ {line}" for line in text.splitlines())


class Console:
    """Reads lines, runs them, prints what happened."""

    def __init__(self, runtime: Runtime, *, write: Write, user: str = "U0CONSOLE") -> None:
        self._rt = runtime
        self._write = write
        self.user = user
        self._stop = asyncio.Event()
        self._timers: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The banner, recovery of what an earlier run left unfinished, and the timers
        (the end of timed pauses, reminders, approval expiries) in the background."""
        self._write(BANNER)
        for request in await self._rt.recovery.at_start():
            self._write(f"Recovered request {request.id}: {request.status.value}")
        scheduler = build_scheduler(self._rt, owner=f"console:{os.getpid()}:{uuid.uuid4().hex}")
        self._timers = asyncio.create_task(scheduler.run_forever(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._timers is not None:
            await asyncio.wait_for(self._timers, timeout=10)

    async def handle(self, line: str) -> bool:
        """Run one line; False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        if text in QUIT:
            return False
        word, _, rest = text.partition(" ")
        try:
            if word == "help" and rest.strip() in _CONSOLE_WORDS:
                self._write(console_help(self._rt, user=self.user).lstrip("\n"))
            elif word == "as":
                self._switch_user(rest.strip())
            elif word in ("approve", "deny") and rest.split()[:1] == ["batch"]:
                await self._vote_batch(Decision(word), rest.split(maxsplit=1)[1:])
            elif word in ("approve", "deny"):
                await self._vote(Decision(word), rest.strip())
            elif word in ("confirm", "cancel"):
                await self._batch(word, rest.strip())
            else:
                await self._run(text)
        except BotError as exc:
            # plain text: no slash command, no code marks (as in the console's help)
            self._write(render.error_text(exc, plain=True))
        except Exception:  # never a traceback in the terminal: an error id, and the log
            error_id = uuid.uuid4().hex[:8]
            log.exception("console_command_failed", error_id=error_id)
            self._write(
                f"error: something unexpected went wrong (error id {error_id}, in the log)."
            )
        return True

    def _switch_user(self, user: str) -> None:
        if not user or " " in user:
            raise BadInput("Say who you are with one Slack user id.", usage="as <user-id>")
        self.user = user
        self._write(f"You are now {self.user}.")

    async def _vote(self, decision: Decision, request_id: str) -> None:
        if not request_id or " " in request_id:
            raise BadInput(
                "Give the id of the request (it is on its card).",
                usage=f"{decision.value} <request-id>",
            )
        answer = await self._rt.commands.vote(
            request_id=request_id, voter=self.user, decision=decision, via=Via.CONSOLE
        )
        if answer.refused is not None:
            self._write(render.vote_refused_text(answer.refused))

    async def _batch(self, word: str, batch_id: str) -> None:
        """``confirm <batch-id>`` carries out a bulk preview (or asks for its approval);
        ``cancel <batch-id>`` drops it."""
        if not batch_id or " " in batch_id:
            raise BadInput(
                "Give the id of the batch (it is on its preview).", usage=f"{word} <batch-id>"
            )
        if word == "cancel":
            batch = await self._rt.commands.cancel_batch(batch_id, actor=self.user)
            self._write(f"Batch {batch.id} cancelled: nothing was changed.")
            return
        outcome = await self._rt.commands.confirm_batch(batch_id, actor=self.user, via=Via.CONSOLE)
        self._write(render.outcome_text(outcome))

    async def _vote_batch(self, decision: Decision, ids: list[str]) -> None:
        batch_id = ids[0].strip() if ids else ""
        if not batch_id or " " in batch_id:
            raise BadInput(
                "Give the id of the batch (it is on its preview).",
                usage=f"{decision.value} batch <batch-id>",
            )
        answer = await self._rt.commands.vote_batch(
            batch_id=batch_id, voter=self.user, decision=decision, via=Via.CONSOLE
        )
        if answer.refused:
            self._write(render.vote_refused_text(answer.refused))
        elif answer.batch.status is BatchStatus.DONE:
            self._write(render.outcome_text(BatchDone(batch=answer.batch)))
        else:
            required = self._rt.bulk.required_approvals(answer.batch.environment)
            self._write(render.outcome_text(BatchStarted(answer.batch, required)))

    async def _run(self, text: str) -> None:
        """parse -> handle -> render, as Slack and exec do."""
        command = parse_command(text, now=datetime.now(UTC))
        outcome = await self._rt.commands.handle(
            command, actor=self.user, via=Via.CONSOLE, channel=CONSOLE_CHANNEL
        )
        if isinstance(outcome, SubmittedRequest):
            return  # its card and thread were printed as they happened
        self._write(render.outcome_text(outcome))
        if isinstance(outcome, HelpOutcome) and outcome.topic is None:
            self._write(console_help(self._rt, user=self.user))


def console_help(runtime: Runtime, *, user: str) -> str:
    """What only the console has (switching user, votes, leaving) and the environments."""
    lines = [
        "",
        "In the console:",
        f"  as <user-id>            act as another user (you are {user})",
        "  approve <request-id>    approve a production request (the id is on its card)",
        "  deny <request-id>       deny a production request",
        "  confirm <batch-id>      carry out a bulk preview (production: ask its approval)",
        "  cancel <batch-id>       drop a bulk preview",
        "  approve batch <id>      approve a production bulk request (deny batch <id>)",
        "  quit                    leave (also exit or Ctrl-D); Ctrl-C clears the line",
        "",
        "Environments (list covers them all; add --env <env> or <env>/ for one):",
    ]
    cfg = runtime.config
    for name in sorted(cfg.environments, key=lambda n: (n != cfg.default_environment, n)):
        env = cfg.environments[name]
        kinds = ", ".join(k.value for k in runtime.operations.environment(name).providers)
        what = [kinds]
        if name == cfg.default_environment:
            what.append("the default")
        policy = cfg.approval_policy(name)
        if env.production and policy is not None:
            people = sorted(a for a in policy.approvers if not is_group_id(a))
            groups = sorted(f"group {a}" for a in policy.approvers if is_group_id(a))
            what.append(
                f"PRODUCTION: changes need {policy.required} approval(s) from "
                + ", ".join([*people, *groups])
            )
        elif env.production:
            what.append("PRODUCTION")
        lines.append(f"  {name}: {'; '.join(what)}")
    return "\n".join(lines)


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
    await console.start()
    try:
        while True:
            line = await read(PROMPT)
            if line is None or not await console.handle(line):
                break
    finally:
        await console.stop()


def run_terminal(
    make_runtime: Callable[[], Coroutine[Any, Any, Runtime]],
    *,
    write: Write,
    user: str = "U0CONSOLE",
    read_line: Callable[[str], str] = input,
) -> None:
    """The console on a terminal: lines are read in the main thread (with line editing
    when readline is available), the bot runs on an event loop in a second thread.

    Ctrl-C at the prompt clears the line; during a command it interrupts the command
    (a request caught mid-call is read back at the next start, never sent twice); Ctrl-D
    or ``quit`` leaves. Never a traceback.
    """
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  # line editing and history for input()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="console-loop", daemon=True)
    thread.start()

    def call(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    runtime: Runtime | None = None
    console: Console | None = None
    try:
        runtime = call(make_runtime())
        console = Console(runtime, write=write, user=user)
        call(console.start())
        while True:
            try:
                line = read_line(PROMPT)
            except EOFError:
                write("")
                break
            except KeyboardInterrupt:
                write("^C (quit or Ctrl-D leaves)")
                continue
            running = asyncio.run_coroutine_threadsafe(console.handle(line), loop)
            try:
                if not running.result():
                    break
            except KeyboardInterrupt:
                running.cancel()
                with contextlib.suppress(BaseException):
                    running.result(timeout=10)
                write("Interrupted.")
    except KeyboardInterrupt:
        write("Interrupted.")
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            if console is not None:
                call(console.stop())
            if runtime is not None:
                call(runtime.aclose())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()


async def read_stdin(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
