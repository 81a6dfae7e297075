"""Bulk requests in Slack: the batch card posted in the channel and edited in place
(preview -> approval -> progress -> result table), its buttons, and the timed end's note.

Everything a batch shows goes through the Slack outbox (DESIGN §6), written in the store
transaction of the change it reports (:class:`BulkCards` is the bulk service's
:class:`~bot.service.bulk.BatchListener`): the preview card is a post drawn from the store
when it is sent (once, even when a process dies around it: its ts is stored then), and
every change after it only says "the card of batch X is stale": the edit draws the batch
as stored when it is sent, a card has at most one edit waiting, so only its latest state
is sent and it always ends in its final state. Progress marks the card stale at most once
every ``edit_every`` seconds per batch (Slack: about 50 ``chat.update`` a minute); the
final edit comes with the batch's last status change.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.domain.approvals import Decision
from bot.domain.bulk import (
    Batch,
    BatchChanged,
    BatchEnded,
    BatchEvent,
    BatchPreviewed,
    BatchProgressed,
    BatchReactionIgnored,
    BatchStatus,
    PlanSummary,
)
from bot.domain.requests import Via
from bot.runtime import Runtime
from bot.slack import blocks, messages, outbox_payloads
from bot.slack.bulk_blocks import batch_card
from bot.slack.ids import BulkAction
from bot.slack.notifier import SlackNotifier

log = structlog.get_logger(__name__)

#: Seconds between two progress edits of one card (Slack: about 50 chat.update a minute).
EDIT_EVERY = 1.5


class BulkCards:
    """The Slack side of bulk requests: the use cases the card's buttons and reactions
    call, and the batch's card and thread as the bulk service's listener."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        notifier: SlackNotifier,
        edit_every: float = EDIT_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._notifier = notifier
        self._edit_every = edit_every
        self._monotonic = monotonic
        # batch id -> when progress last marked its card stale (here)
        self._progressed: dict[str, float] = {}

    def attach(self) -> None:
        """Hear every batch's events and draw batch cards for the outbox sender."""
        self._rt.bulk.listener = self
        self._notifier.batch_cards = self

    # -- the card and thread (BatchListener; notifier.BatchCards) ------------------------

    async def batch_event(self, batch: Batch, event: BatchEvent) -> None:
        """Write what ``event`` shows to the outbox (in the caller's transaction)."""
        match event:
            case BatchPreviewed(plan=plan):
                await self._notifier.post_batch_card(batch, plan)
            case BatchProgressed():
                now = self._monotonic()
                last = self._progressed.get(batch.id)
                if last is not None and now - last < self._edit_every:
                    return  # coalesced: a later edit shows newer counts, the last one all
                self._progressed[batch.id] = now
                await self._notifier.update_batch_card(batch)
            case BatchChanged(status=status):
                if status is not BatchStatus.EXECUTING:
                    self._progressed.pop(batch.id, None)
                await self._notifier.update_batch_card(batch)
                if status is BatchStatus.DONE:  # what it holds changed: Home tabs show holds
                    await self._rt.store.when_committed(self._notifier.refresh_homes)
            case BatchEnded(ending=ending):
                payload = outbox_payloads.batch_end_payload(batch.id, ending)
                await self._notifier.batch_reply(batch, payload)
                await self._notifier.update_batch_card(batch)
            case BatchReactionIgnored(actor=actor):
                note = messages.reaction_ignored_reply(actor, batch.environment)
                await self._notifier.batch_reply(
                    batch, outbox_payloads.batch_message_payload(batch.id, note)
                )

    async def card(
        self, batch_id: str, plan: PlanSummary | None
    ) -> tuple[Batch, blocks.Message] | None:
        """The batch's card as the store holds the batch now (None: no such batch)."""
        batch = await self._rt.bulk.batches.get(batch_id)
        if batch is None:
            return None
        environment = batch.environment
        production = self._rt.operations.environment(environment).production
        required = self._rt.bulk.required_approvals(environment)
        return batch, batch_card(batch, production=production, plan=plan, required=required)

    async def card_posted(self, batch_id: str, channel: str, ts: str) -> None:
        await self._rt.bulk.batches.set_card(batch_id, channel=channel, card_ts=ts)

    # -- use cases (buttons, reactions) ---------------------------------------------------

    async def clicked(self, batch_id: str, card: tuple[str, str] | None) -> None:
        """A button on the card was clicked: remember where the card is, should the click
        have come before the post's ts was stored (the card is then edited all the same)."""
        if card is None:
            return
        batch = await self._rt.bulk.batches.get(batch_id)
        if batch is not None and batch.card_ts is None and batch.channel == card[0]:
            await self._rt.bulk.batches.set_card(batch_id, channel=card[0], card_ts=card[1])

    async def confirm(
        self, batch_id: str, *, user: str, card: tuple[str, str] | None = None
    ) -> None:
        """Confirm: the card shows the approval it waits for, or a progress bar edited in
        place while the batch runs, then the result table."""
        await self.clicked(batch_id, card)
        await self._rt.commands.confirm_batch(batch_id, actor=user, via=Via.BUTTON)

    async def cancel(
        self, batch_id: str, *, user: str, card: tuple[str, str] | None = None
    ) -> None:
        await self.clicked(batch_id, card)
        await self._rt.commands.cancel_batch(batch_id, actor=user)

    async def vote(self, batch_id: str, *, user: str, decision: Decision) -> str | None:
        """Approve / Deny: what the voter alone should hear (None: nothing)."""
        answer = await self._rt.commands.vote_batch(
            batch_id=batch_id, voter=user, decision=decision, via=Via.BUTTON
        )
        return messages.vote_refused_text(answer.refused) if answer.refused else None

    async def resume(self, batch_id: str, *, user: str, channel: str | None) -> None:
        """Resume batch: a new preview card for putting back exactly what it paused."""
        source = await self._rt.bulk.batches.get(batch_id)
        where = channel or (source.channel if source is not None else None)
        await self._rt.bulk.preview_resume(batch_id, actor=user, via=Via.BUTTON, channel=where)


