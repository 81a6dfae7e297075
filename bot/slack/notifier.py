"""The Slack adapter of the Notifier port: cards, thread replies and the Home tab.

Thread replies, card edits and notify-channel notices are not sent from here: they are
written to the store's outbox (in the caller's :meth:`~bot.store.repository.Store.atomic`
transaction when there is one, so they are kept exactly when the state change they report
is), and :class:`~bot.slack.sender.OutboxSender` delivers them. A card's thread keeps its
order: an edit waits for the replies written before it, and a reply for the edit written
before it, so a card never runs ahead of its thread (it does not say "Done" before the
approval reply shows) and the thread does not say "Verified" while the card still says
"Working". An edit renders the request as the store holds it when the edit is sent (see
:meth:`SlackNotifier._edit_current`); a card has at most one edit waiting.

A batch's card (bulk requests) is an outbox row too, and so are its edits and thread
notes: one stream per batch, drawn from the store when sent (:class:`BatchCards`, see
:mod:`bot.slack.bulk`), its post found again by its metadata after a crash.

Every Slack call goes through a :class:`~bot.slack.pacing.ChannelPacer` (reference §2.6),
one per Slack method; each keeps a FIFO per key and shares one workspace-wide
:class:`~bot.slack.pacing.WorkspaceBudget` (``limits``, the configuration's
``slack_limits``: Slack's figures unless raised for a test Slack):

* ``posts`` — ``chat.postMessage`` (cards, thread replies, notices), per channel: about one
  message per second after a burst of three, which is Slack's own limit; all channels
  together within the workspace-wide cap.
* ``edits`` — ``chat.update`` (card edits), per card, all of them within Tier 3 (about 50
  a minute): edits have their own budget and never spend a channel's posts.
* ``ephemerals`` — ``chat.postEphemeral`` (private answers to a click or command, Tier 4):
  their own budget, so an answer never waits behind a backlog of replies or edits.
* ``homes`` — ``views.publish`` (Home tabs, Tier 4), per user, all within the budget: a
  Home tab someone opens goes before the refreshes of the others.

When a budget is short, the most urgent send goes first (:class:`~bot.slack.pacing.Urgency`):
a new card or a private answer, then outcome notes in threads, notify-channel notices,
card edits, Home refreshes. Among card edits, one whose request is settled goes before one
whose request is still moving (received, approved, executing: it will change again in a
moment). An edit is rendered from the store when its turn comes, so an edit held back
while its request moved on shows the newer state in the same ``chat.update``: a card whose
request finishes while its edit waits is edited once, not twice, and always ends in its
final state (a later state always enqueues a later edit).

A 429 that gets past the client's retry handler is retried by the pacer after
``Retry-After``; nothing is dropped. Notify-channel notices are coalesced: notices for one
channel written within ``notice_window`` seconds of each other (for at most
``notice_max_hold`` seconds) become one summary message (several beyond 50 notices); a
lone notice is posted as before.

A notice links to its request's thread. The link is built here, the way Slack builds a
permalink (``{team url}archives/{channel}/p{ts without the dot}``), from the team URL that
one ``auth.test`` per notifier returns; only when that is not to be had (``auth.test``
failed, retried at most once a minute, or gave no usable ``url``) is ``chat.getPermalink``
asked, a few cards at a time in parallel and each card once.

With ``background=True`` (``serve``), :meth:`SlackNotifier.start` runs the sender's loop:
:meth:`SlackNotifier.publish` and :meth:`SlackNotifier.update_card` return once the
message is written (inside the store transaction of the change it reports, when there is
one); call :meth:`SlackNotifier.drain` and :meth:`SlackNotifier.aclose` before shutting
down (what is not sent stays in the outbox for the next process). Otherwise (the one-shot
CLI) they return once the outbox rows due are delivered (after that transaction commits).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackLimitSettings
from bot.domain.approvals import ApprovalView
from bot.domain.bulk import Batch, PlanSummary
from bot.domain.events import Event
from bot.domain.outbox import OutboxItem, OutboxKind, OutboxMessage
from bot.domain.requests import OperationRequest
from bot.faults import CrashPoint, crash_point
from bot.service.notify import CardRef
from bot.slack import blocks, messages, outbox_payloads
from bot.slack.home import home_view
from bot.slack.pacing import ChannelPacer, Urgency, WorkspaceBudget
from bot.slack.sender import NOTICES_PER_MESSAGE, OutboxSender
from bot.store.repository import Store

log = structlog.get_logger(__name__)

#: Posts per second per channel: a little under Slack's one per second, because a post
#: that reaches Slack early (network and event-loop jitter) is refused with 429 and then
#: costs a whole ``Retry-After`` second; 3% slower costs 3 s per 100 messages.
POST_RATE: Final = 0.97

#: Edits of one card per second at most (all cards together: the ``chat.update`` budget).
CARD_EDIT_RATE: Final = 1.0
#: Cards whose last known state (moving or settled) is remembered for their waiting edits.
_CARD_STATES_MAX: Final = 10_000

#: Notices in one summary message at most (more are split over several messages).
SUMMARY_ITEMS_MAX: Final = NOTICES_PER_MESSAGE
_SUMMARY_SECTIONS_MAX: Final = blocks.MESSAGE_BLOCKS_MAX - 2  # room for heading and footer
_FALLBACK_NAMES_MAX: Final = 300
#: ``chat.getPermalink`` calls in flight at once (only when links cannot be built here).
PERMALINK_LOOKUPS_MAX: Final = 8
#: After a failed ``auth.test``, links come from ``chat.getPermalink`` for this long.
TEAM_URL_RETRY_S: Final = 60.0
_TEAM_URL_TIMEOUT_S: Final = 10.0
_PERMALINKS_CACHED_MAX: Final = 10_000
_EDITS_REMEMBERED_MAX: Final = 10_000
_CHANNEL_ID_RE: Final = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_TS_RE: Final = re.compile(r"^[0-9]+\.[0-9]+$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notify-channel notice: what happened to ``request``, and a link to its thread."""

    request: OperationRequest
    text: str
    link: str | None = None


