"""What an outbox row says, and how it becomes a Slack message when it is sent.

A row keeps what to render (``{"type": ..., "data": ..., "request": ...}``): an
:mod:`event <bot.domain.events>` and the request as it was when the event happened, never
the wording. This module is the one place that writes and reads those payloads;
:func:`thread_message` (a thread reply) and :func:`notice_line` (a notify-channel line)
are the functions that word them, through :mod:`bot.slack.messages`, when they are sent.
A batch's rows name the batch instead (``batch_id``): its card to post or edit, drawn from
the store when sent, and its thread notes (the ending batch of a timed pause as it ended).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from bot.domain.approvals import ApprovalView
from bot.domain.bulk import Batch, PlanSummary
from bot.domain.events import EVENTS, Event
from bot.domain.requests import OperationRequest
from bot.slack import blocks, messages
from bot.slack.bulk_blocks import end_note


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: OperationRequest


class EventPayload(_Payload):
    """Something that happened to the request: a thread reply, maybe a notice too."""

    type: Literal["event"] = "event"
    data: Event

    @field_serializer("data")
    def _dump_event(self, event: Event) -> Any:
        return EVENTS.dump_python(event, mode="json")

    @field_validator("data", mode="before")
    @classmethod
    def _load_event(cls, raw: Any) -> Any:
        return EVENTS.validate_python(raw)


class MessageData(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    blocks: list[dict[str, Any]]


class MessagePayload(_Payload):
    """A thread reply worded by the caller (an answer in the thread, not an event)."""

    type: Literal["message"] = "message"
    data: MessageData


class NoticeData(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str


class NoticePayload(_Payload):
    """A notice line given as text (``SlackNotifier.announce``)."""

    type: Literal["notice"] = "notice"
    data: NoticeData


class CardData(BaseModel):
    model_config = ConfigDict(frozen=True)

    approval: ApprovalView | None = None


class CardPayload(_Payload):
    """An edit of the request's card (drawn from the store when it is sent)."""

    type: Literal["card"] = "card"
    data: CardData


class BatchCardPayload(BaseModel):
    """A batch's card to post or edit (drawn from the store when it is sent); a post shows
    its preview's plan."""

    model_config = ConfigDict(frozen=True)

    type: Literal["batch_card"] = "batch_card"
    batch_id: str
    plan: PlanSummary | None = None


class BatchEndPayload(BaseModel):
    """The note in a batch's thread when its timed pause ended (``ending`` as it ended)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["batch_end"] = "batch_end"
    batch_id: str
    ending: Batch


class BatchMessagePayload(BaseModel):
    """A note in a batch's thread worded by the caller."""

    model_config = ConfigDict(frozen=True)

    type: Literal["batch_message"] = "batch_message"
    batch_id: str
    data: MessageData


def batch_card_payload(batch_id: str, plan: PlanSummary | None = None) -> dict[str, Any]:
    return BatchCardPayload(batch_id=batch_id, plan=plan).model_dump(mode="json")


def read_batch_card(payload: dict[str, Any]) -> BatchCardPayload:
    return BatchCardPayload.model_validate(payload)


def batch_end_payload(batch_id: str, ending: Batch) -> dict[str, Any]:
    return BatchEndPayload(batch_id=batch_id, ending=ending).model_dump(mode="json")


def batch_message_payload(batch_id: str, message: blocks.Message) -> dict[str, Any]:
    data = MessageData(text=message.text, blocks=message.blocks)
    return BatchMessagePayload(batch_id=batch_id, data=data).model_dump(mode="json")


def event_payload(request: OperationRequest, event: Event) -> dict[str, Any]:
    return EventPayload(request=request, data=event).model_dump(mode="json")


def message_payload(request: OperationRequest, message: blocks.Message) -> dict[str, Any]:
    data = MessageData(text=message.text, blocks=message.blocks)
    return MessagePayload(request=request, data=data).model_dump(mode="json")


def notice_payload(request: OperationRequest, text: str) -> dict[str, Any]:
    return NoticePayload(request=request, data=NoticeData(text=text)).model_dump(mode="json")


def card_payload(request: OperationRequest, approval: ApprovalView | None) -> dict[str, Any]:
    payload = CardPayload(request=request, data=CardData(approval=approval))
    return payload.model_dump(mode="json")


def read_card(payload: dict[str, Any]) -> CardPayload:
    return CardPayload.model_validate(payload)


def thread_message(payload: dict[str, Any]) -> blocks.Message:
    """The Slack message of a thread reply's payload."""
    match payload.get("type"):
        case "message":
            given = MessagePayload.model_validate(payload)
            return blocks.Message(text=given.data.text, blocks=list(given.data.blocks))
        case "batch_message":
            note = BatchMessagePayload.model_validate(payload)
            return blocks.Message(text=note.data.text, blocks=list(note.data.blocks))
        case "batch_end":
            ended = BatchEndPayload.model_validate(payload)
            return end_note(ended.ending)
    stored = EventPayload.model_validate(payload)
    return messages.render(stored.data, stored.request)


def notice_line(payload: dict[str, Any]) -> tuple[OperationRequest, str]:
    """The request a notice is about and its line of text."""
    if payload.get("type") == "notice":
        given = NoticePayload.model_validate(payload)
        return given.request, given.data.text
    stored = EventPayload.model_validate(payload)
    text = messages.notice_text(stored.data)
    return stored.request, text if text is not None else type(stored.data).__name__
