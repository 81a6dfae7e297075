"""The Notifier port: how the service tells people what happened (Slack, console, nothing).

The service speaks in domain terms (a request changed, a note for its thread); each
adapter renders them its own way. Implementations must not block the caller for long and
should raise only for failures the caller can do nothing about (they are logged).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from bot.domain.approvals import ApprovalView
from bot.domain.requests import OperationRequest


class NoteKind(StrEnum):
    EXECUTING = "executing"  # "Pausing staging/journey:welcome v3…"
    RESULT = "result"  # the verified outcome, or the failure
    PROGRESS = "progress"  # "pausing 3 of 5 versions…"
    APPROVAL_NEEDED = "approval_needed"  # who must approve, how many, until when
    VOTE = "vote"  # "<@U> approved (1 of 2)" / denied / withdrew
    DECISION = "decision"  # approved, denied or expired: what happens now
    REMINDER = "reminder"  # "the pause ends in 1h" with Resume now / Extend / Let it end
    INFO = "info"  # anything else worth a line in the thread


class Note(BaseModel):
    """One reply in a request's thread."""

    model_config = ConfigDict(frozen=True)

    kind: NoteKind
    text: str = ""
    done: int | None = None
    total: int | None = None
    noun: str = "versions"
    actor: str | None = None  # a Slack user id (votes, decisions)
    # VOTE: approve | deny | withdraw-approve | withdraw-deny; DECISION: approved | denied | expired
    decision: str | None = None
    approval: ApprovalView | None = None  # APPROVAL_NEEDED: who, how many, until when


class CardRef(BaseModel):
    """Where a request's card (and so its thread) lives."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str


class Notifier(Protocol):
    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        """Post the request's card; None when the request has no channel to post in."""
        ...

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        """Edit the card in place to show the request (and its approval) as it is now."""
        ...

    async def reply(self, request: OperationRequest, note: Note) -> None:
        """Add a reply to the card's thread."""
        ...


class NullNotifier:
    """Tells nobody (CLI use, tests)."""

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        return None

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        return None

    async def reply(self, request: OperationRequest, note: Note) -> None:
        return None
