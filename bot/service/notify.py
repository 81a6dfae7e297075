"""The Notifier port: how the service tells people what happened (Slack, console, nothing).

The service speaks in domain terms: a request changed (its card) and what happened to it
(an :mod:`event <bot.domain.events>`); each adapter words them its own way and decides
where they go (a card's thread, a notify channel). The service publishes an event in the
same store transaction as the change it reports (``Store.atomic``), so :meth:`publish`
must not wait for a slow party: it queues. Implementations raise only for failures the
caller can do nothing about (they are logged).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from bot.domain.approvals import ApprovalView
from bot.domain.events import Event
from bot.domain.requests import OperationRequest


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

    async def publish(self, request: OperationRequest, event: Event) -> None:
        """Tell people what happened to ``request``: a reply in its card's thread and, for
        the events the adapter subscribes to, a notice elsewhere. Queues; never waits for
        delivery (it runs inside the transaction of the change it reports)."""
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

    async def publish(self, request: OperationRequest, event: Event) -> None:
        return None
