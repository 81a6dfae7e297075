"""The outbox sender: delivers the Slack messages the store keeps (DESIGN §6).

Rows are leased from the store (:meth:`~bot.store.repository.Store.claim_outbox`: several
processes share one outbox, each row goes to one of them), sent through the notifier's
pacers (per channel or card, within each method's workspace budget; a 429 is retried
after ``Retry-After``), then marked sent. The budgets serve the claims' order: a thread
note waiting beats a notice waiting for ``chat.postMessage``; a card edit showing a
settled request beats one of a request still moving (which is held back while the
``chat.update`` budget is short: see :class:`~bot.slack.pacing.WorkspaceBudget`); an edit
with nothing new to show (sent again after a newer version was written) spends nothing.
A row's stream (a card's thread with its edits, a notify channel) gives out one row at a
time, in order; notices of one channel that are due together become one summary.
Thread notes, notices and card edits are claimed separately, in that order, each with
its own room in the queues (edits have their own Slack budget; notices due together must
be claimed together to make one summary).

Idempotent per message: every post carries message metadata naming its outbox row(s).
A row that was taken before (its sender died, or a send failed after Slack may have
received it) is first looked for in its thread or channel, and only posted when no
message carries its id (a batch's card too: its ts is then stored as if just posted). A
card edit is idempotent in itself.

Background mode (``serve``): :meth:`OutboxSender.start` runs a loop that claims what is
due whenever something is enqueued (:meth:`OutboxSender.wake`) and every ``poll``
seconds (other processes' rows, expired leases, retries), and renews the leases of what
waits in its queues. Otherwise :meth:`OutboxSender.flush` delivers what is due and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.outbox import (
    METADATA_EVENT_TYPE,
    OUTBOX_LEASE,
    OUTBOX_MAX_ATTEMPTS,
    OutboxItem,
    OutboxKind,
    retry_delay,
)
from bot.faults import CrashPoint, crash_point
from bot.slack import blocks
from bot.slack.pacing import ChannelPacer, Urgency
from bot.store.repository import Store

log = structlog.get_logger(__name__)

#: What one claim takes, most urgent first: thread notes, notify-channel notices, card
#: edits. Each has its own room in this sender's queues, so notices due together are
#: claimed together (one summary, not a few left over by the notes) and edits (another
#: Slack budget) never wait behind posts.
CLAIMS: Final = (
    (OutboxKind.REPLY, OutboxKind.CARD),
    (OutboxKind.NOTICE,),
    (OutboxKind.EDIT,),
)
#: Notices in one summary message at most (more are sent as several summaries).
NOTICES_PER_MESSAGE: Final = 50
#: Slack errors that no retry will fix: the row is given up at once.
PERMANENT_ERRORS: Final = frozenset(
    {
        "channel_not_found",
        "thread_not_found",
        "not_in_channel",
        "is_archived",
        "message_not_found",
        "cant_update_message",
        "msg_too_long",
        "invalid_blocks",
        "invalid_metadata_format",
        "no_text",
    }
)
#: Messages read back at most when looking for an earlier send of a row.
_LOOKBACK_LIMIT: Final = 1000


class OutboxRenderer(Protocol):
    """Turns outbox rows into Slack messages (the notifier)."""

    def render_reply(self, item: OutboxItem) -> blocks.Message: ...

    async def render_notices(
        self, channel: str, items: Sequence[OutboxItem]
    ) -> list[blocks.Message]: ...

    async def edit_needed(self, item: OutboxItem) -> bool: ...

    async def send_edit(self, item: OutboxItem) -> Any: ...

    async def render_card(self, item: OutboxItem) -> blocks.Message | None: ...

    async def card_posted(self, item: OutboxItem, ts: str) -> None: ...

    def edit_urgency(self, item: OutboxItem) -> Urgency: ...


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _metadata(items: Sequence[OutboxItem]) -> dict[str, Any]:
    """The message metadata naming the rows a post delivers (payload values are flat)."""
    payload: dict[str, Any] = {"id": items[0].id}
    if len(items) > 1:
        payload["ids"] = ",".join(str(i.id) for i in items)
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": payload}


def _ids_in(message: dict[str, Any]) -> set[int]:
    """The outbox rows a Slack message says it delivers."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return set()
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return set()
    found: set[int] = set()
    for raw in (payload.get("id"), *str(payload.get("ids") or "").split(",")):
        with contextlib.suppress(TypeError, ValueError):
            if raw not in (None, ""):
                found.add(int(str(raw)))
    return found


