"""Bulk requests in Slack: the batch card posted in the channel and edited in place
(preview -> approval -> progress -> result table), its buttons, and the timed end's note.

Card edits during execution are coalesced: at most one every ``edit_every`` seconds (the
latest counts), then the final table; every edit goes through the notifier's per-channel
pacer, in order, so the card always ends in its final state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Decision
from bot.domain.bulk import Batch, BatchPlan, BatchStatus, Progress
from bot.domain.requests import Via
from bot.runtime import Runtime
from bot.service.bulk import BatchPreview, BatchVote
from bot.slack import blocks, messages
from bot.slack.bulk_blocks import batch_card, end_note
from bot.slack.ids import BulkAction
from bot.slack.notifier import SlackNotifier

log = structlog.get_logger(__name__)

#: Seconds between two progress edits of one card (Slack: about 50 chat.update a minute).
EDIT_EVERY = 1.5


class BulkCards:
    """The Slack side of bulk requests."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        client: AsyncWebClient,
        notifier: SlackNotifier,
        edit_every: float = EDIT_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._client = client
        self._notifier = notifier
        self._edit_every = edit_every
        self._monotonic = monotonic

    def _production(self, batch: Batch) -> bool:
        return self._rt.operations.environment(batch.environment).production

    async def post_preview(self, preview: BatchPreview) -> None:
        """Post the preview card in the batch's channel (and remember where it is)."""
        batch = preview.batch
        if not batch.channel:
            return
        message = batch_card(batch, production=preview.production, plan=preview.plan)
        channel = batch.channel
        response = await self._notifier.posts.post(
            channel,
            lambda: self._client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks
            ),
        )
        await self._rt.bulk.batches.set_card(
            batch.id, channel=str(response["channel"]), card_ts=str(response["ts"])
        )

    def _edit(self, batch: Batch, message: blocks.Message) -> asyncio.Future[Any] | None:
        if not (batch.channel and batch.card_ts):
            return None
        channel, ts = batch.channel, batch.card_ts
        return self._notifier.edits.submit(
            channel,
            lambda: self._client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            ),
        )

    async def clicked(self, batch_id: str, card: tuple[str, str] | None) -> None:
        """A button on the card was clicked: remember where the card is, should the click
        have come before the post's answer did (the card is then edited all the same)."""
        if card is None:
            return
        batch = await self._rt.bulk.batches.get(batch_id)
        if batch is not None and batch.card_ts is None and batch.channel == card[0]:
            await self._rt.bulk.batches.set_card(batch_id, channel=card[0], card_ts=card[1])

    async def show(self, batch_id: str, *, plan: BatchPlan | None = None) -> None:
        """Edit the card to show the batch as stored now (waits for the edit)."""
        batch = await self._rt.bulk.batches.get(batch_id)
        if batch is None:
            return
        future = self._edit(batch, batch_card(batch, production=self._production(batch), plan=plan))
        if future is not None:
            await future
        if batch.status is BatchStatus.DONE:  # what it holds changed: Home tabs show holds
            await self._notifier.refresh_homes()

    async def confirm(
        self, batch_id: str, *, user: str, card: tuple[str, str] | None = None
    ) -> None:
        """Confirm: the card shows the approval it waits for, or a progress bar edited in
        place while the batch runs, then the result table."""
        await self.clicked(batch_id, card)
        last = -self._edit_every

        async def progress(batch: Batch, counts: Progress) -> None:
            nonlocal last
            now = self._monotonic()
            if now - last < self._edit_every:
                return  # coalesced: a later edit shows newer counts
            last = now
            working = batch.model_copy(update={"status": BatchStatus.EXECUTING})
            self._edit(working, batch_card(working, production=False, progress=counts))

        try:
            await self._rt.commands.confirm_batch(
                batch_id, actor=user, via=Via.BUTTON, progress=progress
            )
        finally:
            await self.show(batch_id)

    async def cancel(
        self, batch_id: str, *, user: str, card: tuple[str, str] | None = None
    ) -> None:
        await self.clicked(batch_id, card)
        await self._rt.commands.cancel_batch(batch_id, actor=user)
        await self.show(batch_id)

    async def vote(self, batch_id: str, *, user: str, decision: Decision) -> str | None:
        """Approve / Deny: what the voter alone should hear (None: nothing)."""
        last = -self._edit_every

        async def progress(batch: Batch, counts: Progress) -> None:
            nonlocal last
            now = self._monotonic()
            if now - last < self._edit_every:
                return
            last = now
            working = batch.model_copy(update={"status": BatchStatus.EXECUTING})
            self._edit(working, batch_card(working, production=True, progress=counts))

        try:
            answer = await self._rt.commands.vote_batch(
                batch_id=batch_id, voter=user, decision=decision, via=Via.BUTTON, progress=progress
            )
        finally:
            await self.show(batch_id)
        return messages.vote_refused_text(answer.refused) if answer.refused else None

    async def reaction(
        self, *, channel: str, card_ts: str, user: str, reaction: str
    ) -> BatchVote | None:
        """A reaction on a batch's card, as a vote (None: not a batch card, or not an
        approval emoji). Like on a request card, a non-approver's reaction is noted once in
        the card's thread, and a requester reacting on their own batch is told privately."""
        last = -self._edit_every

        async def progress(batch: Batch, counts: Progress) -> None:
            nonlocal last
            now = self._monotonic()
            if now - last < self._edit_every:
                return
            last = now
            working = batch.model_copy(update={"status": BatchStatus.EXECUTING})
            self._edit(working, batch_card(working, production=True, progress=counts))

        answer = await self._rt.bulk.vote_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction, progress=progress
        )
        if answer is None:
            return None
        batch = answer.batch
        await self.show(batch.id)
        refused = answer.refused
        if refused is None:
            return answer
        if refused.why == "not_an_approver":
            if await self._rt.store.claim_event(f"ignored-reaction:batch:{batch.id}:{user}"):
                note = messages.reaction_ignored_reply(user, batch.environment)
                await self._notifier.posts.post(
                    channel,
                    lambda: self._client.chat_postMessage(
                        channel=channel, thread_ts=card_ts, text=note.text, blocks=note.blocks
                    ),
                )
        elif batch.requested_by == user and batch.status is BatchStatus.AWAITING_APPROVAL:
            await self._notifier.ephemeral(
                channel=channel,
                user=user,
                message=blocks.error_message(messages.vote_refused_text(refused)),
            )
        return answer

    async def withdraw(self, *, channel: str, card_ts: str, user: str, reaction: str) -> bool:
        """A reaction removed from a batch's card: its vote withdrawn (True), card edited."""
        batch = await self._rt.bulk.withdraw_by_reaction(
            channel=channel, card_ts=card_ts, voter=user, reaction=reaction
        )
        if batch is None:
            return False
        await self.show(batch.id)
        return True

    async def resume(self, batch_id: str, *, user: str, channel: str | None) -> None:
        """Resume batch: a new preview card for putting back exactly what it paused."""
        source = await self._rt.bulk.batches.get(batch_id)
        where = channel or (source.channel if source is not None else None)
        batch, plan = await self._rt.bulk.preview_resume(
            batch_id, actor=user, via=Via.BUTTON, channel=where
        )
        await self.post_preview(
            BatchPreview(batch=batch, plan=plan, production=self._production(batch))
        )

    async def changed(self, batch: Batch) -> None:
        """Recovery moved a batch on (expired, or finished after a restart): edit its card."""
        await self.show(batch.id)

    async def ended(self, ending: Batch, source: Batch) -> None:
        """A timed bulk pause ended: one note in the source card's thread, and its card."""
        await self.show(source.id)
        if not (source.channel and source.card_ts):
            return
        channel, ts = source.channel, source.card_ts
        note = end_note(ending, source)
        await self._notifier.posts.post(
            channel,
            lambda: self._client.chat_postMessage(
                channel=channel, thread_ts=ts, text=note.text, blocks=note.blocks
            ),
        )


