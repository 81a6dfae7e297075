"""The Slack app factory: a Bolt AsyncApp with the bot's listeners, and its web server."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

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


async def fetch_identity(client: AsyncWebClient) -> AuthorizeResult:
    """Who the bot is (``auth.test``), fetched once at start so no request waits for it."""
    response = await client.auth_test()
    return AuthorizeResult(
        enterprise_id=response.get("enterprise_id"),
        team_id=response.get("team_id"),
        bot_user_id=response.get("user_id"),
        bot_id=response.get("bot_id"),
        bot_token=client.token,
    )


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

    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    installation = Installation(team_id=identity.team_id, enterprise_id=identity.enterprise_id)
    register(app, handlers, store, installation)
    return app
