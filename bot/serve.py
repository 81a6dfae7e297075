"""``automation-bot serve``: one ASGI app whose lifespan builds the bot in its own loop.

The same app serves production (uvicorn) and the scenario tests (a loopback thread):
``/slack/events`` (HTTP mode), ``/healthz`` and ``/metrics``; in Socket Mode the Slack
traffic arrives over the socket instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
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
from bot.domain.requests import OperationRequest
from bot.metrics import Metrics
from bot.runtime import Runtime, build_runtime, build_scheduler
from bot.service.pauses import PauseTimings
from bot.slack.app import create_slack_app, create_web_client, fetch_identity
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
    """Everything the bot needs; ``clock`` replaces the wall clock (tests move time)."""
    check_slack_settings(slack)
    assert slack.slack_bot_token is not None
    now = clock or _utcnow
    store = Store.from_url(config.database_url, clock=now)
    client = create_web_client(
        token=slack.slack_bot_token.get_secret_value(), base_url=slack.slack_api_url
    )
    # Replies and card edits are queued, paced per channel and sent in the background;
    # notify-channel notices close together are coalesced (bot/slack/notifier.py).
    notifier = SlackNotifier(client=client, store=store, clock=now, background=True)
    directory = SlackDirectory(client, ttl=directory_ttl, clock=now)

    async def announce(request: OperationRequest, text: str) -> None:
        channel = config.environments[request.spec.environment].notify_channel
        if channel:
            await notifier.announce(channel=channel, request=request, text=text)

    runtime = build_runtime(
        config,
        store=store,
        notifier=notifier,
        directory=directory,
        metrics=metrics,
        clock=now,
        timings=timings,
        announce=announce,
    )
    handlers = SlackHandlers(runtime=runtime, notifier=notifier, clock=now, metrics=metrics)
    identity = await fetch_identity(client)
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
    socket_mode = slack.slack_app_token is not None
    holder: dict[str, Bot] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        bot = await build_bot(
            config,
            slack,
            metrics=metrics,
            clock=clock,
            directory_ttl=directory_ttl,
            timings=timings,
        )
        holder["bot"] = bot
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
        if socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert slack.slack_app_token is not None
            socket_handler = AsyncSocketModeHandler(
                bot.slack_app, slack.slack_app_token.get_secret_value()
            )
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        for warning in config.warnings():
            log.warning("config_warning", warning=warning)
        log.info("bot_started", mode="socket" if socket_mode else "http")
        try:
            yield
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()  # type: ignore[no-untyped-call]
            stop_scheduler.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(timers, timeout=10)
            await bot.handlers.drain()
            await bot.handlers.notifier.drain(within=10)
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recovery
            await bot.runtime.aclose()
            holder.clear()

    async def events(request: Request) -> Response:
        bot = holder.get("bot")
        if bot is None:
            return PlainTextResponse("starting", status_code=503)
        with metrics.ack_latency.labels(kind="slack").time():
            return await _dispatch(bot, request)

    async def healthz(_: Request) -> Response:
        ok = "bot" in holder
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if not socket_mode:
        routes.append(Route(SLACK_EVENTS_PATH, events, methods=["POST"]))
    return Starlette(routes=routes, lifespan=lifespan)


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


async def serve(config: BotConfig, slack: SlackSettings, *, host: str, port: int) -> None:
    check_slack_settings(slack)
    app = create_asgi_app(config, slack, metrics=Metrics())
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    log.info("serving", host=host, port=port)
    await server.serve()
