"""A bot process dies while it tells Slack about a burst of pause ends; nothing is lost or
said twice.

The pause ends close their pauses and write their thread notes, card edits and notices to
the outbox in one transaction; the victim (a real bot process, see test_recovery.py) dies
right after that commit, right after a message reached Slack but before it was marked
sent, or by SIGKILL in the middle of the paced burst. The restarted bot (after the dead
process's leases run out) delivers the rest: every thread has its end note exactly once
(a message Slack already has is found by its metadata, not posted again), every card ends
in its final state, and every notice reaches the notify channel once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial

import pytest

from bot.domain.jobs import JobKind, job_key
from bot.domain.outbox import OUTBOX_LEASE, OutboxStatus
from bot.faults import CrashPoint
from bot.store import Store
from sandbox.clock import Clock
from sandbox.sfmc import STAGING_MID
from sandbox.sfmc.schedule import Schedule
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import card_text, thread
from tests.scenarios.test_recovery import Victim, victims  # noqa: F401

OPS, NOTIFY = "C0OPS", "C0NOTIFY"
BURST = 6
#: The end note: "Resumed: ..." or, when the dead process had resumed it but not recorded
#: it, "Nothing to resume: it is active" (the pause-end job runs again after the restart).
ENDED = "The pause time is up."
ACTIVE = 6
JOB_LEASE = timedelta(seconds=60)  # the scheduler's


@pytest.fixture
def bot(sandbox: Sandbox, database_url: str, clock: Clock) -> Iterator[BotUnderTest]:
    under_test = BotUnderTest(sandbox, database_url, clock=clock, notify={"staging": NOTIFY})
    try:
        yield under_test
    finally:
        under_test.stop()


def key(i: int) -> str:
    return f"burst-{i}"


def paused_burst(bot: BotUnderTest) -> dict[str, str]:
    """``BURST`` staging automations paused for an hour; each one's card ts by key."""
    for i in range(BURST):
        bot.providers.sfmc.add_automation(
            STAGING_MID,
            key=key(i),
            name=f"Burst {i}",
            status=ACTIVE,
            schedule=Schedule("Hourly", start=datetime(2024, 1, 8), end=datetime(2079, 6, 6)),
        )
        bot.driver.slash_command(
            f"pause automation:{key(i)} for 1h then resume", user="U0ALICE", channel=OPS
        )

    def cards() -> dict[str, str] | None:
        found = {}
        for card in bot.cards(OPS):
            body = json.dumps(card)
            for i in range(BURST):
                if f"automation:{key(i)}" in body:
                    found[key(i)] = str(card["ts"])
        return found if len(found) == BURST else None

    by_key: dict[str, str] = wait_for(cards, what="the cards")
    for ts in by_key.values():
        wait_for(partial(verified, bot, ts), what="the verified reply")
    bot.settle()
    return by_key


def verified(bot: BotUnderTest, ts: str) -> bool:
    return any("Verified" in t for t in thread(bot, ts))


def end_now(bot: BotUnderTest) -> None:
    """Move every pause's end job to now (the victim runs on the wall clock)."""

    async def move() -> None:
        store = Store.from_url(bot.config.database_url)
        try:
            async with store.atomic():  # all due at once: one pass, one batch
                await due(store)
        finally:
            await store.close()

    async def due(store: Store) -> None:
        for pause in await store.active_pauses():
            job = await store.job(job_key(JobKind.PAUSE_END, pause.id))
            assert job is not None
            await store.schedule(
                kind=JobKind.PAUSE_END, key=job.key, due_at=store.now(), payload=job.payload
            )

    asyncio.run(move())


def unsent(bot: BotUnderTest) -> int:
    async def count() -> int:
        store = Store.from_url(bot.config.database_url)
        try:
            return await store.unsent_outbox()
        finally:
            await store.close()

    return asyncio.run(count())