def _slack_error(exc: BaseException) -> str | None:
    if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict):
        error = exc.response.data.get("error")
        return str(error) if error else None
    return None


class OutboxSender:
    """Claims outbox rows, sends them paced and in stream order, marks them sent."""

    def __init__(
        self,
        *,
        store: Store,
        client: AsyncWebClient,
        renderer: OutboxRenderer,
        posts: ChannelPacer,
        edits: ChannelPacer,
        owner: str | None = None,
        lease: timedelta = OUTBOX_LEASE,
        poll: float = 2.0,
        batch: int = 100,
        max_attempts: int = OUTBOX_MAX_ATTEMPTS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner or default_owner()
        self._store = store
        self._client = client
        self._renderer = renderer
        self._posts = posts
        self._edits = edits
        self._lease = lease
        self._poll = poll
        self._batch = batch
        self._max_attempts = max_attempts
        self._monotonic = monotonic
        self._inflight: dict[int, OutboxItem] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._flushes: set[asyncio.Task[bool]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._wakes = 0
        self._idle_at = 0
        self._hold_until = 0.0
        self._timers: set[asyncio.TimerHandle] = set()
        #: Rows found already posted (by a sender that died before marking them sent).
        self.found_posted = 0

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the background loop (``serve``)."""
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    def wake(self) -> None:
        """Something was enqueued (and committed): look for due rows now."""
        self._wakes += 1
        if self._wakeup is not None:
            self._wakeup.set()

    def wake_in(self, seconds: float) -> None:
        """Rows come due in ``seconds`` (a notice window): look then, and count as busy
        until then."""
        self._hold_until = max(self._hold_until, self._monotonic() + seconds)
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            if self._task is not None:
                self.wake()
            else:  # no loop: deliver from here
                flush = asyncio.get_running_loop().create_task(self.flush())
                self._flushes.add(flush)
                flush.add_done_callback(self._flushes.discard)

        handle = loop.call_later(max(0.0, seconds), fire)
        self._timers.add(handle)

    def busy(self) -> bool:
        """Whether rows are being sent, or were enqueued here and not looked at yet."""
        return (
            bool(self._inflight)
            or self._wakes != self._idle_at
            or self._monotonic() < self._hold_until
        )

    async def flush(self, *, hurry: bool = False, within: float | None = None) -> bool:
        """Send what is due (``hurry``: held rows too) and wait for it; whether all of it
        got out within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            wakes = self._wakes
            claimed = await self._claim_and_send(hurry=hurry)
            if not claimed and not self._sends:
                self._idle_at = max(self._idle_at, wakes)
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            if self._sends:
                await asyncio.wait(
                    set(self._sends), timeout=left, return_when=asyncio.FIRST_COMPLETED
                )

    async def aclose(self) -> None:
        """Stop the loop and hand back what this sender holds and did not send."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        running = self._sends | self._flushes
        for work in running:
            work.cancel()
        if running:
            await asyncio.wait(running)
        try:
            released = await self._store.release_outbox(owner=self.owner)
        except Exception:
            log.warning("outbox_release_failed", owner=self.owner, exc_info=True)
            return
        if released:
            log.info("outbox_released", owner=self.owner, rows=released)

    async def _run(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        renewed = self._monotonic()
        renew_every = self._lease.total_seconds() / 3
        while True:
            wakeup.clear()
            wakes = self._wakes
            try:
                claimed = await self._claim_and_send()
            except Exception:
                log.exception("outbox_claim_failed")
                claimed = 0
            if not claimed and not self._inflight:
                self._idle_at = wakes
            if self._monotonic() - renewed >= renew_every:
                renewed = self._monotonic()
                await self._renew()
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self._poll)

    async def _renew(self) -> None:
        ids = list(self._inflight)
        if not ids:
            return
        try:
            await self._store.renew_outbox(
                ids, owner=self.owner, until=self._store.now() + self._lease
            )
        except Exception:
            log.warning("outbox_renew_failed", rows=len(ids), exc_info=True)

    # -- claiming -----------------------------------------------------------------------

    async def _claim_and_send(self, *, hurry: bool = False) -> int:
        now = self._store.now()
        due_by = now + timedelta(days=1) if hurry else now
        claimed = 0
        for kinds in CLAIMS:
            room = self._batch - sum(1 for i in self._inflight.values() if i.kind in kinds)
            if room <= 0:
                continue
            items = await self._store.claim_outbox(
                owner=self.owner, now=now, lease=self._lease, limit=room, due_by=due_by, kinds=kinds
            )
            # a row this sender is still sending whose lease ran out meanwhile (a long
            # paced queue, a clock that jumped) is taken again by itself: not sent twice
            items = [i for i in items if i.id not in self._inflight]
            claimed += len(items)
            for group in self._groups(items):
                for item in group:
                    self._inflight[item.id] = item
                self._spawn(self._send(group))
        return claimed

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    @staticmethod
    def _groups(items: Sequence[OutboxItem]) -> list[list[OutboxItem]]:
        """One send per reply or edit; the notices of a channel together (a summary)."""
        groups: list[list[OutboxItem]] = []
        notices: dict[str, list[OutboxItem]] = {}
        for item in items:
            if item.kind is OutboxKind.NOTICE:
                notices.setdefault(item.channel, []).append(item)
            else:
                groups.append([item])
        for batch in notices.values():
            batch.sort(key=lambda i: i.id)
            for start in range(0, len(batch), NOTICES_PER_MESSAGE):
                groups.append(batch[start : start + NOTICES_PER_MESSAGE])
        return groups

    # -- sending ------------------------------------------------------------------------

    async def _send(self, group: list[OutboxItem]) -> None:
        try:
            kind = group[0].kind
            if kind is OutboxKind.EDIT:
                await self._send_edit(group[0])
            elif kind is OutboxKind.REPLY:
                await self._send_reply(group[0])
            elif kind is OutboxKind.CARD:
                await self._send_card(group[0])
            else:
                await self._send_notices(group)
        except Exception as exc:
            await self._failed(group, exc)
        finally:
            for item in group:
                self._inflight.pop(item.id, None)
            self.wake()

    async def _mark_sent(self, items: Collection[OutboxItem], ts: str | None) -> None:
        await self._store.outbox_sent({i.id: i.version for i in items}, owner=self.owner, ts=ts)

    async def _send_reply(self, item: OutboxItem) -> None:
        assert item.thread_ts is not None
        if item.attempts > 1:
            found = await self._posted(item, [item])
            if item.id in found:
                await self._mark_sent([item], found[item.id])
                return
        message = self._renderer.render_reply(item)
        channel, thread_ts = item.channel, item.thread_ts
        response = await self._posts.post(
            channel,
            lambda: self._client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=message.text,
                blocks=message.blocks,
                metadata=_metadata([item]),
            ),
            Urgency.NOTE,
        )
        crash_point(CrashPoint.AFTER_SLACK_SEND)
        await self._mark_sent([item], str(response["ts"]))

    async def _send_card(self, item: OutboxItem) -> None:
        """Post a card (a batch's), then have its ts stored: once, found by its metadata
        when an earlier try may have posted it."""
        if item.attempts > 1:
            found = await self._posted(item, [item])
            if item.id in found:
                await self._renderer.card_posted(item, found[item.id])
                await self._mark_sent([item], found[item.id])
                return
        message = await self._renderer.render_card(item)
        if message is None:  # nothing to show any more
            await self._mark_sent([item], None)
            return
        channel = item.channel
        response = await self._posts.post(
            channel,
            lambda: self._client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=_metadata([item]),
            ),
        )
        crash_point(CrashPoint.AFTER_SLACK_SEND)
        ts = str(response["ts"])
        await self._renderer.card_posted(item, ts)
        await self._mark_sent([item], ts)

    async def _send_notices(self, group: list[OutboxItem]) -> None:
        channel = group[0].channel
        if any(i.attempts > 1 for i in group):
            found = await self._posted(group[0], group)
            for seen in set(found.values()):
                await self._mark_sent([i for i in group if found.get(i.id) == seen], seen)
            group = [i for i in group if i.id not in found]
            if not group:
                return
        messages = await self._renderer.render_notices(channel, group)
        ts: str | None = None
        for message in messages:
            send = functools.partial(
                self._client.chat_postMessage,
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=_metadata(group),
            )
            response = await self._posts.post(channel, send, Urgency.NOTICE)
            ts = ts or str(response["ts"])
        crash_point(CrashPoint.AFTER_SLACK_SEND)
        await self._mark_sent(group, ts)

    async def _send_edit(self, item: OutboxItem) -> None:
        if not await self._renderer.edit_needed(item):  # e.g. sent again after a bump
            await self._mark_sent([item], item.thread_ts)
            return
        # per card (edits of different cards keep no order among themselves); when the
        # chat.update budget is short, settled cards go before cards still moving
        card = f"batch:{item.batch_id}" if item.batch_id is not None else item.thread_ts
        await self._edits.post(
            f"{item.channel}:{card}",
            lambda: self._renderer.send_edit(item),
            lambda: self._renderer.edit_urgency(item),
        )
        await self._mark_sent([item], item.thread_ts)

    async def _posted(self, first: OutboxItem, items: Sequence[OutboxItem]) -> dict[int, str]:
        """Which of ``items`` Slack already shows (posted by a sender that then died, or
        whose answer was lost): row id -> the message's ts."""
        wanted = {i.id for i in items}
        try:
            if first.thread_ts is not None and first.kind is OutboxKind.REPLY:
                response = await self._client.conversations_replies(
                    channel=first.channel,
                    ts=first.thread_ts,
                    include_all_metadata=True,
                    limit=_LOOKBACK_LIMIT,
                )
            else:
                oldest = min(i.created_at for i in items) - timedelta(minutes=1)
                response = await self._client.conversations_history(
                    channel=first.channel,
                    oldest=f"{oldest.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=_LOOKBACK_LIMIT,
                )
        except Exception as exc:
            # e.g. a notify channel the bot posts to without being a member (it may not
            # read it): sending again risks a duplicate; not sending loses the message
            log.warning(
                "outbox_lookup_failed",
                rows=sorted(wanted),
                channel=first.channel,
                error=_slack_error(exc) or repr(exc),
            )
            return {}
        found: dict[int, str] = {}
        for message in response.get("messages") or []:
            if isinstance(message, dict):
                for row_id in _ids_in(message) & wanted:
                    found[row_id] = str(message.get("ts"))
        if found:
            self.found_posted += len(found)
            log.info("outbox_already_posted", rows=sorted(found), channel=first.channel)
        return found

    async def _failed(self, group: Sequence[OutboxItem], exc: BaseException) -> None:
        attempts = max(i.attempts for i in group)
        error = _slack_error(exc)
        ids = [i.id for i in group]
        give_up = error in PERMANENT_ERRORS or attempts >= self._max_attempts
        retry_at: datetime | None = None
        if give_up:
            log.error(
                "outbox_gave_up",
                rows=ids,
                kind=group[0].kind.value,
                channel=group[0].channel,
                attempts=attempts,
                error=error or repr(exc),
            )
        else:
            retry_at = self._store.now() + retry_delay(attempts)
            log.warning(
                "outbox_send_failed",
                rows=ids,
                kind=group[0].kind.value,
                channel=group[0].channel,
                attempts=attempts,
                error=error or repr(exc),
            )
        try:
            await self._store.outbox_failed(
                ids, owner=self.owner, error=error or repr(exc), retry_at=retry_at
            )
        except Exception:
            log.warning("outbox_fail_record_failed", rows=ids, exc_info=True)