class BatchCards(Protocol):
    """Draws a batch's card from the store (:class:`bot.slack.bulk.BulkCards`)."""

    async def card(
        self, batch_id: str, plan: PlanSummary | None
    ) -> tuple[Batch, blocks.Message] | None: ...

    async def card_posted(self, batch_id: str, channel: str, ts: str) -> None: ...


class SlackNotifier:
    """Posts one card per request and replies in its thread; keeps Home tabs current."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        store: Store,
        clock: Callable[[], datetime] = _utcnow,
        posts: ChannelPacer | None = None,
        edits: ChannelPacer | None = None,
        ephemerals: ChannelPacer | None = None,
        homes: ChannelPacer | None = None,
        notice_window: float = 2.0,
        notice_max_hold: float = 20.0,
        background: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        home_delay: float = 1.0,
        owner: str | None = None,
        poll: float = 2.0,
        notify_channels: Mapping[str, str] | None = None,
        limits: SlackLimitSettings | None = None,
    ) -> None:
        if notice_window < 0 or notice_max_hold < notice_window:
            raise ValueError("notice_window must be >= 0 and notice_max_hold >= notice_window")
        self._client = client
        #: environment -> the channel its notices go to (environments without one: none)
        self._notify_channels = dict(notify_channels or {})
        self._store = store
        self._clock = clock
        self._home_viewers: set[str] = set()
        self._home_delay = home_delay
        self._home_refresh: asyncio.Task[None] | None = None
        self._home_again = False  # a refresh was asked for after the running one read
        limits = limits or SlackLimitSettings()
        self.posts = posts or ChannelPacer(
            name="posts",
            rate=POST_RATE,
            budget=_budget(
                "chat.postMessage",
                limits.post_message_workspace_per_min,
                limits.post_message_workspace_burst,
            ),
        )
        self.edits = edits or ChannelPacer(
            name="edits",
            rate=CARD_EDIT_RATE,
            budget=_budget("chat.update", limits.tier3_per_min, limits.tier3_burst),
        )
        self.ephemerals = ephemerals or ChannelPacer(
            name="ephemerals",
            budget=_budget("chat.postEphemeral", limits.tier4_per_min, limits.tier4_burst),
        )
        self.homes = homes or ChannelPacer(
            name="homes",
            budget=_budget("views.publish", limits.tier4_per_min, limits.tier4_burst),
        )
        # (channel, card ts) -> whether its request is still moving, as last written here
        self._card_states: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._notice_window = notice_window
        self._notice_max_hold = notice_max_hold
        self._background = background
        self.sender = OutboxSender(
            store=store,
            client=client,
            renderer=self,
            posts=self.posts,
            edits=self.edits,
            owner=owner,
            poll=poll,
        )
        # thread links: the team URL from auth.test, else chat.getPermalink per card
        self._monotonic = monotonic
        self._team_url: str | None = None
        self._team_url_lock = asyncio.Lock()
        self._team_url_retry_at: float | None = None  # after a failed auth.test
        self._lookups = asyncio.Semaphore(PERMALINK_LOOKUPS_MAX)
        self._permalinks: OrderedDict[tuple[str, str], str] = OrderedDict()
        # (channel, card ts) -> the card as this process last sent it
        self._last_edits: OrderedDict[tuple[str, str], blocks.Message] = OrderedDict()
        #: Batch cards (set by the Slack front end of bulk requests; None: none are sent).
        self.batch_cards: BatchCards | None = None
        # outbox row id -> the batch card it is posting (remembered once it is posted)
        self._posting: dict[int, blocks.Message] = {}

    def start(self) -> None:
        """Deliver the outbox in the background (``serve``)."""
        self.sender.start()

    def busy(self) -> bool:
        """Whether Slack messages are being sent or are about to be."""
        pacers = (self.posts, self.edits, self.ephemerals, self.homes)
        return self.sender.busy() or any(p.pending() for p in pacers)

    async def drain(self, within: float | None = None) -> bool:
        """Send every message the outbox holds now, notices waiting for their window too
        (shutdown); whether all got out."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        done = await self.sender.flush(hurry=True, within=left())
        done = await self.ephemerals.drain(left()) and done
        done = await self.homes.drain(left()) and done
        refresh = self._home_refresh
        if refresh is not None and not refresh.done():
            finished, _ = await asyncio.wait([refresh], timeout=left())
            done = bool(finished) and done
        return done

    async def aclose(self) -> None:
        """Stop sending; what this process took and did not send goes back to the outbox."""
        await self.sender.aclose()

    async def _enqueue(
        self,
        message: OutboxMessage,
        *,
        due_at: datetime | None = None,
        gather_since: datetime | None = None,
    ) -> None:
        """Write ``message`` to the outbox; once committed, have it sent (background: wake
        the sender; otherwise deliver what is due before returning)."""
        await self._store.enqueue_outbox(message, due_at=due_at, gather_since=gather_since)
        await self._store.when_committed(self._committed)

    async def _committed(self) -> None:
        crash_point(CrashPoint.AFTER_OUTBOX_COMMIT)
        if self._background:
            self.sender.wake()
        else:
            await self.sender.flush()

    # -- what the sender renders (OutboxRenderer) ------------------------------------------

    def render_reply(self, item: OutboxItem) -> blocks.Message:
        return outbox_payloads.thread_message(item.payload)

    async def render_notices(
        self, channel: str, items: Sequence[OutboxItem]
    ) -> list[blocks.Message]:
        notices = []
        for item in items:
            request, text = outbox_payloads.notice_line(item.payload)
            notices.append(Notice(request=request, text=text))
        return await self._notice_messages(notices)

    def edit_urgency(self, item: OutboxItem) -> Urgency:
        """A waiting card edit's urgency now: lower while its request is still moving (as
        last written by this process, else as the edit was written). A batch's card:
        an edit of a settled card (its progress edits are already coalesced)."""
        if item.batch_id is not None:
            return Urgency.EDIT
        assert item.thread_ts is not None
        card = (item.channel, item.thread_ts)
        moving = self._card_states.get(card)
        if moving is None:
            moving = outbox_payloads.read_card(item.payload).request.moving
            self._card_state(card, moving=moving)
        return Urgency.EDIT_MOVING if moving else Urgency.EDIT

    def _card_state(self, card: tuple[str, str], *, moving: bool) -> None:
        self._card_states[card] = moving
        self._card_states.move_to_end(card)
        while len(self._card_states) > _CARD_STATES_MAX:
            self._card_states.popitem(last=False)

    async def edit_needed(self, item: OutboxItem) -> bool:
        """Whether the card would show something this process has not shown yet (an edit
        sent again after its row was bumped often has nothing new: it spends no budget).
        A batch's card is rendered only when sent (``_edit_batch`` skips an unchanged one)."""
        if item.batch_id is not None:
            return True
        stored = outbox_payloads.read_card(item.payload)
        assert item.thread_ts is not None
        current, view = await self._current(stored.request, stored.data.approval)
        message = blocks.request_card(current, now=self._clock(), approval=view)
        return self._last_edits.get((item.channel, item.thread_ts)) != message

    async def send_edit(self, item: OutboxItem) -> Any:
        if item.batch_id is not None:
            return await self._edit_batch(item.batch_id)
        stored = outbox_payloads.read_card(item.payload)
        assert item.thread_ts is not None
        return await self._edit_current(
            item.channel, item.thread_ts, stored.request, stored.data.approval
        )

    async def render_card(self, item: OutboxItem) -> blocks.Message | None:
        """A batch's card to post, as the store holds the batch now (None: no such batch)."""
        if self.batch_cards is None or item.batch_id is None:
            return None
        stored = outbox_payloads.read_batch_card(item.payload)
        found = await self.batch_cards.card(item.batch_id, stored.plan)
        if found is None:
            return None
        self._posting[item.id] = found[1]
        return found[1]

    async def card_posted(self, item: OutboxItem, ts: str) -> None:
        """A batch's card is in Slack: remember where (its edits and thread go there)."""
        message = self._posting.pop(item.id, None)
        if message is not None:
            self._remember_edit((item.channel, ts), message)
        if self.batch_cards is None or item.batch_id is None:
            return
        await self.batch_cards.card_posted(item.batch_id, item.channel, ts)
        # the batch may have moved on since the card was drawn (its edits wait for a ts)
        stored = outbox_payloads.read_batch_card(item.payload)
        now = await self.batch_cards.card(item.batch_id, stored.plan)
        if now is not None and now[1] != message and now[0].card_ts:
            # written here, not through _enqueue: this runs inside the sender's own send
            # (a flush from here would wait for itself); the sender looks again after it
            await self._store.enqueue_outbox(self._batch_edit(now[0]))
            self.sender.wake()

    async def _edit_batch(self, batch_id: str) -> Any:
        if self.batch_cards is None:
            return None
        found = await self.batch_cards.card(batch_id, None)
        if found is None:
            return None
        batch, message = found
        if not (batch.channel and batch.card_ts):
            return None  # its card was never posted
        card = (batch.channel, batch.card_ts)
        if self._last_edits.get(card) == message:
            return None  # this process already showed exactly this
        response = await self._client.chat_update(
            channel=batch.channel, ts=batch.card_ts, text=message.text, blocks=message.blocks
        )
        self._remember_edit(card, message)
        return response

    async def post_batch_card(self, batch: Batch, plan: PlanSummary | None) -> None:
        """Post the batch's card in its channel (written to the outbox: drawn from the store
        and its ts stored when it is sent, once, even across a crash)."""
        if not batch.channel:
            return
        await self._enqueue(
            OutboxMessage(
                kind=OutboxKind.CARD,
                channel=batch.channel,
                batch_id=batch.id,
                payload=outbox_payloads.batch_card_payload(batch.id, plan),
            )
        )

    async def update_batch_card(self, batch: Batch) -> None:
        """The batch's card is stale: have it show the batch as stored when the edit is sent
        (at most one edit of it waits). A card not posted yet needs none: its post draws the
        batch when it is sent, and is edited after when the batch moved on meanwhile."""
        if not (batch.channel and batch.card_ts):
            return
        await self._enqueue(self._batch_edit(batch))

    @staticmethod
    def _batch_edit(batch: Batch) -> OutboxMessage:
        assert batch.channel is not None
        return OutboxMessage(
            kind=OutboxKind.EDIT,
            channel=batch.channel,
            thread_ts=batch.card_ts,
            batch_id=batch.id,
            payload=outbox_payloads.batch_card_payload(batch.id),
        )

    async def batch_reply(self, batch: Batch, payload: dict[str, Any]) -> None:
        """A note in the batch card's thread (written to the outbox)."""
        if not (batch.channel and batch.card_ts):
            return
        await self._enqueue(
            OutboxMessage(
                kind=OutboxKind.REPLY,
                channel=batch.channel,
                thread_ts=batch.card_ts,
                batch_id=batch.id,
                payload=payload,
            )
        )

    async def post_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> CardRef | None:
        if not request.channel:
            return None
        message = blocks.request_card(request, now=self._clock(), approval=approval)
        channel = request.channel
        response = await self.posts.post(
            channel,
            lambda: self._client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks
            ),
        )
        return CardRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def update_card(
        self, request: OperationRequest, approval: ApprovalView | None = None
    ) -> None:
        """Have the card show the request as the store holds it when the edit is sent.

        The edit waits in the outbox behind the card's earlier replies, and another bot
        process may edit the same card meanwhile: so the request (and its votes) are read
        again right before the ``chat.update``. A change stored after that read writes an
        edit of its own (bumping this row, whose send then does not count, or after it),
        so the last edit of a card always shows the stored state.
        """
        if not (request.channel and request.card_ts):
            return
        message = OutboxMessage(
            kind=OutboxKind.EDIT,
            channel=request.channel,
            thread_ts=request.card_ts,
            request_id=request.id,
            payload=outbox_payloads.card_payload(request, approval),
        )
        await self._enqueue(message)
        # only an order hint for the edit that may be waiting: it renders what is stored
        self._card_state((request.channel, request.card_ts), moving=request.moving)
        if request.terminal:  # once what it shows is committed (a caller's transaction)
            await self._store.when_committed(self.refresh_homes)

    async def _current(
        self, request: OperationRequest, approval: ApprovalView | None
    ) -> tuple[OperationRequest, ApprovalView | None]:
        """The request and its approval as stored now (the caller's copy if unreadable)."""
        try:
            stored = await self._store.get_request(request.id)
            if stored is None:
                return request, approval
            if approval is not None:
                votes = await self._store.votes(request.id)
                approval = approval.model_copy(
                    update={
                        "votes": tuple(sorted(votes, key=lambda v: v.at)),
                        "expires_at": stored.expires_at or approval.expires_at,
                    }
                )
        except Exception:
            log.warning("card_reread_failed", request_id=request.id, exc_info=True)
            return request, approval
        return stored, approval

    async def _edit_current(
        self, channel: str, ts: str, request: OperationRequest, approval: ApprovalView | None
    ) -> Any:
        """One ``chat.update`` showing the request as stored now. Should it change while
        this edit is on its way, the change's own edit bumps the outbox row (this send
        then does not count) or follows it: the card's last edit shows the stored state."""
        card = (channel, ts)
        current, view = await self._current(request, approval)
        message = blocks.request_card(current, now=self._clock(), approval=view)
        if self._last_edits.get(card) == message:
            return None  # this process already showed exactly this
        response = await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )
        self._remember_edit(card, message)
        return response

    def _remember_edit(self, card: tuple[str, str], message: blocks.Message) -> None:
        self._last_edits[card] = message
        self._last_edits.move_to_end(card)
        while len(self._last_edits) > _EDITS_REMEMBERED_MAX:
            self._last_edits.popitem(last=False)

    async def publish(self, request: OperationRequest, event: Event) -> None:
        """The event as a reply in the request's thread and, when the notify channel of the
        request's environment subscribes to it (:func:`bot.slack.messages.notice_text`), as
        a notice there. Written to the outbox (in the caller's transaction, if any); worded
        when it is sent (:mod:`bot.slack.outbox_payloads`)."""
        if request.channel and request.card_ts:
            await self._enqueue(
                OutboxMessage(
                    kind=OutboxKind.REPLY,
                    channel=request.channel,
                    thread_ts=request.card_ts,
                    request_id=request.id,
                    payload=outbox_payloads.event_payload(request, event),
                )
            )
        channel = self._notify_channels.get(request.spec.environment)
        if channel and messages.notice_text(event) is not None:
            await self._notice(channel, request, outbox_payloads.event_payload(request, event))

    async def reply(self, request: OperationRequest, message: blocks.Message) -> None:
        """A message in the request's thread (written to the outbox)."""
        if not (request.channel and request.card_ts):
            return
        await self._enqueue(
            OutboxMessage(
                kind=OutboxKind.REPLY,
                channel=request.channel,
                thread_ts=request.card_ts,
                request_id=request.id,
                payload=outbox_payloads.message_payload(request, message),
            )
        )

    async def announce(self, *, channel: str, request: OperationRequest, text: str) -> None:
        """A short notice in ``channel``, linking to the request's thread."""
        await self._notice(channel, request, outbox_payloads.notice_payload(request, text))

    async def _notice(
        self, channel: str, request: OperationRequest, payload: dict[str, Any]
    ) -> None:
        """Write a notice to the outbox, held ``notice_window`` seconds: notices for one
        channel that come close together are posted as one summary (module docstring)."""
        now = self._store.now()
        message = OutboxMessage(
            kind=OutboxKind.NOTICE, channel=channel, request_id=request.id, payload=payload
        )
        window = timedelta(seconds=self._notice_window)
        since = now - timedelta(seconds=self._notice_max_hold) + window
        await self._store.enqueue_outbox(message, due_at=now + window, gather_since=since)
        await self._store.when_committed(self._notice_committed)

    async def _notice_committed(self) -> None:
        crash_point(CrashPoint.AFTER_OUTBOX_COMMIT)
        self.sender.wake_in(self._notice_window)
        await self.refresh_homes()

    async def _notice_messages(self, notices: list[Notice]) -> list[blocks.Message]:
        links = await self._thread_links(n.request for n in notices)
        linked: list[Notice] = []
        for n in notices:
            card = _card_of(n.request)
            linked.append(Notice(n.request, n.text, link=links.get(card) if card else None))
        if len(linked) == 1:
            only = linked[0]
            link = only.link if _safe_link(only.link) else None
            return [blocks.notice_message(only.request, only.text, link=link)]
        return notice_summaries(linked)

    async def card_link(self, channel: str, ts: str) -> str | None:
        """A link to one card (its permalink), or None when none is to be had."""
        return (await self._card_links([(channel, ts)])).get((channel, ts))

    async def _thread_links(
        self, requests: Iterable[OperationRequest]
    ) -> dict[tuple[str, str], str]:
        """A link to each request's card (thread), where one is to be had."""
        return await self._card_links(c for r in requests if (c := _card_of(r)) is not None)

    async def _card_links(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        cards = list(dict.fromkeys(wanted))
        if not cards:
            return {}
        team_url = await self._team_url_once()
        links: dict[tuple[str, str], str] = {}
        missing: list[tuple[str, str]] = []
        for card in cards:
            if team_url is not None and (built := _build_permalink(team_url, *card)):
                links[card] = built
            elif (cached := self._permalinks.get(card)) is not None:
                self._permalinks.move_to_end(card)
                links[card] = cached
            else:
                missing.append(card)
        if missing:
            found = await asyncio.gather(*(self._lookup_permalink(*c) for c in missing))
            links.update((card, link) for card, link in zip(missing, found, strict=True) if link)
        return links

    async def _team_url_once(self) -> str | None:
        """The workspace URL from ``auth.test`` (one call; after a failure, one a minute)."""
        if self._team_url is not None:
            return self._team_url
        async with self._team_url_lock:  # concurrent first notices wait for one call
            if self._team_url is not None:
                return self._team_url
            if self._team_url_retry_at is not None and self._monotonic() < self._team_url_retry_at:
                return None
            url: object = None
            try:
                async with asyncio.timeout(_TEAM_URL_TIMEOUT_S):
                    url = (await self._client.auth_test()).get("url")
            except Exception as exc:
                log.warning("team_url_unavailable", error=str(exc))
            if isinstance(url, str) and url.startswith("https://") and url.endswith("/"):
                self._team_url = url
                self._team_url_retry_at = None
            else:
                if url is not None:
                    log.warning("team_url_unusable", url=repr(url)[:200])
                self._team_url_retry_at = self._monotonic() + TEAM_URL_RETRY_S
            return self._team_url

    async def _lookup_permalink(self, channel: str, ts: str) -> str | None:
        """``chat.getPermalink`` for one card (a few at a time); ``None`` when it fails."""
        async with self._lookups:
            try:
                found = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
                link = str(found.get("permalink") or "") or None
            except Exception:
                return None
        if link is not None:
            self._permalinks[(channel, ts)] = link
            while len(self._permalinks) > _PERMALINKS_CACHED_MAX:
                self._permalinks.popitem(last=False)
        return link

    async def ephemeral(self, *, channel: str, user: str, message: blocks.Message) -> None:
        """A message only ``user`` sees, in ``channel``."""
        await self.ephemerals.post(
            channel,
            lambda: self._client.chat_postEphemeral(
                channel=channel, user=user, text=message.text, blocks=message.blocks
            ),
        )

    async def publish_home(self, user_id: str) -> None:
        """Show ``user_id`` the currently paused items."""
        self._home_viewers.add(user_id)
        pauses = await self._store.active_pauses()
        view = home_view(pauses=pauses, now=self._clock(), user_id=user_id)
        await self._publish(user_id, view, Urgency.NOW)

    async def _publish(self, user_id: str, view: dict[str, Any], urgency: Urgency) -> None:
        await self.homes.post(
            user_id, lambda: self._client.views_publish(user_id=user_id, view=view), urgency
        )

    async def refresh_homes(self) -> None:
        """Re-publish the Home tab for everyone who opened it since start.

        In the background (``serve``) refreshes are coalesced: the first one waits
        ``home_delay`` seconds and publishes once what is current then, however many ends,
        extensions or drifts asked for it meanwhile (a thousand pauses ending together make
        one publish per viewer, not a thousand). A refresh asked for after the running one
        read the pauses runs again when it is done, so the last state is always shown."""
        if not self._background:
            await self._publish_homes()
            return
        if self._home_refresh is not None and not self._home_refresh.done():
            self._home_again = True
            return

        async def later() -> None:
            again = True
            while again:
                await asyncio.sleep(self._home_delay)
                self._home_again = False  # from here on, a new ask needs a new round
                try:
                    await self._publish_homes()
                except Exception:
                    log.exception("home_refresh_failed")
                again = self._home_again

        self._home_refresh = asyncio.create_task(later())

    async def _publish_homes(self) -> None:
        viewers = sorted(self._home_viewers)
        if not viewers:
            return
        pauses = await self._store.active_pauses()
        now = self._clock()
        for user_id in viewers:
            view = home_view(pauses=pauses, now=now, user_id=user_id)
            await self._publish(user_id, view, Urgency.REFRESH)


def _budget(method: str, per_min: float, burst: int) -> WorkspaceBudget:
    """``method``'s workspace budget, one token short of Slack's burst: a call that reaches
    Slack a little early (network and event-loop jitter) still finds a token there."""
    return WorkspaceBudget(per_min=per_min, burst=max(1, burst - 1), name=method)


# -- summaries of coalesced notices ---------------------------------------------------------


def _clean(text: str, limit: int) -> str:
    return blocks.truncate(blocks.escape(text), limit)


def _card_of(request: OperationRequest) -> tuple[str, str] | None:
    if not (request.channel and request.card_ts):
        return None
    return request.channel, request.card_ts


def _build_permalink(team_url: str, channel: str, ts: str) -> str | None:
    """Slack's permalink of a top-level message, or ``None`` if the parts look wrong."""
    if not (_CHANNEL_ID_RE.match(channel) and _TS_RE.match(ts)):
        return None  # not an id and a ts as Slack gives them: let chat.getPermalink say
    return f"{team_url}archives/{channel}/p{ts.replace('.', '')}"


def _safe_link(link: str | None) -> bool:
    """Whether ``link`` can go into mrkdwn as ``<link|thread>`` as it is."""
    if not link:
        return False
    return link.startswith("https://") and not any(c in link for c in "<>| ")


def _thread_link(link: str | None) -> str:
    if not _safe_link(link):
        return ""
    return f" <{link}|thread>"


def _summary_line(notice: Notice) -> str:
    spec = notice.request.spec
    target = f"`{_clean(spec.target_label(), 300)}` {_clean(spec.name, 200)}"
    line = f"\u2022 {target} \u2014 {_clean(notice.text, 1000)}{_thread_link(notice.link)}"
    return " ".join(line.split("\n"))


def _pages(lines: Sequence[str]) -> list[tuple[list[str], int]]:
    """Lines grouped into messages: (section texts within Block Kit limits, line count)."""
    pages: list[tuple[list[str], int]] = []
    sections: list[str] = []
    count = 0
    for line in lines:
        if count >= SUMMARY_ITEMS_MAX:
            pages.append((sections, count))
            sections, count = [], 0
        if sections and len(sections[-1]) + 1 + len(line) <= blocks.TEXT_MAX:
            sections[-1] = f"{sections[-1]}\n{line}"
        else:
            if len(sections) >= _SUMMARY_SECTIONS_MAX:
                pages.append((sections, count))
                sections, count = [], 0
            sections.append(line)
        count += 1
    if sections:
        pages.append((sections, count))
    return pages


def _fallback(notices: Sequence[Notice], heading: str) -> str:
    names: list[str] = []
    size = 0
    for notice in notices:
        name = blocks.escape(notice.request.spec.target_label())
        if names and size + len(name) > _FALLBACK_NAMES_MAX:
            break
        names.append(name)
        size += len(name) + 2
    more = len(notices) - len(names)
    tail = f" \u2026and {more} more" if more else ""
    return blocks.truncate(f"{heading}: {', '.join(names)}{tail}", blocks.TEXT_MAX)


def notice_summaries(notices: Sequence[Notice]) -> list[blocks.Message]:
    """``12 pauses ended`` with one line per notice (target, outcome, thread link).

    Within Block Kit's limits (50 blocks, 3,000 characters a section): when the notices do
    not fit in one message they are split over as many as needed, each saying which part
    it is and how many more follow, so every notice is shown somewhere.
    """
    total = len(notices)
    pages = _pages([_summary_line(n) for n in notices])
    messages: list[blocks.Message] = []
    shown = 0
    for sections, count in pages:
        first = shown + 1
        shown += count
        heading = f"{total} pauses ended"
        if len(pages) > 1:
            heading += f" ({first}\u2013{shown} of {total})"
        body: list[Any] = [blocks.section(f":bell: *{heading}*")]
        body += [blocks.section(text) for text in sections]
        if shown < total:
            body.append(blocks.context(f"\u2026and {total - shown} more in the next message"))
        messages.append(
            blocks.Message(
                text=_fallback(notices[first - 1 : shown], heading),
                blocks=[b.to_dict() for b in body],
            )
        )
    return messages
