"""``automation-bot serve``: one ASGI app whose lifespan builds the bot in its own loop.

The same app serves production (uvicorn) and the scenario tests (a loopback thread):
``/slack/events`` (HTTP mode), ``/healthz`` and ``/metrics``; in Socket Mode the Slack
traffic arrives over the socket instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
import uvicorn
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.config import BotConfig, SlackSettings
from bot.domain.errors import ConfigError
from bot.metrics import Metrics
from bot.runtime import Runtime, build_runtime, build_scheduler
from bot.service.pauses import PauseTimings
from bot.slack.app import (
    check_app_token,
    create_slack_app,
    create_web_client,
    fetch_identity,
    socket_mode_logger,
)
from bot.slack.bulk import BulkCards
from bot.slack.directory import SlackDirectory
from bot.slack.handlers import SlackHandlers
from bot.slack.inbound import (
    MAX_BODY_BYTES,
    NOT_DISPATCHED,
    Accepted,
    Installation,
    Refusal,
    check_request,
)
from bot.slack.notifier import SlackNotifier
from bot.store import Store

log = structlog.get_logger(__name__)

SLACK_EVENTS_PATH = "/slack/events"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Bot:
    """The running bot, built inside the server's event loop."""

    runtime: Runtime
    handlers: SlackHandlers
    slack_app: AsyncApp
    installation: Installation
    signing_secret: str

    def busy(self) -> bool:
        """Whether work is in flight: Slack requests still being handled after their ack,
        or Slack messages and notices queued or being sent (tests wait for this to clear)."""
        return self.handlers.busy() or self.handlers.notifier.busy()


def check_slack_settings(slack: SlackSettings) -> None:
    if slack.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set: the bot needs its xoxb- token.")
    if slack.slack_signing_secret is None and slack.slack_app_token is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with it "
            "(or set SLACK_APP_TOKEN for Socket Mode)."
        )


async def build_bot(
    config: BotConfig,
    slack: SlackSettings,
    *,
    metrics: Metrics,
    clock: Clock | None = None,
    directory_ttl: float = 60.0,
    timings: PauseTimings | None = None,
) -> Bot:
    """Everything the bot needs; ``clock`` replaces the wall clock (tests move time).

    Slack is asked first (``auth.test``, and ``apps.connections.open`` in Socket Mode), so
    a refused token is a :class:`ConfigError` before anything is started.
    """
    check_slack_settings(slack)
    assert slack.slack_bot_token is not None
    client = create_web_client(
        token=slack.slack_bot_token.get_secret_value(), base_url=slack.slack_api_url
    )
    identity = await fetch_identity(client)
    if slack.slack_app_token is not None:
        await check_app_token(client, slack.slack_app_token.get_secret_value())
    now = clock or _utcnow
    store = Store.from_url(config.database_url, clock=now)
    # Replies, card edits and notices are written to the outbox and sent in the background,
    # paced per channel and within Slack's workspace budgets; notify-channel notices close
    # together are coalesced (bot/slack/notifier.py, bot/slack/sender.py).
    notifier = SlackNotifier(
        client=client,
        store=store,
        clock=now,
        background=True,
        limits=config.slack_limits,
        notify_channels={
            name: env.notify_channel
            for name, env in config.environments.items()
            if env.notify_channel
        },
    )
    directory = SlackDirectory(client, ttl=directory_ttl, clock=now)

    runtime = build_runtime(
        config,
        store=store,
        notifier=notifier,
        directory=directory,
        metrics=metrics,
        clock=now,
        timings=timings,
    )
    bulk = BulkCards(runtime=runtime, notifier=notifier)
    bulk.attach()  # batch cards and notes through the outbox, drawn from the store
    handlers = SlackHandlers(
        runtime=runtime, notifier=notifier, clock=now, metrics=metrics, bulk=bulk
    )
    secret = slack.slack_signing_secret.get_secret_value() if slack.slack_signing_secret else ""
    slack_app = create_slack_app(
        handlers=handlers, store=store, client=client, signing_secret=secret, identity=identity
    )
    installation = Installation(team_id=identity.team_id, enterprise_id=identity.enterprise_id)
    return Bot(
        runtime=runtime,
        handlers=handlers,
        slack_app=slack_app,
        installation=installation,
        signing_secret=secret,
    )


