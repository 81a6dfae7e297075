"""A batch's card, its progress edits and its thread notes go through the durable outbox.

Over real HTTP (the Slack emulator, the provider emulators): the preview card is an
outbox row drawn from the store when it is sent, its edits say only "the card of batch X
is stale" (only its latest state is sent, progress is coalesced, the card ends in its
final state), and a bot process that dies right after the outbox commit, or right after
the card reached Slack but before its row was marked sent, loses nothing and says
nothing twice: the restarted bot posts the card (or finds it by its metadata) once, and a
timed pause's end note once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.domain.bulk import Batch
from bot.domain.jobs import JobKind, job_key
from bot.domain.outbox import OUTBOX_LEASE, OutboxItem, OutboxKind, OutboxStatus
from bot.faults import CrashPoint
from bot.slack.ids import BulkAction
from bot.store import Store
from bot.store.batches import BatchStore
from sandbox.campaign import add_campaign
from sandbox.clock import Clock
from sandbox.sfmc import STAGING_MID
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for
from tests.scenarios.test_bulk_cards import CHANNEL, card_saying, card_with, click, text_of
from tests.scenarios.test_recovery import Victim, victims  # noqa: F401

JOB_LEASE = timedelta(seconds=60)  # the scheduler's
#: chat.update (Tier 3) well under Slack's budget, so progress edits must be coalesced.
LIMITS = {"tier3_per_min": 30, "tier3_burst": 2}


def outbox(bot: BotUnderTest) -> list[OutboxItem]:
    async def rows() -> list[OutboxItem]:
        store = Store.from_url(bot.config.database_url)
        try:
            return await store.outbox_items()
        finally:
            await store.close()

    return asyncio.run(rows())


def unsent(bot: BotUnderTest) -> int:
    return sum(1 for i in outbox(bot) if i.status is not OutboxStatus.SENT)


def batches(bot: BotUnderTest) -> list[Batch]:
    async def found() -> list[Batch]:
        store = Store.from_url(bot.config.database_url)
        try:
            ids = {i.batch_id for i in await store.outbox_items() if i.batch_id}
            got = [await BatchStore(store).get(b) for b in sorted(ids)]
            return [b for b in got if b is not None]
        finally:
            await store.close()

    return asyncio.run(found())


def updates_of(bot: BotUnderTest, ts: str) -> int:
    return sum(1 for c in bot.slack.calls("chat.update") if c.args.get("ts") == ts)


def test_a_bulk_pause_card_goes_through_the_outbox_coalesced_to_its_final_state(
    make_bot: BotFactory,
) -> None:
    bot = make_bot(slack_limits=LIMITS)
    add_campaign(bot.providers.sfmc, None, mids=(STAGING_MID,), automations=16, journeys=4)
    bot.driver.slash_command("pause staging/*:bf25-*")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    ts = str(preview["ts"])
    assert "20 target(s)" in text_of(preview)

    click(bot, BulkAction.CONFIRM, preview)
    done = text_of(card_saying(bot, ts, "Done"))
    wait_for(lambda: unsent(bot) == 0, what="the outbox to empty", timeout=60)
    bot.settle()
    assert "20 done, 0 failed, 0 left" in text_of(bot.slack.message(CHANNEL, ts))
    assert "20 done, 0 failed, 0 left" in done
    assert len(bot.cards(CHANNEL)) == 1  # one card, edited in place
    assert 1 <= updates_of(bot, ts) < 20  # coalesced: fewer edits than targets
    rows = outbox(bot)
    (batch,) = batches(bot)
    assert batch.card_ts == ts
    assert [r.kind for r in rows if r.kind is OutboxKind.CARD] == [OutboxKind.CARD]
    assert {r.batch_id for r in rows} == {batch.id}  # every row names its batch
    assert {r.stream for r in rows} == {f"batch:{batch.id}"}
    for n in range(1, 17):
        assert bot.providers.sfmc.automation(STAGING_MID, f"bf25-send-{n:03d}").status == 4


# -- a bot process dies around the card's post, or around a timed end's note -------------


@pytest.fixture
def bot(sandbox: Sandbox, database_url: str, clock: Clock) -> Iterator[BotUnderTest]:
    under_test = BotUnderTest(sandbox, database_url, clock=clock)
    try:
        yield under_test
    finally:
        under_test.stop()


def restart(bot: BotUnderTest, victim: Victim) -> None:
    """The bot again, once the dead process's leases (outbox rows, jobs) ran out."""
    bot.start(port=victim.port)
    assert bot.clock is not None
    bot.clock.advance(max(OUTBOX_LEASE, JOB_LEASE) + timedelta(seconds=5))