# -- the card's buttons: parse -> call -> render ------------------------------------------


def _card(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """Where the clicked card is (channel, ts), as the click says."""
    channel = (body.get("channel") or {}).get("id")
    ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
    return (str(channel), str(ts)) if channel and ts else None


#: What a button does: (cards, batch id, user, the click's body) -> what the clicker alone
#: should hear (None: nothing; the card shows the rest).
ButtonCommand = Callable[[BulkCards, str, str, Mapping[str, Any]], Awaitable[str | None]]


async def _confirm(cards: BulkCards, batch: str, user: str, body: Mapping[str, Any]) -> None:
    await cards.confirm(batch, user=user, card=_card(body))


async def _cancel(cards: BulkCards, batch: str, user: str, body: Mapping[str, Any]) -> None:
    await cards.cancel(batch, user=user, card=_card(body))


async def _approve(cards: BulkCards, batch: str, user: str, body: Mapping[str, Any]) -> str | None:
    return await cards.vote(batch, user=user, decision=Decision.APPROVE)


async def _deny(cards: BulkCards, batch: str, user: str, body: Mapping[str, Any]) -> str | None:
    return await cards.vote(batch, user=user, decision=Decision.DENY)


async def _resume(cards: BulkCards, batch: str, user: str, body: Mapping[str, Any]) -> None:
    await cards.resume(batch, user=user, channel=(body.get("channel") or {}).get("id"))


BUTTONS: Final[Mapping[str, ButtonCommand]] = {
    BulkAction.CONFIRM: _confirm,
    BulkAction.CANCEL: _cancel,
    BulkAction.APPROVE: _approve,
    BulkAction.DENY: _deny,
    BulkAction.RESUME: _resume,
}


def register_bulk(app: AsyncApp, cards: BulkCards, spawn: Callable[..., None]) -> None:
    """The bulk card's buttons: ack, then the work after the ack (``spawn``)."""

    async def on_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        command = BUTTONS[str(action.get("action_id"))]
        batch_id = str(action.get("value", ""))

        async def work() -> None:
            private = await command(cards, batch_id, user, body)
            if private:
                await respond(
                    response_type="ephemeral",
                    replace_original=False,
                    **blocks.error_message(private).to_dict(),
                )

        spawn(work(), respond=respond, user=user, channel=channel)

    for action_id in BUTTONS:
        app.action(action_id)(on_button)
