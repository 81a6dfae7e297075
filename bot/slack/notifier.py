"""The Slack adapter of the Notifier port: cards, thread replies and the Home tab."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ApprovalView
from bot.domain.requests import OperationRequest
from bot.service.notify import CardRef, Note, NoteKind
from bot.slack import blocks
from bot.slack.home import home_view
from bot.store.repository import Store


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackNotifier:
    """Posts one card per request and replies in its thread; keeps Home tabs current."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        store: Store,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._home_viewers: set[str] = set()

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        if not request.channel:
            return None
        message = blocks.request_card(request, now=self._clock(), approval=approval)
        response = await self._client.chat_postMessage(
            channel=request.channel, text=message.text, blocks=message.blocks
        )
        return CardRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        if not (request.channel and request.card_ts):
            return
        message = blocks.request_card(request, now=self._clock(), approval=approval)
        await self._client.chat_update(
            channel=request.channel, ts=request.card_ts, text=message.text, blocks=message.blocks
        )
        if request.terminal:
            await self.refresh_homes()

    async def reply(self, request: OperationRequest, note: Note) -> None:
        if not (request.channel and request.card_ts):
            return
        match note.kind:
            case NoteKind.EXECUTING:
                message = blocks.executing_reply(request)
            case NoteKind.RESULT:
                message = blocks.result_reply(request)
            case NoteKind.PROGRESS:
                message = blocks.progress_reply(
                    note.done or 0, note.total or 0, note.text, noun=note.noun
                )
            case NoteKind.APPROVAL_NEEDED:
                message = blocks.approval_needed_reply(
                    request, required=note.total, approval=note.approval
                )
            case NoteKind.VOTE:
                message = blocks.vote_reply(
                    note.actor or "someone",
                    note.decision or "",
                    done=note.done,
                    total=note.total,
                )
            case NoteKind.DECISION:
                message = blocks.decision_reply(note.actor, note.decision, note.text)
            case NoteKind.INFO:
                message = blocks.info_reply(note.actor, note.text)
            case NoteKind.REMINDER:
                message = blocks.reminder_reply(request, note.text)
            case _:
                message = blocks.step_message(note.text)
        await self._client.chat_postMessage(
            channel=request.channel,
            thread_ts=request.card_ts,
            text=message.text,
            blocks=message.blocks,
        )

    async def announce(self, *, channel: str, request: OperationRequest, text: str) -> None:
        """A short notice in the environment's notify channel, linking to the thread."""
        link = None
        if request.channel and request.card_ts:
            try:
                found = await self._client.chat_getPermalink(
                    channel=request.channel, message_ts=request.card_ts
                )
                link = str(found.get("permalink") or "") or None
            except Exception:
                link = None
        message = blocks.notice_message(request, text, link=link)
        await self._client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks
        )
        await self.refresh_homes()

    async def ephemeral(self, *, channel: str, user: str, message: blocks.Message) -> None:
        """A message only ``user`` sees, in ``channel``."""
        await self._client.chat_postEphemeral(
            channel=channel, user=user, text=message.text, blocks=message.blocks
        )

    async def publish_home(self, user_id: str) -> None:
        """Show ``user_id`` the currently paused items."""
        self._home_viewers.add(user_id)
        pauses = await self._store.active_pauses()
        view = home_view(pauses=pauses, now=self._clock(), user_id=user_id)
        await self._client.views_publish(user_id=user_id, view=view)

    async def refresh_homes(self) -> None:
        """Re-publish the Home tab for everyone who opened it since start."""
        for user_id in sorted(self._home_viewers):
            await self.publish_home(user_id)