@contextlib.asynccontextmanager
async def running_bot(
    config: BotConfig,
    slack: SlackSettings,
    *,
    metrics: Metrics,
    clock: Clock | None = None,
    directory_ttl: float = 60.0,
    timings: PauseTimings | None = None,
    scheduler_idle: float = 1.0,
    stop_within: float = 30.0,
) -> AsyncIterator[Bot]:
    """The bot built and running (recovery, scheduler, Socket Mode) until the block ends.

    Leaving the block stops it within about ``stop_within`` seconds: the scheduler, then
    work in flight and queued Slack messages get what is left of it (what does not finish
    is recovered at the next start).
    """
    bot = await build_bot(
        config,
        slack,
        metrics=metrics,
        clock=clock,
        directory_ttl=directory_ttl,
        timings=timings,
    )
    bot.handlers.notifier.start()  # the outbox: this process sends its share
    recovery = asyncio.create_task(bot.runtime.recovery.at_start())
    stop_scheduler = asyncio.Event()
    scheduler = build_scheduler(
        bot.runtime,
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        clock=clock or _utcnow,
        idle_sleep=scheduler_idle,
    )
    timers = asyncio.create_task(scheduler.run_forever(stop_scheduler))
    socket_handler = None
    try:
        if slack.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_handler = AsyncSocketModeHandler(
                bot.slack_app,
                slack.slack_app_token.get_secret_value(),
                logger=socket_mode_logger(),
            )
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        for warning in config.warnings():
            log.warning("config_warning", warning=warning)
        log.info("bot started", mode="socket" if socket_handler is not None else "http")
        yield bot
    finally:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + stop_within

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - loop.time()) * share)

        if socket_handler is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket_handler.close_async(), timeout=left(0.2))  # type: ignore[no-untyped-call]
        stop_scheduler.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(timers, timeout=min(10.0, left(0.4)))
        await bot.handlers.drain(within=left(0.5))
        await bot.handlers.notifier.drain(within=left(0.9))
        await bot.handlers.notifier.aclose()
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await recovery
        await bot.runtime.aclose()


@dataclass
class Slot:
    """Where the routes find the bot (``None`` while it starts and once it stops)."""

    bot: Bot | None = None


