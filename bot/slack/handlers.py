"""What each Slack interaction does, after the listener has acked and parsed it.

Listeners (``bot.slack.listeners``) stay thin: ack, parse, call one method here, which
calls the service and renders the answer with the pure builders.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Decision
from bot.domain.commands import (
    BulkCommand,
    Command,
    PauseCommand,
    ResumeCommand,
    TargetRef,
)
from bot.domain.errors import BadInput, BotError, DuplicateRequest, RateLimited
from bot.domain.grammar import parse_command
from bot.domain.models import TargetKind, TargetSummary, VersionSelector
from bot.domain.requests import Via
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.service.bulk import BatchPreview
from bot.slack import blocks, messages
from bot.slack.blocks import Message
from bot.slack.ids import ModalBlock
from bot.slack.inbound import clip
from bot.slack.metadata import ButtonValue, ModalContext, TargetChoice
from bot.slack.modal import parse_pause_submission, pause_modal, target_options
from bot.slack.notifier import SlackNotifier
from bot.slack.render import error_message, outcome_message

if TYPE_CHECKING:
    from bot.slack.bulk import BulkCards

log = structlog.get_logger(__name__)


Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_slash_text(text: str, *, now: datetime) -> Command | Message:
    """The typed command, or the error message to ack with (pure, fast: runs before ack)."""
    try:
        return parse_command(html.unescape(text or ""), now=now)
    except BadInput as exc:
        return error_message(exc)


class SlackHandlers:
    """The bot's Slack behaviour, one method per interaction."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        notifier: SlackNotifier,
        clock: Clock = _utcnow,
        metrics: Metrics | None = None,
        max_in_flight: int = 32,
        bulk: BulkCards | None = None,
    ) -> None:
        #: Bulk requests' cards and buttons (None: bulk outcomes answer as text).
        self.bulk = bulk
        self._metrics = metrics
        self._rt = runtime
        self.notifier = notifier
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        # Work after the ack waits for one of these slots: a burst of commands queues here
        # (cheaply) instead of piling thousands of calls into the HTTP pools and the
        # database, which would starve the event loop and so the acks.
        self._slots = asyncio.Semaphore(max_in_flight)

    # -- work after the ack ------------------------------------------------------------

    def spawn(
        self,
        work: Coroutine[Any, Any, None],
        *,
        respond: AsyncRespond | None,
        user: str,
        channel: str | None,
    ) -> None:
        """Run ``work`` after the ack, tracked; any failure reaches the user, never Bolt."""
        task = asyncio.create_task(self._guard(work, respond=respond, user=user, channel=channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(
        self,
        work: Coroutine[Any, Any, None],
        *,
        respond: AsyncRespond | None,
        user: str,
        channel: str | None,
    ) -> None:
        try:
            async with self._slots:
                await work
        except DuplicateRequest as exc:  # where the first one waits: a link to its card
            message = await self.duplicate_message(exc)
            await self._say_quietly(respond, message, user=user, channel=channel)
        except Exception as exc:  # a refusal, or an error id for anything unexpected
            await self._say_quietly(respond, error_message(exc), user=user, channel=channel)
        finally:
            work.close()  # never started (cancelled while queued): close it cleanly

    async def _say_quietly(
        self, respond: AsyncRespond | None, message: Message, *, user: str, channel: str | None
    ) -> None:
        try:
            await self._say_somewhere(respond, message, user=user, channel=channel)
        except Exception as exc:  # Slack refused the answer: one line, no traceback
            log.warning("error_reply_failed", error=short_error(exc))

    def busy(self) -> bool:
        """Whether requests are still being handled after their ack."""
        return bool(self._tasks)

    async def drain(self, within: float = 30.0) -> None:
        """Let work in flight finish (shutdown); what does not is recovered at next start."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    def now(self) -> datetime:
        return self._clock()

    async def once(
        self, key: str, work: Coroutine[Any, Any, None], *, respond: AsyncRespond
    ) -> None:
        """Run ``work`` unless this slash command was handled already: a replay or a
        duplicate delivery of the same command (its key, the trigger_id, is recorded in the
        database, so this holds in every process and after a restart). Checked after the
        ack, so the ack never waits for the database."""
        if not await self._rt.store.claim_event(key):
            work.close()
            log.warning("duplicate_command", key=clip(key))
            await self._say(respond, blocks.duplicate_command_message())
            return
        await work

    # -- /automation ---------------------------------------------------------------------

    async def run_command(
        self, command: Command, *, user: str, channel: str | None, respond: AsyncRespond
    ) -> None:
        """parse -> handle -> render: status/list/history/help answer ephemerally, a change
        posts its card (a refusal raises to :meth:`_guard`, which words it)."""
        self._count(str(command.verb), Via.COMMAND)
        await self._handle(command, user=user, via=Via.COMMAND, channel=channel, respond=respond)

    async def _handle(
        self,
        command: Command,
        *,
        user: str,
        via: Via,
        channel: str | None,
        respond: AsyncRespond | None,
    ) -> None:
        outcome = await self._rt.commands.handle(command, actor=user, via=via, channel=channel)
        if isinstance(outcome, BatchPreview) and self.bulk is not None and channel:
            return  # its card is on its way (the outbox): one card in the channel
        message = outcome_message(outcome)
        if message is not None:
            await self._say_somewhere(respond, message, user=user, channel=channel)

    async def duplicate_message(self, exc: DuplicateRequest) -> Message:
        """Where the first of two identical requests waits (a link to its card)."""
        link = None
        if exc.channel and exc.card_ts:
            link = await self.notifier.card_link(exc.channel, exc.card_ts)
        return blocks.duplicate_request_message(channel=exc.channel, link=link)

    # -- buttons -------------------------------------------------------------------------

    async def resume_request(
        self, value: str, *, user: str, channel: str | None, respond: AsyncRespond | None
    ) -> None:
        """ "Resume now" on a card or the Home tab: resume the target of that request."""
        original = await self._rt.store.get_request(_request_id(value))
        if original is None:
            raise BadInput("That request is no longer known to the bot.")
        spec = original.spec
        command = ResumeCommand(
            target=TargetRef(environment=spec.environment, kind=spec.kind, name=spec.key),
            versions=VersionSelector(
                version=None if spec.all_versions else spec.version,
                all_versions=spec.all_versions,
            ),
        )
        await self._handle(
            command,
            user=user,
            via=Via.BUTTON,
            channel=original.channel or channel,
            respond=respond,
        )

    async def let_it_end(self, value: str, *, user: str, respond: AsyncRespond) -> None:
        """'Let it end' on a reminder."""
        button = ButtonValue.parse(value)
        if button.request_id is None:
            raise BadInput("This button no longer points at a pause.")
        stopped = await self._rt.pauses.let_it_end(request_id=button.request_id, user=user)
        await self._say(respond, blocks.step_message(messages.let_it_end_answer(stopped)))

    async def choose_target(
        self, value: str, *, user: str, channel: str | None, respond: AsyncRespond
    ) -> None:
        """The picker: re-run the original command for the chosen target."""
        button = ButtonValue.parse(value)
        if button.command is None or button.kind is None or button.key is None:
            raise BadInput("This choice no longer carries its command; type it again.")
        command = parse_command(button.command, now=self.now())
        target = TargetRef(environment=button.environment, kind=button.kind, name=button.key)
        if not hasattr(command, "target"):
            raise BadInput("This choice no longer carries its command; type it again.")
        command = command.model_copy(update={"target": target})
        await respond(delete_original=True)
        await self.run_command(command, user=user, channel=channel, respond=respond)

    # -- approvals -------------------------------------------------------------------------

    async def vote(
        self,
        value: str,
        *,
        decision: Decision,
        user: str,
        channel: str | None,
        respond: AsyncRespond | None,
    ) -> None:
        """Approve / Deny on a card: the service decides; the voter alone hears why not."""
        request_id = _request_id(value)
        answer = await self._rt.commands.vote(
            request_id=request_id, voter=user, decision=decision, via=Via.BUTTON
        )
        self._count_vote(counted=answer.counted)
        if answer.refused is not None:
            said = messages.vote_refused_text(answer.refused)
            await self._say_somewhere(
                respond, blocks.error_message(said), user=user, channel=channel
            )

    async def reaction(self, event: dict[str, Any], *, added: bool) -> None:
        """A reaction added to (or removed from) a message: a vote if it is on a card (a
        request's or a batch's). What the reacting person alone should hear is said
        privately; the card and its thread show the rest."""
        item = event.get("item") or {}
        channel, ts = item.get("channel"), item.get("ts")
        user, reaction = event.get("user"), event.get("reaction")
        if item.get("type") != "message" or not (channel and ts and user and reaction):
            return
        commands = self._rt.commands
        if not added:
            await commands.unreact(channel=channel, card_ts=ts, user=user, reaction=reaction)
            return
        answer = await commands.react(channel=channel, card_ts=ts, user=user, reaction=reaction)
        if answer is None:
            return
        self._count_vote(counted=answer.counted)
        if answer.tell is not None:
            await self.notifier.ephemeral(
                channel=channel,
                user=user,
                message=blocks.error_message(messages.vote_refused_text(answer.tell)),
            )

    async def request_again(
        self, value: str, *, user: str, channel: str | None, respond: AsyncRespond | None
    ) -> None:
        """Request again on an expired or denied card: the same request, asked anew."""
        await self._rt.approvals.request_again(
            request_id=_request_id(value), requester=user, via=Via.BUTTON
        )

    # -- the pause modal -----------------------------------------------------------------

    def modal_view(
        self,
        context: ModalContext,
        *,
        selected: TargetSummary | None = None,
        selected_kind: TargetKind | None = None,
    ) -> dict[str, Any]:
        config = self._rt.config
        return pause_modal(
            context=context,
            environments=list(config.environments),
            default_environment=config.default_environment,
            selected=selected,
            selected_kind=selected_kind,
        )

    def modal_context(
        self, *, user: str, channel: str | None, thread_ts: str | None = None, value: str | None
    ) -> ModalContext:
        """The modal's context; a button's target (if any) prefills it."""
        button: ButtonValue | None = None
        if value:
            with contextlib.suppress(BadInput):  # a button without a target: an empty modal
                button = ButtonValue.parse(value)
        return ModalContext(
            user_id=user,
            channel_id=channel,
            thread_ts=thread_ts,
            environment=button.environment if button else None,
            kind=button.kind if button else None,
            key=button.key if button else None,
            name=button.name if button else None,
            version=button.version if button else None,
        )

    async def open_modal(
        self, client: AsyncWebClient, *, trigger_id: str, context: ModalContext
    ) -> None:
        try:
            await client.views_open(trigger_id=trigger_id, view=self.modal_view(context))
        except SlackApiError as exc:
            code = exc.response.get("error") if exc.response is not None else None
            if code not in _TOO_BUSY_FOR_MODAL:
                raise
            # Slack throttled views.open past the client's retries, or until the click's
            # trigger_id (valid 3 s) ran out: the user can only ask again.
            log.warning("modal_not_opened", error=code)
            raise RateLimited(
                "Slack was too busy to open the form in time", provider="Slack", code=code
            ) from exc

    async def target_suggestions(self, *, environment: str | None, query: str) -> dict[str, Any]:
        """The options of the target picker (must answer inside 3 s)."""
        env = self._rt.config.environment(environment)[0]
        found = await self._rt.operations.search(env, query, limit=100)
        return target_options(found, environment=env)

    async def refresh_modal(
        self,
        client: AsyncWebClient,
        *,
        view: dict[str, Any],
        environment: str | None = None,
        chosen: str | None = None,
    ) -> None:
        """Redraw the modal after the environment or the target changed."""
        context = ModalContext.parse(view.get("private_metadata"))
        selected = None
        if environment is not None:
            context = context.model_copy(
                update={"environment": environment, "kind": None, "key": None}
            )
        if chosen is not None:
            choice = TargetChoice.parse(chosen)
            context = context.model_copy(
                update={"environment": choice.environment, "kind": choice.kind, "key": choice.key}
            )
            selected = TargetSummary(
                kind=choice.kind, key=choice.key, name=choice.key, id=choice.key
            )
        await client.views_update(
            view_id=view["id"],
            hash=view.get("hash"),
            view=self.modal_view(context, selected=selected),
        )

    def check_submission(
        self, view: dict[str, Any]
    ) -> tuple[PauseCommand | BulkCommand, ModalContext] | dict[str, str]:
        """Validate a modal submission (pure and fast: runs before the ack)."""
        context = ModalContext.parse(view.get("private_metadata"))
        values = view.get("state", {}).get("values", {})
        parsed = parse_pause_submission(values, context=context, now=self.now())
        if isinstance(parsed, dict):
            return parsed
        return parsed, context

    def _modal_channel(self, environment: str | None, context: ModalContext) -> str:
        _, env = self._rt.config.environment(environment)
        return context.channel_id or env.notify_channel or context.user_id

    async def submit_bulk_modal(
        self, command: BulkCommand, context: ModalContext
    ) -> dict[str, str] | None:
        """A pattern from the form ("every target matching"): resolved before the ack, so a
        pattern that matches nothing is an inline error and the form stays as typed. Errors
        to show inline (``{block_id: message}``), or None: the preview card follows. A
        resolution slower than the ack allows carries on after the ack, as a command does."""
        self._count(str(command.verb), Via.MODAL)
        channel = self._modal_channel(command.pattern.environment, context)
        preview = asyncio.ensure_future(
            self._rt.commands.handle(command, actor=context.user_id, via=Via.MODAL, channel=channel)
        )
        done, _ = await asyncio.wait({preview}, timeout=MODAL_PREVIEW_BUDGET)
        if done:
            error = preview.exception()
            if isinstance(error, BotError):
                return {ModalBlock.PATTERN: error.user_message()}

        async def post() -> None:
            outcome = await preview
            if isinstance(outcome, BatchPreview) and self.bulk is not None:
                return  # its card is on its way (the outbox)
            message = outcome_message(outcome)
            if message is not None:
                await self._say_somewhere(None, message, user=context.user_id, channel=channel)

        self.spawn(post(), respond=None, user=context.user_id, channel=channel)
        return None

    async def submit_modal(self, command: PauseCommand, context: ModalContext) -> None:
        self._count(str(command.verb), Via.MODAL)
        channel = self._modal_channel(command.target.environment, context)
        try:
            await self._handle(
                command, user=context.user_id, via=Via.MODAL, channel=channel, respond=None
            )
        except DuplicateRequest as exc:
            await self._say_somewhere(
                None, await self.duplicate_message(exc), user=context.user_id, channel=channel
            )
        except BotError as exc:  # said where the card would have gone
            await self._say_somewhere(
                None, error_message(exc), user=context.user_id, channel=channel
            )

    # -- home ------------------------------------------------------------------------------

    async def home_opened(self, user: str) -> None:
        await self.notifier.publish_home(user)

    # -- helpers ---------------------------------------------------------------------------

    def _count_vote(self, *, counted: bool) -> None:
        if self._metrics is not None:
            self._metrics.approvals.labels(outcome="counted" if counted else "not_counted").inc()

    def _count(self, verb: str, via: Via) -> None:
        if self._metrics is not None:
            self._metrics.commands.labels(verb=verb, via=via.value).inc()

    @staticmethod
    async def _say(respond: AsyncRespond, message: Message) -> None:
        await respond(response_type="ephemeral", replace_original=False, **message.to_dict())

    async def _say_somewhere(
        self, respond: AsyncRespond | None, message: Message, *, user: str, channel: str | None
    ) -> None:
        """Ephemeral through response_url when there is one, else in the channel."""
        if respond is not None:
            await self._say(respond, message)
            return
        if channel:
            await self.notifier.ephemeral(channel=channel, user=user, message=message)
            return
        log.warning("no_place_to_answer", user=user, text=message.text)


#: Seconds a form's pattern may take to resolve before the ack (Slack waits 3 s).
MODAL_PREVIEW_BUDGET = 2.0

#: views.open errors that mean "Slack was busy": rate limited, or the trigger_id expired
#: while the client waited out a 429.
_TOO_BUSY_FOR_MODAL = frozenset({"ratelimited", "expired_trigger_id"})


def short_error(exc: BaseException) -> str:
    """An error in a few words for a log line (a Slack API error by its code)."""
    if isinstance(exc, SlackApiError):
        code = exc.response.get("error") if exc.response is not None else None
        return f"SlackApiError: {clip(code)}"
    return f"{type(exc).__name__}: {clip(str(exc))}"


def _request_id(value: str) -> str:
    """The request a card button points at (BadInput for anything else)."""
    request_id = ButtonValue.parse(value).request_id
    if request_id is None:
        raise BadInput("This button no longer points at a request.")
    return request_id