def register_bulk(app: AsyncApp, cards: BulkCards, spawn: Callable[..., None]) -> None:
    """The bulk card's buttons: ack, then the work after the ack (``spawn``)."""

    def _where(body: dict[str, Any]) -> tuple[str, str | None]:
        return body["user"]["id"], (body.get("channel") or {}).get("id")

    def _card(body: dict[str, Any]) -> tuple[str, str] | None:
        """Where the clicked card is (channel, ts), as the click says."""
        channel = (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get(
            "ts"
        )
        return (str(channel), str(ts)) if channel and ts else None

    @app.action(BulkAction.CONFIRM)
    async def on_confirm(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = _where(body)
        work = cards.confirm(str(action.get("value", "")), user=user, card=_card(body))
        spawn(work, respond=respond, user=user, channel=channel)

    @app.action(BulkAction.CANCEL)
    async def on_cancel(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = _where(body)
        work = cards.cancel(str(action.get("value", "")), user=user, card=_card(body))
        spawn(work, respond=respond, user=user, channel=channel)

    @app.action(BulkAction.APPROVE)
    @app.action(BulkAction.DENY)
    async def on_vote(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = _where(body)
        decision = (
            Decision.APPROVE if action.get("action_id") == BulkAction.APPROVE else Decision.DENY
        )

        async def work() -> None:
            message = await cards.vote(str(action.get("value", "")), user=user, decision=decision)
            if message:
                await respond(
                    response_type="ephemeral",
                    replace_original=False,
                    **blocks.error_message(message).to_dict(),
                )

        spawn(work(), respond=respond, user=user, channel=channel)

    @app.action(BulkAction.RESUME)
    async def on_resume(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = _where(body)
        work = cards.resume(str(action.get("value", "")), user=user, channel=channel)
        spawn(work, respond=respond, user=user, channel=channel)
