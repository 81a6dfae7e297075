"""What an outbox row says, and how it becomes a Slack message when it is sent.

A row keeps what to render (``{"type": ..., "data": ..., "request": ...}``), never the
rendered text: the wording is decided when the message goes out. This module is the one
place that writes and reads those payloads; :func:`thread_message` is the one function
that turns a thread reply's payload into Slack text.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bot.domain.approvals import ApprovalView
from bot.domain.requests import OperationRequest
from bot.service.notify import Note, NoteKind
from bot.slack import blocks


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: OperationRequest


class NotePayload(_Payload):
    """A reply in the request's thread."""

    type: Literal["note"] = "note"
    data: Note


class NoticeData(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str


class NoticePayload(_Payload):
    """A notice in a notify channel, linking to the request's thread."""

    type: Literal["notice"] = "notice"
    data: NoticeData


class CardData(BaseModel):
    model_config = ConfigDict(frozen=True)

    approval: ApprovalView | None = None


class CardPayload(_Payload):
    """An edit of the request's card (drawn from the store when it is sent)."""

    type: Literal["card"] = "card"
    data: CardData


def note_payload(request: OperationRequest, note: Note) -> dict[str, Any]:
    return NotePayload(request=request, data=note).model_dump(mode="json")


def notice_payload(request: OperationRequest, text: str) -> dict[str, Any]:
    return NoticePayload(request=request, data=NoticeData(text=text)).model_dump(mode="json")


def card_payload(request: OperationRequest, approval: ApprovalView | None) -> dict[str, Any]:
    payload = CardPayload(request=request, data=CardData(approval=approval))
    return payload.model_dump(mode="json")


def read_note(payload: dict[str, Any]) -> NotePayload:
    return NotePayload.model_validate(payload)


def read_notice(payload: dict[str, Any]) -> NoticePayload:
    return NoticePayload.model_validate(payload)


def read_card(payload: dict[str, Any]) -> CardPayload:
    return CardPayload.model_validate(payload)


def thread_message(payload: dict[str, Any]) -> blocks.Message:
    """The Slack message of a thread reply's payload."""
    stored = read_note(payload)
    return note_message(stored.request, stored.data)


def note_message(request: OperationRequest, note: Note) -> blocks.Message:
    """How a note reads in the request's thread."""
    match note.kind:
        case NoteKind.EXECUTING:
            return blocks.executing_reply(request)
        case NoteKind.RESULT:
            return blocks.result_reply(request)
        case NoteKind.PROGRESS:
            return blocks.progress_reply(note.done or 0, note.total or 0, note.text, noun=note.noun)
        case NoteKind.APPROVAL_NEEDED:
            return blocks.approval_needed_reply(
                request, required=note.total, approval=note.approval
            )
        case NoteKind.VOTE:
            return blocks.vote_reply(
                note.actor or "someone", note.decision or "", done=note.done, total=note.total
            )
        case NoteKind.DECISION:
            return blocks.decision_reply(note.actor, note.decision, note.text)
        case NoteKind.INFO:
            return blocks.info_reply(note.actor, note.text)
        case NoteKind.REMINDER:
            return blocks.reminder_reply(request, note.text)
        case _:
            return blocks.step_message(note.text)
