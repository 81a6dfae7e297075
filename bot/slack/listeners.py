"""Bolt listeners: ack, parse, call one handler method. Nothing else lives here."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Decision
from bot.domain.commands import BulkCommand, HelpCommand, OpenPauseModal
from bot.domain.errors import BadInput, BotError
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.handlers import SlackHandlers, parse_slash_text, short_error
from bot.slack.ids import (
    SLASH_COMMAND,
    ApprovalAction,
    CardAction,
    HomeAction,
    ModalAction,
    ModalBlock,
    ModalCallback,
    PickerAction,
    ReminderAction,
)
from bot.slack.inbound import Installation, Refusal, check_shape, command_key
from bot.slack.metadata import ModalContext
from bot.slack.render import error_message
from bot.store.repository import Store

log = structlog.get_logger(__name__)


def register(
    app: AsyncApp, handlers: SlackHandlers, store: Store, installation: Installation
) -> None:
    """Attach every listener of the bot to ``app``."""

    @app.middleware
    async def check_inbound(req: AsyncBoltRequest, resp: BoltResponse, next: Any) -> BoltResponse:
        """The shape and the workspace of every request (HTTP requests were checked before
        Bolt already; this covers Socket Mode): refused ones reach no listener."""
        checked = check_shape(req.body, installation)
        if isinstance(checked, Refusal):
            log.warning("slack_request_refused", status=checked.status, reason=checked.reason)
            return BoltResponse(status=checked.status, body=checked.body)
        return await next()  # type: ignore[no-any-return]

    @app.middleware
    async def dedupe_events(req: AsyncBoltRequest, resp: BoltResponse, next: Any) -> BoltResponse:
        """Handle each Events API delivery once (Slack retries them; by event_id, in every
        process). Slash commands are deduplicated after their ack (off the ack path), by
        :meth:`SlackHandlers.once`."""
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await store.claim_event(f"event:{event_id}"):
            log.info(
                "duplicate_event", event_id=event_id, retry=req.headers.get("x-slack-retry-num")
            )
            return BoltResponse(status=200, body="")
        structlog.contextvars.bind_contextvars(slack_request=uuid.uuid4().hex[:12])
        try:
            return await next()  # type: ignore[no-any-return]
        finally:
            structlog.contextvars.clear_contextvars()

    @app.command(SLASH_COMMAND)
    async def on_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        request: AsyncBoltRequest,
    ) -> None:
        parsed = parse_slash_text(command.get("text", ""), now=handlers.now())
        if isinstance(parsed, Message):
            await ack(response_type="ephemeral", **parsed.to_dict())
            return
        if isinstance(parsed, HelpCommand):
            await ack(response_type="ephemeral", **blocks.help_message(parsed.topic).to_dict())
            return
        await ack()
        user, channel = command["user_id"], command.get("channel_id")
        if isinstance(parsed, OpenPauseModal):
            context = handlers.modal_context(user=user, channel=channel, value=None)
            work = handlers.open_modal(client, trigger_id=command["trigger_id"], context=context)
        else:
            work = handlers.run_command(parsed, user=user, channel=channel, respond=respond)
        key = command_key(command, request.raw_body)  # handled once: a replay does nothing
        once = handlers.once(key, work, respond=respond)
        handlers.spawn(once, respond=respond, user=user, channel=channel)

    @app.action(CardAction.RESUME_NOW)
    @app.action(ReminderAction.RESUME_NOW)
    async def on_resume_now(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], _channel(body)
        work = handlers.resume_request(
            action.get("value", ""), user=user, channel=channel, respond=respond
        )
        handlers.spawn(work, respond=respond, user=user, channel=channel)

    @app.action(ReminderAction.KEEP_PAUSED)
    async def on_reminder_let_it_end(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], _channel(body)
        work = handlers.let_it_end(action.get("value", ""), user=user, respond=respond)
        handlers.spawn(work, respond=respond, user=user, channel=channel)

    @app.action(HomeAction.RESUME_NOW)
    async def on_home_resume(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        work = handlers.resume_request(
            action.get("value", ""), user=user, channel=None, respond=None
        )
        handlers.spawn(work, respond=None, user=user, channel=None)

    @app.action(CardAction.OPEN_PAUSE_MODAL)
    @app.action(HomeAction.OPEN_PAUSE_MODAL)
    @app.action(ReminderAction.EXTEND)
    async def on_open_modal(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        message = body.get("message") or {}
        user, channel = body["user"]["id"], _channel(body)
        context = handlers.modal_context(
            user=user,
            channel=channel,
            thread_ts=message.get("thread_ts") or message.get("ts"),
            value=action.get("value"),
        )
        work = handlers.open_modal(client, trigger_id=body["trigger_id"], context=context)
        handlers.spawn(work, respond=None, user=user, channel=channel)

    @app.action(ApprovalAction.APPROVE)
    @app.action(ApprovalAction.DENY)
    async def on_vote(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], _channel(body)
        decision = (
            Decision.APPROVE if action.get("action_id") == ApprovalAction.APPROVE else Decision.DENY
        )
        work = handlers.vote(
            action.get("value", ""), decision=decision, user=user, channel=channel, respond=respond
        )
        handlers.spawn(work, respond=respond, user=user, channel=channel)

    @app.action(ApprovalAction.REQUEST_AGAIN)
    async def on_request_again(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], _channel(body)
        work = handlers.request_again(
            action.get("value", ""), user=user, channel=channel, respond=respond
        )
        handlers.spawn(work, respond=respond, user=user, channel=channel)

    @app.event("reaction_added")
    async def on_reaction_added(event: dict[str, Any]) -> None:
        user = str(event.get("user") or "")
        handlers.spawn(handlers.reaction(event, added=True), respond=None, user=user, channel=None)

    @app.event("reaction_removed")
    async def on_reaction_removed(event: dict[str, Any]) -> None:
        user = str(event.get("user") or "")
        handlers.spawn(handlers.reaction(event, added=False), respond=None, user=user, channel=None)

    @app.action(PickerAction.CHOOSE)
    async def on_pick(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], _channel(body)
        work = handlers.choose_target(
            action.get("value", ""), user=user, channel=channel, respond=respond
        )
        handlers.spawn(work, respond=respond, user=user, channel=channel)

    @app.options(ModalAction.TARGET)
    async def on_target_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        environment = _selected_environment(body.get("view") or {})
        options = await handlers.target_suggestions(
            environment=environment, query=body.get("value", "")
        )
        await ack(**options)

    @app.action(ModalAction.TARGET)
    async def on_target_chosen(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        chosen = (action.get("selected_option") or {}).get("value")
        work = handlers.refresh_modal(client, view=body["view"], chosen=chosen)
        handlers.spawn(work, respond=None, user=body["user"]["id"], channel=None)

    @app.action(ModalAction.ENVIRONMENT)
    async def on_environment_chosen(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        environment = (action.get("selected_option") or {}).get("value")
        work = handlers.refresh_modal(client, view=body["view"], environment=environment)
        handlers.spawn(work, respond=None, user=body["user"]["id"], channel=None)

    @app.view(ModalCallback.PAUSE)
    async def on_modal_submit(ack: AsyncAck, view: dict[str, Any]) -> None:
        try:
            checked = handlers.check_submission(view)
        except BadInput as exc:  # its private_metadata was tampered with or cut short
            await ack(response_action="errors", errors={ModalBlock.TARGET: exc.message})
            return
        if isinstance(checked, dict):
            await ack(response_action="errors", errors=checked)
            return
        command, context = checked
        if isinstance(command, BulkCommand):  # resolved before the ack: errors inline
            errors = await handlers.submit_bulk_modal(command, context)
            if errors:
                await ack(response_action="errors", errors=errors)
            else:
                await ack()
            return
        await ack()
        handlers.spawn(
            handlers.submit_modal(command, context),
            respond=None,
            user=context.user_id,
            channel=context.channel_id,
        )

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            user = event["user"]
            handlers.spawn(handlers.home_opened(user), respond=None, user=user, channel=None)

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond | None = None
    ) -> None:
        """Known errors become a message where the user is; unknown ones get an error id."""
        message = error_message(error)
        if respond is not None and _has_response_url(body):
            try:
                await respond(
                    response_type="ephemeral", replace_original=False, **message.to_dict()
                )
            except Exception as exc:  # Slack refused the answer: one line, no traceback
                log.warning("error_reply_failed", error=short_error(exc))


def _channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channel") or {}
    if isinstance(channel, dict) and channel.get("id"):
        return str(channel["id"])
    container = body.get("container") or {}
    value = container.get("channel_id")
    return str(value) if value else None


def _has_response_url(body: dict[str, Any]) -> bool:
    if body.get("response_url"):
        return True
    urls = body.get("response_urls") or []
    return bool(urls)


def _selected_environment(view: dict[str, Any]) -> str | None:
    """The environment currently chosen in the modal (typed input wins over the context)."""
    values = (view.get("state") or {}).get("values") or {}
    chosen = (values.get(ModalBlock.ENVIRONMENT) or {}).get(ModalAction.ENVIRONMENT) or {}
    option = chosen.get("selected_option")
    if option:
        return str(option["value"])
    try:
        return ModalContext.parse(view.get("private_metadata")).environment
    except BotError:
        return None