def rows_of(bot: BotUnderTest, ts: str) -> list[tuple[object, ...]]:
    async def rows() -> list[tuple[object, ...]]:
        store = Store.from_url(bot.config.database_url)
        try:
            return [
                (i.id, i.kind.value, i.status.value, i.attempts, i.owner, i.sent_ts)
                for i in await store.outbox_items()
                if i.thread_ts == ts
            ]
        finally:
            await store.close()

    return asyncio.run(rows())


def sent_rows(bot: BotUnderTest) -> list[str]:
    async def rows() -> list[str]:
        store = Store.from_url(bot.config.database_url)
        try:
            return [i.status.value for i in await store.outbox_items()]
        finally:
            await store.close()

    return asyncio.run(rows())


def ended_notes(bot: BotUnderTest, by_key: dict[str, str]) -> int:
    return sum(any(ENDED in t for t in thread(bot, ts)) for ts in by_key.values())


def card_ended(bot: BotUnderTest, ts: str) -> bool:
    card = card_text(bot, ts, OPS)
    return "*Pause*" in card and "resume_now" not in card.lower()  # over: no Resume now


def noticed(bot: BotUnderTest) -> dict[str, int]:
    body = json.dumps([m.get("blocks") for m in bot.slack.messages(NOTIFY)])
    return {key(i): body.count(f"automation:{key(i)}") for i in range(BURST)}


@pytest.mark.parametrize("death", ["after_outbox_commit", "after_slack_send", "sigkill"])
def test_a_burst_of_pause_ends_is_told_once_whatever_the_moment_of_the_crash(
    bot: BotUnderTest,
    victims: list[Victim],  # noqa: F811
    death: str,
) -> None:
    by_key = paused_burst(bot)
    notices_before = len(bot.slack.messages(NOTIFY))
    crash_at = None if death == "sigkill" else CrashPoint(death)
    victim = Victim(bot, crash_at)
    victims.append(victim)
    end_now(bot)
    if crash_at is None:
        wait_for(lambda: ended_notes(bot, by_key) >= 2, what="the first end notes", timeout=60)
        victim.kill()
    else:
        victim.crashed()
    told = ended_notes(bot, by_key)
    assert told < BURST  # the crash came before everything was said
    if death == "after_outbox_commit":
        assert told == 0
    assert unsent(bot) > 0

    bot.start(port=victim.port)
    assert bot.clock is not None
    # the dead process's leases (its outbox rows, its scheduler's jobs) run out
    bot.clock.advance(max(OUTBOX_LEASE, JOB_LEASE) + timedelta(seconds=5))

    wait_for(lambda: unsent(bot) == 0, what="the outbox to empty", timeout=90)
    bot.settle()
    for name, ts in by_key.items():
        notes = [t for t in thread(bot, ts) if ENDED in t]
        assert len(notes) == 1, (name, thread(bot, ts), rows_of(bot, ts))
        assert card_ended(bot, ts), (name, card_text(bot, ts, OPS))
    assert noticed(bot) == {key(i): 1 for i in range(BURST)}, bot.slack.messages(NOTIFY)
    assert len(bot.slack.messages(NOTIFY)) > notices_before
    assert set(sent_rows(bot)) == {OutboxStatus.SENT.value}
    for i in range(BURST):
        assert bot.providers.sfmc.automation(STAGING_MID, key(i)).status == ACTIVE


def test_two_replicas_sharing_the_outbox_deliver_each_message_once(bot: BotUnderTest) -> None:
    by_key = paused_burst(bot)
    bot.start_another()
    end_now(bot)

    wait_for(lambda: ended_notes(bot, by_key) == BURST, what="every end note", timeout=90)
    wait_for(lambda: unsent(bot) == 0, what="the outbox to empty", timeout=90)
    bot.settle()
    for name, ts in by_key.items():
        notes = [t for t in thread(bot, ts) if ENDED in t]
        assert len(notes) == 1, (name, thread(bot, ts))
        assert card_ended(bot, ts), (name, card_text(bot, ts, OPS))
    assert noticed(bot) == {key(i): 1 for i in range(BURST)}, bot.slack.messages(NOTIFY)