def _routes_app(
    slot: Slot,
    metrics: Metrics,
    *,
    socket_mode: bool,
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    async def events(request: Request) -> Response:
        bot = slot.bot
        if bot is None:
            return PlainTextResponse("starting", status_code=503)
        with metrics.ack_latency.labels(kind="slack").time():
            return await _dispatch(bot, request)

    async def healthz(_: Request) -> Response:
        ok = slot.bot is not None
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if not socket_mode:
        routes.append(Route(SLACK_EVENTS_PATH, events, methods=["POST"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.slot = slot  # the running bot, for whoever holds the app (tests)
    return app


def create_asgi_app(
    config: BotConfig,
    slack: SlackSettings,
    *,
    metrics: Metrics,
    clock: Clock | None = None,
    directory_ttl: float = 60.0,
    timings: PauseTimings | None = None,
    scheduler_idle: float = 1.0,
) -> Starlette:
    """The bot as an ASGI app; everything is built and torn down by its lifespan.

    ``clock`` replaces the wall clock, ``directory_ttl`` is how long user-group members
    are cached, ``scheduler_idle`` how often the scheduler looks for due work (pause
    timers and approval expiries) when it is idle.
    """
    slot = Slot()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with running_bot(
            config,
            slack,
            metrics=metrics,
            clock=clock,
            directory_ttl=directory_ttl,
            timings=timings,
            scheduler_idle=scheduler_idle,
        ) as bot:
            slot.bot = bot
            try:
                yield
            finally:
                slot.bot = None

    return _routes_app(
        slot, metrics, socket_mode=slack.slack_app_token is not None, lifespan=lifespan
    )


async def _read_capped(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than any Slack request (left unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _dispatch(bot: Bot, request: Request) -> Response:
    """Check the request (signature first, then shape and workspace), then hand it to Bolt.

    A refused request gets its 4xx (or, for a slash command from another workspace, an
    ephemeral answer) and one short log line; Bolt never sees it.
    """
    from slack_bolt.adapter.starlette.async_handler import to_starlette_response
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_bolt.request.async_internals import build_async_context
    from slack_bolt.request.async_request import AsyncBoltRequest

    raw = await _read_capped(request)
    checked: Accepted | Refusal
    if raw is None:
        checked = Refusal(413, "malformed request: the body is too large", {"error": "too large"})
    else:
        checked = check_request(
            raw,
            request.headers,
            secret=bot.signing_secret,
            installation=bot.installation,
            now=time.time(),
        )
    if isinstance(checked, Refusal):
        log.warning("slack_request_refused", status=checked.status, reason=checked.reason)
        return JSONResponse(checked.body, status_code=checked.status)
    if checked.kind in NOT_DISPATCHED:
        return Response(status_code=200)
    bolt_request = AsyncBoltRequest(
        body=checked.text,
        query=request.query_params,  # type: ignore[arg-type]
        headers=request.headers,  # type: ignore[arg-type]
    )
    if bolt_request.body != checked.body:
        # Bolt reads any form that mentions "payload" as an interaction; use the body as
        # it really is (a slash command whose text says "payload", say).
        bolt_request.body = checked.body
        bolt_request.context = build_async_context(AsyncBoltContext({}), checked.body)
    return to_starlette_response(await bot.slack_app.async_dispatch(bolt_request))


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`serve` owns SIGTERM and SIGINT (uvicorn
    would ignore them until the bot has started, and raise them again once stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """The HTTP socket, bound before anything else starts (a taken port is one sentence)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port "
            "or --host."
        ) from None
    return sock


def _exit_hard_after(seconds: float) -> threading.Timer:
    """The last resort behind the graceful stop: the process ends after ``seconds`` even if
    something does not give up (a blocked call)."""

    def exit_now() -> None:
        log.warning("stop took too long, exiting now", after_s=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()
    return timer


async def serve(
    config: BotConfig, slack: SlackSettings, *, host: str, port: int, stop_within: float = 9.0
) -> None:
    """Serve the bot until SIGTERM or SIGINT, then stop within ``stop_within`` seconds.

    ``/healthz`` answers from the start (503 until the bot has started, Socket Mode
    connected). A signal stops it at any point, also while it is still starting. Raises
    :class:`ConfigError` when Slack refuses SLACK_BOT_TOKEN or SLACK_APP_TOKEN.
    """
    check_slack_settings(slack)
    socket_mode = slack.slack_app_token is not None
    metrics = Metrics()
    slot = Slot()
    listener = _listen(host, port)
    server = _Server(
        uvicorn.Config(
            _routes_app(slot, metrics, socket_mode=socket_mode),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(stop_within * 0.2)),
        )
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    watchdog: list[threading.Timer] = []

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            return
        log.info("stopping", signal=signal.Signals(signum).name)
        stopping.set()
        watchdog.append(_exit_hard_after(stop_within))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    http = asyncio.create_task(server.serve(sockets=[listener]))
    log.info(
        "serving",
        host=host,
        port=listener.getsockname()[1],
        mode="socket" if socket_mode else "http",
    )

    started = asyncio.Event()

    async def run_bot() -> None:
        async with running_bot(
            config, slack, metrics=metrics, stop_within=stop_within * 0.6
        ) as bot:
            slot.bot = bot
            started.set()
            try:
                await stopping.wait()
            finally:
                slot.bot = None

    bot_task = asyncio.create_task(run_bot())
    try:
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({bot_task, stop_wait, http}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        stopping.set()  # whatever ended first (a signal, the bot, the HTTP server) ends all
        if not bot_task.done() and not started.is_set():
            log.info("stopped while starting")
            bot_task.cancel()
        try:
            await asyncio.wait_for(bot_task, timeout=stop_within * 0.8)
        except asyncio.CancelledError:
            if not bot_task.cancelled():  # serve itself was cancelled
                raise
        except TimeoutError:
            log.warning("the bot did not stop in time; what it left is recovered at next start")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(http, timeout=max(1.0, stop_within * 0.15))
        listener.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for timer in watchdog:
            timer.cancel()
