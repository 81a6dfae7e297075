"""The Slack outbox in the store (SQLite and PostgreSQL): enqueue in a transaction, leased
claims in stream order, versioned card edits, retries, give-up and pruning."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.domain.outbox import OutboxKind, OutboxMessage, OutboxStatus, card_stream
from bot.store.repository import Store
from tests.store.conftest import FakeClock, waiting_on_a_lock

LEASE = timedelta(seconds=60)
CH = "C0CARDS"
TS = "1700000000.000100"


def reply(text: str, ts: str = TS) -> OutboxMessage:
    return OutboxMessage(
        kind=OutboxKind.REPLY, channel=CH, thread_ts=ts, payload={"type": "t", "data": text}
    )


def edit(state: str, ts: str = TS) -> OutboxMessage:
    return OutboxMessage(
        kind=OutboxKind.EDIT, channel=CH, thread_ts=ts, payload={"type": "card", "data": state}
    )


def notice(text: str, channel: str = "C0NOTIFY") -> OutboxMessage:
    return OutboxMessage(kind=OutboxKind.NOTICE, channel=channel, payload={"data": text})


async def claim(store: Store, clock: FakeClock, owner: str = "a", limit: int = 50) -> list[int]:
    items = await store.claim_outbox(owner=owner, now=clock(), lease=LEASE, limit=limit)
    return [i.id for i in items]


async def test_an_enqueue_inside_a_failed_atomic_block_is_not_kept(store: Store) -> None:
    async def block() -> None:
        async with store.atomic():
            await store.enqueue_outbox(reply("one"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await block()
    assert await store.outbox_items() == []
    async with store.atomic():
        await store.enqueue_outbox(reply("two"))
    [item] = await store.outbox_items()
    assert item.payload["data"] == "two"
    assert item.status is OutboxStatus.PENDING
    assert item.stream == card_stream(CH, TS)


async def test_a_stream_goes_out_one_row_at_a_time_in_order(store: Store, clock: FakeClock) -> None:
    first = await store.enqueue_outbox(reply("1"))
    second = await store.enqueue_outbox(reply("2"))
    other = await store.enqueue_outbox(reply("x", ts="1700000000.000200"))
    assert sorted(await claim(store, clock)) == [first, other]
    assert await claim(store, clock, owner="b") == []  # the second waits behind the first
    assert await store.outbox_sent({first: 1}, owner="a", ts="1.1") == {first}
    assert await claim(store, clock, owner="b") == [second]


async def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_mark_it(
    store: Store, clock: FakeClock
) -> None:
    row = await store.enqueue_outbox(reply("1"))
    assert await claim(store, clock, owner="dead") == [row]
    clock.advance(LEASE - timedelta(seconds=1))
    assert await claim(store, clock, owner="b") == []
    clock.advance(timedelta(seconds=2))
    [taken] = await store.claim_outbox(owner="b", now=clock(), lease=LEASE, limit=10)
    assert (taken.id, taken.attempts, taken.owner) == (row, 2, "b")
    assert await store.outbox_sent({row: 1}, owner="dead", ts="1.1") == set()
    assert await store.outbox_sent({row: 1}, owner="b", ts="1.2") == {row}
    [item] = await store.outbox_items()
    assert (item.status, item.sent_ts) == (OutboxStatus.SENT, "1.2")


async def test_edits_of_a_card_bump_one_row_and_only_the_latest_counts_as_sent(
    store: Store, clock: FakeClock
) -> None:
    first = await store.enqueue_outbox(edit("working"))
    assert await store.enqueue_outbox(edit("done")) == first
    [item] = await store.outbox_items()
    assert (item.version, item.payload["data"]) == (2, "done")
    [claimed] = await store.claim_outbox(owner="a", now=clock(), lease=LEASE, limit=5)
    # an edit enqueued while this one is being sent bumps it: the send does not count
    assert await store.enqueue_outbox(edit("verified")) == first
    assert await store.outbox_sent({first: claimed.version}, owner="a", ts=TS) == set()
    [again] = await store.claim_outbox(owner="a", now=clock(), lease=LEASE, limit=5)
    assert (again.id, again.version, again.payload["data"]) == (first, 3, "verified")
    assert await store.outbox_sent({first: again.version}, owner="a", ts=TS) == {first}


async def test_an_edit_after_a_reply_keeps_its_place_and_drops_the_older_pending_edit(
    store: Store, clock: FakeClock
) -> None:
    await store.enqueue_outbox(edit("working"))
    note = await store.enqueue_outbox(reply("executing"))
    latest = await store.enqueue_outbox(edit("done"))
    items = await store.outbox_items()
    assert [(i.id, i.kind) for i in items] == [(note, OutboxKind.REPLY), (latest, OutboxKind.EDIT)]
    assert await claim(store, clock) == [note]  # the edit waits for the reply before it


async def test_notices_wait_for_their_window_and_are_claimed_together(
    store: Store, clock: FakeClock
) -> None:
    start = clock()
    window = timedelta(seconds=2)
    a = await store.enqueue_outbox(notice("a"), due_at=start + window, gather_since=start)
    clock.advance(timedelta(seconds=1))
    b = await store.enqueue_outbox(notice("b"), due_at=clock() + window, gather_since=start)
    clock.advance(timedelta(seconds=1, milliseconds=500))
    assert await claim(store, clock) == []  # the second notice held the first one back
    clock.advance(timedelta(seconds=1))
    assert sorted(await claim(store, clock)) == [a, b]


async def test_replies_go_before_notices_before_edits_when_the_claim_is_short(
    store: Store, clock: FakeClock
) -> None:
    card_edit = await store.enqueue_outbox(edit("done", ts="1700000000.000300"))
    note = await store.enqueue_outbox(notice("ended"))
    thread_note = await store.enqueue_outbox(reply("ended"))
    assert await claim(store, clock, limit=1) == [thread_note]
    assert await claim(store, clock, limit=1) == [note]
    assert await claim(store, clock, limit=1) == [card_edit]


async def test_failures_are_retried_later_then_given_up(store: Store, clock: FakeClock) -> None:
    row = await store.enqueue_outbox(reply("1"))
    await claim(store, clock)
    later = clock() + timedelta(seconds=5)
    assert await store.outbox_failed([row], owner="a", error="boom", retry_at=later) == {row}
    assert await claim(store, clock) == []
    clock.advance(timedelta(seconds=5))
    assert await claim(store, clock) == [row]
    assert await store.outbox_failed([row], owner="a", error="again", retry_at=None) == {row}
    [item] = await store.outbox_items()
    assert (item.status, item.attempts, item.last_error) == (OutboxStatus.FAILED, 2, "again")
    assert await store.unsent_outbox() == 0


async def test_release_hands_rows_back_and_prune_forgets_old_sent_rows(
    store: Store, clock: FakeClock
) -> None:
    sent = await store.enqueue_outbox(reply("1"))
    held = await store.enqueue_outbox(reply("2", ts="1700000000.000200"))
    await claim(store, clock, owner="a")
    await store.outbox_sent({sent: 1}, owner="a", ts="1.1")
    assert await store.release_outbox(owner="a") == 1
    assert await claim(store, clock, owner="b") == [held]
    assert await store.prune_outbox(clock()) == 0  # written at this very instant
    clock.advance(timedelta(days=1))
    assert await store.prune_outbox(clock() - timedelta(hours=1)) == 1
    assert [i.id for i in await store.outbox_items()] == [held]


async def test_concurrent_claimers_never_share_a_row(migrated_url: str, clock: FakeClock) -> None:
    stores = [Store.from_url(migrated_url, clock=clock) for _ in range(3)]
    try:
        for i in range(60):
            await stores[0].enqueue_outbox(reply(str(i), ts=f"1700000000.{i:06d}"))

        async def claimer(store: Store, name: str) -> list[int]:
            got: list[int] = []
            while batch := await claim(store, clock, owner=name, limit=7):
                got += batch
            return got

        results = await asyncio.gather(*(claimer(s, f"o{n}") for n, s in enumerate(stores)))
    finally:
        for s in stores:
            await s.close()
    everything = [row for got in results for row in got]
    assert len(everything) == 60
    assert len(set(everything)) == 60


async def test_one_recovery_pass_claims_the_posting_of_a_missing_card(
    store: Store, clock: FakeClock
) -> None:
    from tests.store.test_repository import new_request

    request = await new_request(store)
    clock.advance(timedelta(minutes=5))
    idle_before = clock() - timedelta(minutes=1)
    first, second = await asyncio.gather(
        store.claim_card_post(request.id, idle_before=idle_before),
        store.claim_card_post(request.id, idle_before=idle_before),
    )
    assert sorted([first, second]) == [False, True]
    await store.set_card(request.id, channel=CH, card_ts=TS)
    clock.advance(timedelta(minutes=5))
    assert not await store.claim_card_post(request.id, idle_before=clock())  # it has a card


async def test_a_batch_card_its_edits_and_notes_are_one_stream_in_order(
    store: Store, clock: FakeClock
) -> None:
    from bot.domain.outbox import batch_stream

    post = OutboxMessage(kind=OutboxKind.CARD, channel=CH, batch_id="b1", payload={"p": 1})
    stale = OutboxMessage(kind=OutboxKind.EDIT, channel=CH, batch_id="b1", payload={"e": 1})
    note = OutboxMessage(
        kind=OutboxKind.REPLY, channel=CH, thread_ts=TS, batch_id="b1", payload={"n": 1}
    )
    card = await store.enqueue_outbox(post)
    first = await store.enqueue_outbox(stale)
    assert await store.enqueue_outbox(stale) == first  # coalesced: one edit waits
    reply_id = await store.enqueue_outbox(note)
    items = await store.outbox_items(stream=batch_stream("b1"))
    assert [(i.id, i.kind, i.batch_id) for i in items] == [
        (card, OutboxKind.CARD, "b1"),
        (first, OutboxKind.EDIT, "b1"),
        (reply_id, OutboxKind.REPLY, "b1"),
    ]
    assert items[1].version == 2
    assert await claim(store, clock) == [card]  # the post first: the rest waits for it


async def test_on_postgresql_an_edit_is_not_folded_into_a_row_its_sender_just_marked_sent(
    store: Store, clock: FakeClock
) -> None:
    """The last edit of a card (a batch's "Done") must never be lost. Under READ COMMITTED
    the enqueue reads the card's unsent tail edit, then bumps it; should its sender mark it
    sent in between (having drawn the card before this change committed), a bump of the
    sent row would be an edit nobody sends. Here the sender's mark holds the row (another
    connection) while the enqueue waits on it."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one transaction at a time (BEGIN IMMEDIATE)")
    first = await store.enqueue_outbox(edit("working"))
    [claimed] = await store.claim_outbox(owner="a", now=clock(), lease=LEASE, limit=5)
    assert claimed.id == first

    async with store.engine.connect() as sender:
        marked = await sender.execute(  # what outbox_sent does, its commit held back
            text("UPDATE outbox SET status = 'sent', sent_ts = :ts WHERE id = :id AND version = 1"),
            {"ts": TS, "id": first},
        )
        assert marked.rowcount == 1
        task = await waiting_on_a_lock(
            store, store.enqueue_outbox(edit("done")), query="UPDATE outbox%"
        )
        await sender.commit()
    latest = await asyncio.wait_for(task, timeout=10)
    assert latest != first  # a row of its own, behind the sent one
    pending = [i for i in await store.outbox_items() if i.status is OutboxStatus.PENDING]
    assert [(i.id, i.payload["data"]) for i in pending] == [(latest, "done")]
    assert await claim(store, clock, owner="b") == [latest]