@pytest.mark.parametrize("death", ["after_outbox_commit", "after_slack_send"])
def test_a_preview_card_is_posted_once_whatever_the_moment_of_the_crash(
    bot: BotUnderTest,
    victims: list[Victim],  # noqa: F811
    death: str,
) -> None:
    victim = Victim(bot, CrashPoint(death))
    victims.append(victim)
    bot.driver.slash_command("pause staging/automation:daily-welcome-* for 1h")
    victim.crashed()
    posted = len(bot.cards(CHANNEL))
    assert posted == (0 if death == "after_outbox_commit" else 1)
    assert unsent(bot) == 1  # the card's row, written with the batch

    restart(bot, victim)
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    wait_for(lambda: unsent(bot) == 0, what="the outbox to empty", timeout=60)
    bot.settle()
    assert len(bot.cards(CHANNEL)) == 1  # posted once (or found by its metadata)
    (batch,) = batches(bot)
    assert batch.card_ts == preview["ts"]  # where it is, for its edits and reactions

    click(bot, BulkAction.CONFIRM, preview)
    card_saying(bot, str(preview["ts"]), "Done")
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    assert len(bot.cards(CHANNEL)) == 1


def end_batch_now(bot: BotUnderTest, batch_id: str) -> None:
    """Move the batch's end job to now (the victim runs on the wall clock)."""

    async def move() -> None:
        store = Store.from_url(bot.config.database_url)
        try:
            job = await store.job(job_key(JobKind.BATCH_END, batch_id))
            assert job is not None
            await store.schedule(
                kind=JobKind.BATCH_END, key=job.key, due_at=store.now(), payload=job.payload
            )
        finally:
            await store.close()

    asyncio.run(move())


def test_a_timed_bulk_end_note_is_posted_once_after_a_crash_after_the_outbox_commit(
    bot: BotUnderTest,
    victims: list[Victim],  # noqa: F811
) -> None:
    bot.driver.slash_command("pause staging/automation:daily-welcome-* for 1h")
    preview = card_with(bot, BulkAction.CONFIRM, 0)
    ts = str(preview["ts"])
    click(bot, BulkAction.CONFIRM, preview)
    card_saying(bot, ts, "Done")
    bot.settle()
    assert "Resume batch" in str(bot.slack.message(CHANNEL, ts)["blocks"])
    (source,) = batches(bot)

    victim = Victim(bot, CrashPoint.AFTER_OUTBOX_COMMIT)
    victims.append(victim)
    end_batch_now(bot, source.id)
    victim.crashed()  # the end is done and its note written, not sent
    assert bot.thread_texts(CHANNEL, ts) == []
    assert unsent(bot) > 0
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6

    restart(bot, victim)
    wait_for(lambda: bot.thread_texts(CHANNEL, ts), what="the end note", timeout=60)
    wait_for(lambda: unsent(bot) == 0, what="the outbox to empty", timeout=60)
    bot.settle()
    notes = bot.thread_texts(CHANNEL, ts)
    assert len(notes) == 1, notes  # once
    assert "2 resumed (verified), 0 failed" in notes[0]
    card = bot.slack.message(CHANNEL, ts)
    assert "Resume batch" not in str(card["blocks"])  # its card ends final: nothing held
    assert len(bot.cards(CHANNEL)) == 1  # the end is a note, not another card
