"""The outbox sender against the Slack emulator (real HTTP) and a real store: a row left
"sending" by a dead process is not posted twice, edits of a card are coalesced, a message
Slack will never take is given up, and what is not sent survives a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.outbox import (
    METADATA_EVENT_TYPE,
    OUTBOX_LEASE,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from bot.domain.requests import OperationRequest
from bot.slack import outbox_payloads
from bot.slack.app import create_web_client
from bot.slack.blocks import step_message
from bot.slack.notifier import SlackNotifier
from bot.slack.pacing import ChannelPacer
from bot.store.repository import Store
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator
from sandbox.slack.model import SANDBOX_BOT_TOKEN
from tests.db import DATABASE_PARAMS, fresh_store, test_database_urls
from tests.slack.test_blocks import make_request
from tests.store.conftest import FakeClock

CARDS = "C0OPS"


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator()
    with ServerThread(emulator.app) as server:
        yield emulator, server.url + "/api/"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture(params=DATABASE_PARAMS)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Store]:
    url = test_database_urls(tmp_path)[request.param]
    if url is None:
        pytest.skip("no PostgreSQL configured")
    async with fresh_store(url) as opened:
        opened._clock = clock
        yield opened


Make = Callable[..., SlackNotifier]


@pytest.fixture
async def make(store: Store) -> AsyncIterator[Make]:
    """Notifiers on ``store``, stopped before the store is closed."""
    made: list[SlackNotifier] = []

    def notifier_for(api: str, **kwargs: Any) -> SlackNotifier:
        kwargs.setdefault("client", create_web_client(token=SANDBOX_BOT_TOKEN, base_url=api))
        notifier = SlackNotifier(
            store=store,
            posts=ChannelPacer(rate=100.0, burst=10),
            edits=ChannelPacer(rate=100.0, burst=10, name="edits"),
            notice_window=0.1,
            **kwargs,
        )
        made.append(notifier)
        return notifier

    yield notifier_for
    for notifier in made:
        await notifier.aclose()


async def card(notifier: SlackNotifier, i: int = 0) -> OperationRequest:
    request = make_request(key=f"welcome-{i:03d}", id=f"req-{i}")
    request = request.model_copy(update={"channel": CARDS})
    ref = await notifier.post_card(request)
    assert ref is not None
    return request.model_copy(update={"channel": ref.channel, "card_ts": ref.ts})


def note(request: OperationRequest, text: str) -> OutboxMessage:
    return OutboxMessage(
        kind=OutboxKind.REPLY,
        channel=CARDS,
        thread_ts=request.card_ts,
        request_id=request.id,
        payload=outbox_payloads.message_payload(request, step_message(text)),
    )


async def test_a_row_a_dead_process_posted_is_not_posted_again(
    slack: tuple[SlackEmulator, str], store: Store, clock: FakeClock, make: Make
) -> None:
    emulator, api = slack
    notifier = make(api)
    request = await card(notifier)
    posted = await store.enqueue_outbox(note(request, "posted before the crash"))
    lost = await store.enqueue_outbox(note(request.model_copy(), "never posted"))
    # the dead process took both, posted the first (with its metadata), then died
    claimed = await store.claim_outbox(owner="dead", now=clock(), lease=OUTBOX_LEASE, limit=5)
    assert [i.id for i in claimed] == [posted]
    await notifier._client.chat_postMessage(
        channel=CARDS,
        thread_ts=request.card_ts,
        text="posted before the crash",
        metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"id": posted}},
    )

    assert await notifier.sender.flush()
    before = [m["text"] for m in emulator.thread(CARDS, str(request.card_ts))[1:]]
    assert before == ["posted before the crash"]  # the dead process's lease is live: wait

    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert await notifier.sender.flush()
    texts = [m["text"] for m in emulator.thread(CARDS, str(request.card_ts))[1:]]
    assert texts == ["posted before the crash", "never posted"]
    assert notifier.sender.found_posted == 1
    items = {i.id: i for i in await store.outbox_items()}
    assert items[posted].status is OutboxStatus.SENT
    assert items[lost].status is OutboxStatus.SENT
    assert items[lost].attempts == 1
    for message in emulator.thread(CARDS, str(request.card_ts))[1:]:
        assert message["metadata"]["event_type"] == METADATA_EVENT_TYPE


async def test_edits_of_one_card_waiting_together_are_sent_once(
    slack: tuple[SlackEmulator, str], store: Store, make: Make
) -> None:
    emulator, api = slack
    notifier = make(api, background=True)  # not started: nothing sent yet
    request = await card(notifier)
    for _ in range(5):
        await notifier.update_card(request)
    [row] = await store.outbox_items()
    assert row.version == 5
    emulator.clear_calls()
    assert await notifier.drain(within=10)
    assert len(emulator.calls("chat.update")) == 1


async def test_a_message_slack_will_never_take_is_given_up_at_once(
    slack: tuple[SlackEmulator, str], store: Store, make: Make
) -> None:
    _, api = slack
    notifier = make(api)
    request = make_request(id="req-gone").model_copy(
        update={"channel": "C0GONE", "card_ts": "1700000000.000100"}
    )
    await notifier.reply(request, step_message("nobody will read this"))
    [row] = await store.outbox_items()
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 1)
    assert row.last_error in {"channel_not_found", "thread_not_found"}


async def test_what_a_stopped_sender_held_is_sent_by_the_next_one(
    slack: tuple[SlackEmulator, str], store: Store, make: Make
) -> None:
    emulator, api = slack
    first = make(api, background=True)
    request = await card(first)
    await first.reply(request, step_message("one"))
    await first.reply(request, step_message("two"))
    await store.claim_outbox(owner=first.sender.owner, now=store.now(), lease=OUTBOX_LEASE, limit=5)
    await first.aclose()  # shutting down: hands its rows back
    second = make(api, background=True)
    second.start()
    await second.sender.flush()
    texts = [m["text"] for m in emulator.thread(CARDS, str(request.card_ts))[1:]]
    assert texts == ["one", "two"]


class CannotRead(AsyncWebClient):
    """A bot that may post in the channel but not read it (not a member)."""

    async def conversations_replies(self, **kwargs: Any) -> Any:
        return await super().conversations_replies(**{**kwargs, "channel": "C0NOPE"})


async def test_a_takeover_that_cannot_look_sends_rather_than_loses(
    slack: tuple[SlackEmulator, str], store: Store, clock: FakeClock, make: Make
) -> None:
    emulator, api = slack
    notifier = make(api, client=CannotRead(token=SANDBOX_BOT_TOKEN, base_url=api))
    request = await card(notifier)
    row = await store.enqueue_outbox(note(request, "taken over"))
    await store.claim_outbox(owner="dead", now=clock(), lease=OUTBOX_LEASE, limit=5)
    clock.advance(OUTBOX_LEASE + timedelta(seconds=1))
    assert await notifier.sender.flush()
    texts = [m["text"] for m in emulator.thread(CARDS, str(request.card_ts))[1:]]
    assert texts == ["taken over"]
    [item] = await store.outbox_items()
    assert (item.id, item.status) == (row, OutboxStatus.SENT)
