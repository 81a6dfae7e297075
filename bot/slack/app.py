"""The Slack app factory: a Bolt AsyncApp with the bot's listeners, and its web server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger import get_bolt_logger
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.errors import ConfigError, ProviderError
from bot.slack.handlers import SlackHandlers
from bot.slack.inbound import Installation
from bot.slack.listeners import register
from bot.store.repository import Store


def create_web_client(*, token: str, base_url: str) -> AsyncWebClient:
    """The Web API client: Slack's base URL (or the emulator's), 429 and connection retries."""
    return AsyncWebClient(
        token=token,
        base_url=base_url.rstrip("/") + "/",
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        ],
    )


# Slack's answers that mean "this token will not do" (rather than "try again later").
_REFUSALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
        "missing_scope",
        "no_permission",
    }
)
# What to do about each refused variable.
_ADVICE = {
    "SLACK_BOT_TOKEN": (
        "set it to the app's Bot User OAuth Token (xoxb-..., under OAuth & Permissions); "
        "reinstall the app to the workspace if the token was revoked"
    ),
    "SLACK_APP_TOKEN": (
        "create an app-level token with connections:write (Basic Information > App-Level "
        "Tokens, xapp-...) and set SLACK_APP_TOKEN to it, or unset SLACK_APP_TOKEN to run "
        "in HTTP mode"
    ),
}


async def _checked(
    call: Awaitable[AsyncSlackResponse], *, method: str, variable: str, api_url: str
) -> AsyncSlackResponse:
    """Await a start-up Slack call; a refused token or an unreachable Slack is one sentence."""
    try:
        return await call
    except SlackApiError as exc:
        code = str(exc.response.get("error") or exc.response.status_code)
        if code in _REFUSALS:
            raise ConfigError(
                f"{variable} was refused by Slack ({code}): {_ADVICE[variable]}."
            ) from None
        raise ProviderError(
            f"Slack at {api_url} did not answer {method}",
            provider="Slack",
            code=code,
            http_status=exc.response.status_code,
            retryable=True,
        ) from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ProviderError(
            f"Cannot reach Slack at {api_url} ({type(exc).__name__}): check SLACK_API_URL",
            provider="Slack",
            retryable=True,
        ) from None


async def fetch_identity(client: AsyncWebClient) -> AuthorizeResult:
    """Who the bot is (``auth.test``), fetched once at start so no request waits for it.

    Raises :class:`ConfigError` when Slack refuses SLACK_BOT_TOKEN.
    """
    response = await _checked(
        client.auth_test(),
        method="auth.test",
        variable="SLACK_BOT_TOKEN",
        api_url=client.base_url,
    )
    return AuthorizeResult(
        enterprise_id=response.get("enterprise_id"),
        team_id=response.get("team_id"),
        bot_user_id=response.get("user_id"),
        bot_id=response.get("bot_id"),
        bot_token=client.token,
    )


async def check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """Open a Socket Mode connection URL once (``apps.connections.open``, the first step of
    the handshake) so a refused SLACK_APP_TOKEN is a :class:`ConfigError`, not endless
    retries."""
    await _checked(
        client.apps_connections_open(app_token=app_token),
        method="apps.connections.open",
        variable="SLACK_APP_TOKEN",
        api_url=client.base_url,
    )


class _ExpectedBoltNotices(logging.Filter):
    """Bolt warns that it will not use SLACK_BOT_TOKEN itself; the bot hands it a client and
    an ``authorize`` function on purpose, so these warnings only alarm whoever reads the log."""

    notices = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.notices


def _quiet_expected_bolt_notices() -> None:
    logger = get_bolt_logger(AsyncApp)
    if not any(isinstance(f, _ExpectedBoltNotices) for f in logger.filters):
        logger.addFilter(_ExpectedBoltNotices())


class _OneLineRetries(logging.Filter):
    """The Socket Mode client logs a traceback on every reconnect attempt; one line
    (what failed, that it retries) says all of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "Retrying" in record.getMessage():
            record.exc_info = None
            record.exc_text = None
        return True


def socket_mode_logger() -> logging.Logger:
    """The logger for the Socket Mode client (one line per reconnect attempt)."""
    logger = logging.getLogger("bot.slack.socket_mode")
    if not any(isinstance(f, _OneLineRetries) for f in logger.filters):
        logger.addFilter(_OneLineRetries())
    return logger


def create_slack_app(
    *,
    handlers: SlackHandlers,
    store: Store,
    client: AsyncWebClient,
    signing_secret: str,
    identity: AuthorizeResult,
) -> AsyncApp:
    """The Bolt app with every listener registered (signatures verified by Bolt)."""

    async def authorize(**_: object) -> AuthorizeResult:
        return identity

    _quiet_expected_bolt_notices()
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    installation = Installation(team_id=identity.team_id, enterprise_id=identity.enterprise_id)
    register(app, handlers, store, installation)
    if handlers.bulk is not None:
        from bot.slack.bulk import register_bulk

        register_bulk(app, handlers.bulk, handlers.spawn)
    return app
