"""What Slack shows for an outcome of :mod:`bot.service.commands`, and for an error: the one
place in the Slack front end where a :class:`BotError` becomes a message (pure, apart from
logging an unexpected error under its id)."""

from __future__ import annotations

import uuid

import structlog

from bot.domain.errors import BadInput, BotError
from bot.domain.grammar import format_command
from bot.service.bulk import BatchDone, BatchPreview, BatchProgress, BatchStarted
from bot.service.commands import (
    FormNeeded,
    HelpOutcome,
    HistoryOutcome,
    ListOutcome,
    Outcome,
    PickTarget,
    StatusOutcome,
    SubmittedRequest,
)
from bot.slack import blocks
from bot.slack.blocks import Message

log = structlog.get_logger(__name__)


def outcome_message(outcome: Outcome) -> Message | None:
    """The answer to the person who asked (ephemeral); None when the answer is elsewhere:
    a change's card in the channel, or the pause form (opened before the ack)."""
    match outcome:
        case StatusOutcome(state=state):
            return blocks.status_message(state)
        case ListOutcome(states=states, watched=watched, at=at):
            return blocks.list_message(states, title=outcome.title, watched=watched, now=at)
        case HistoryOutcome(label=label, events=events):
            return blocks.history_message(label, events)
        case HelpOutcome(topic=topic):
            return blocks.help_message(topic)
        case PickTarget(command=command, error=error):
            return blocks.picker_message(
                error.matches,
                original_text=format_command(command),
                query=error.query,
                environment=error.environment,
            )
        case SubmittedRequest() | FormNeeded():
            return None
        case BatchPreview() | BatchStarted() | BatchProgress() | BatchDone():
            # until bulk cards exist in Slack: the console's text, as one step message
            from bot import render

            return blocks.step_message(f"```{render.outcome_text(outcome)}```")


def error_message(error: BaseException) -> Message:
    """A refusal in one sentence (bad input's usage line shown once, below it); anything
    else is logged with an error id, and the user gets that id."""
    if isinstance(error, BadInput):
        return blocks.error_message(error.message, error.usage)
    if isinstance(error, BotError):
        log.info("user_error", error=error.user_message(), verb=error.verb, target=error.target)
        return blocks.error_message(error.user_message())
    error_id = uuid.uuid4().hex[:10]
    log.error("unhandled_error", error_id=error_id, exc_info=error)
    return blocks.error_message(
        f"Something went wrong on our side (error id {error_id}). "
        "What was recorded is safe; check the card or try again."
    )
