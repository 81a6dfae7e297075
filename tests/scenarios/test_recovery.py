"""A bot process dies at each point of a request's life; the restarted bot finishes it.

The victim is a real bot process (spawned, its own ASGI app on the bot's port) that ends
without any clean-up: at a crash point (``AUTOMATION_BOT_TEST_CRASH_AT``, ``os._exit``) or
by SIGKILL while its provider call is in flight (the SFMC emulator holds the answer). The
bot then restarts on the same database, Slack emulator and providers, and every approved
request runs exactly once (counted on the SFMC emulator), every thread gets its result
once, and nothing is taken over while the process that holds it may still be at work.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.process import BaseProcess
from typing import Any

import httpx
import pytest

from bot import render
from bot.config import BotConfig, SlackSettings
from bot.domain.jobs import Job
from bot.domain.requests import ExecutionPhase, OperationRequest, RequestStatus
from bot.faults import CRASH_AT_ENV, CRASHED_EXIT, CrashPoint
from bot.metrics import Metrics
from bot.serve import create_asgi_app
from bot.service.recovery import RECOVERY_KEY
from bot.service.requests import EXECUTION_LEASE
from bot.slack.ids import ApprovalAction
from bot.store import Store
from sandbox.clock import Clock
from sandbox.server import ServerThread
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox
from tests.processes import reap, sigkill
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import ask, card_text, thread

OPS = "C0OPS"
STAGING_PAUSE = "pause automation:hourly-lead-sync for 2d"
STAGING_TARGET = "hourly-lead-sync"
PROD_TARGET = "daily-welcome-send"
VERIFIED = "Verified: it is now"
STOPPED_WHILE_SENDING = "The bot stopped while sending this"
PAUSED = 4  # Automation Studio's status code
#: Past the execution lease (and the age a vote or a request needs before recovery acts).
PAST_THE_LEASE = EXECUTION_LEASE + timedelta(seconds=5)


def bot_process(
    config: BotConfig, slack: SlackSettings, port: int, crash_at: str, ready: Any
) -> None:
    """Run in another process: the bot on ``port`` (as `automation-bot serve` runs it),
    ending itself at ``crash_at`` (empty: only a kill ends it)."""
    if crash_at:
        os.environ[CRASH_AT_ENV] = crash_at
    app = create_asgi_app(config, slack, metrics=Metrics(), scheduler_idle=0.05)
    ServerThread(app, port=port, lifespan="on").start()
    ready.set()
    threading.Event().wait()


@pytest.fixture
def bot(sandbox: Sandbox, database_url: str, clock: Clock) -> Iterator[BotUnderTest]:
    """The bot on a clock the test can move on (wall time plus an offset, as the
    victim's own wall clock is)."""
    under_test = BotUnderTest(sandbox, database_url, clock=clock)
    try:
        yield under_test
    finally:
        under_test.stop()


class Victim:
    """The bot, moved into a process of its own that the test ends."""

    def __init__(self, bot: BotUnderTest, crash_at: CrashPoint | None) -> None:
        self.port = bot.stop_bot()
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.process: BaseProcess = ctx.Process(
            target=bot_process,
            args=(
                bot.config,
                bot.slack_settings,
                self.port,
                crash_at.value if crash_at else "",
                ready,
            ),
        )
        self.process.start()
        assert ready.wait(60), "the victim bot never started"

    def crashed(self) -> None:
        """Wait for it to end itself at its crash point."""
        self.process.join(60)
        assert self.process.exitcode == CRASHED_EXIT, self.process.exitcode

    def kill(self) -> None:
        asyncio.run(sigkill(self.process))


@pytest.fixture
def victims() -> Iterator[list[Victim]]:
    started: list[Victim] = []
    yield started
    for victim in started:
        reap(victim.process)


def changes(bot: BotUnderTest, action: str = "Schedule") -> int:
    return sum(1 for c in list(bot.providers.sfmc.calls) if c.soap_action == action)


def status(bot: BotUnderTest, mid: int, key: str) -> int:
    return bot.providers.sfmc.automation(mid, key).status


def count(bot: BotUnderTest, ts: str, needle: str) -> int:
    return sum(needle in t for t in thread(bot, ts))


def said(bot: BotUnderTest, ts: str, needle: str, what: str) -> None:
    try:
        wait_for(lambda: count(bot, ts, needle), what=what, timeout=30)
    except AssertionError as e:
        raise AssertionError(f"{e}; the thread: {thread(bot, ts)}") from None


def request_on(bot: BotUnderTest, ts: str) -> OperationRequest:
    async def find() -> OperationRequest | None:
        store = Store.from_url(bot.config.database_url)
        try:
            return await store.find_by_card(channel=OPS, card_ts=ts)
        finally:
            await store.close()

    found: OperationRequest = wait_for(lambda: asyncio.run(find()), what="the request")
    return found


def recovery_job(bot: BotUnderTest) -> Job | None:
    async def find() -> Job | None:
        store = Store.from_url(bot.config.database_url)
        try:
            return await store.job(RECOVERY_KEY)
        finally:
            await store.close()

    return asyncio.run(find())


def recovery_ran(bot: BotUnderTest) -> bool:
    """The periodic recovery pass ran since the clock last moved (it re-arms itself)."""
    assert bot.clock is not None
    job = recovery_job(bot)
    return job is not None and job.due_at > bot.clock.now()


def staging_card(bot: BotUnderTest) -> str:
    bot.driver.slash_command(STAGING_PAUSE, user="U0ALICE", channel=OPS)
    [card] = wait_for(bot.cards, what="the card")
    return str(card["ts"])


def no_more_later(bot: BotUnderTest, ts: str, schedules: int) -> None:
    """Further recovery passes change nothing and say nothing more."""
    assert bot.clock is not None
    before = thread(bot, ts)
    bot.clock.advance(PAST_THE_LEASE)
    wait_for(lambda: recovery_ran(bot), what="another recovery pass", timeout=30)
    bot.settle()
    assert changes(bot) == schedules
    assert thread(bot, ts) == before


# -- point 3: a vote recorded, the process dead before acting on it ---------------------------


def test_an_approval_recorded_before_a_crash_is_carried_out_once_after_the_restart(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    victim = Victim(bot, CrashPoint.AFTER_VOTE)
    victims.append(victim)
    ts = ask(bot)
    with contextlib.suppress(httpx.HTTPError):  # the process may die before it answers
        bot.driver.block_action(
            action_id=ApprovalAction.APPROVE, user="U0BOB", channel=OPS, message_ts=ts
        )
    victim.crashed()
    assert request_on(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert changes(bot) == 0

    bot.start(port=victim.port)
    wait_for(lambda: recovery_job(bot), what="the start-up recovery pass")
    bot.settle()
    assert changes(bot) == 0  # the vote is fresh: its process may still be acting on it
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)

    said(bot, ts, VERIFIED, "the result")
    assert changes(bot) == 1
    assert status(bot, PROD_MID, PROD_TARGET) == PAUSED
    decided = [t for t in thread(bot, ts) if t.startswith(":ballot_box_with_check:")]
    assert len(decided) == 1, thread(bot, ts)
    assert count(bot, ts, VERIFIED) == 1
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    assert request_on(bot, ts).status is RequestStatus.SUCCEEDED
    no_more_later(bot, ts, schedules=1)
    assert "already counted" not in " ".join(bot.reply_texts())


# -- point 4: killed after `executing`, before and during the provider call -------------------


def test_a_call_not_yet_sent_at_a_crash_is_sent_once_after_the_lease(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    victim = Victim(bot, CrashPoint.AFTER_EXECUTING_AUDIT)
    victims.append(victim)
    ts = staging_card(bot)
    victim.crashed()
    assert changes(bot) == 0
    assert request_on(bot, ts).status is RequestStatus.EXECUTING

    bot.start(port=victim.port)
    wait_for(lambda: recovery_job(bot), what="the start-up recovery pass")
    bot.settle()
    assert changes(bot) == 0  # the dead process's lease has not run out yet
    assert not any("not sent again" in t for t in thread(bot, ts)), thread(bot, ts)
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)

    said(bot, ts, VERIFIED, "the result")
    assert changes(bot) == 1
    assert status(bot, STAGING_MID, STAGING_TARGET) == PAUSED
    assert count(bot, ts, "The bot stopped before sending this") == 1
    assert count(bot, ts, VERIFIED) == 1
    assert count(bot, ts, STOPPED_WHILE_SENDING) == 0
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    no_more_later(bot, ts, schedules=1)


def test_a_call_that_may_have_been_sent_is_read_back_not_sent_again(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    """Killed just after recording "may have been sent" (nothing reached SFMC): the thread
    and the card say what the read-back shows, never "Sent, but..."."""
    victim = Victim(bot, CrashPoint.BEFORE_PROVIDER_CALL)
    victims.append(victim)
    ts = staging_card(bot)
    victim.crashed()
    assert changes(bot) == 0

    bot.start(port=victim.port)
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)

    said(bot, ts, STOPPED_WHILE_SENDING, "the truthful result")
    wait_for(
        lambda: request_on(bot, ts).status is RequestStatus.UNVERIFIED, what="the request settled"
    )
    settled = request_on(bot, ts)  # recorded as what happened; each front end words it
    assert (settled.execution_phase, settled.error) == (ExecutionPhase.INTERRUPTED, None)
    assert "probably not carried out" in render.card_text(settled)  # the console's card
    card: str = wait_for(
        lambda: next((t for t in [card_text(bot, ts)] if STOPPED_WHILE_SENDING in t), None),
        what="the card's final state",
    )
    bot.settle()
    assert changes(bot) == 0
    assert status(bot, STAGING_MID, STAGING_TARGET) != PAUSED
    texts = thread(bot, ts)
    assert not any("was sent" in t or "Sent, but" in t for t in texts), texts
    assert "Sent, but" not in card
    said(bot, ts, "so it was probably not carried out", "the result")
    assert count(bot, ts, f"{STOPPED_WHILE_SENDING} to the provider; it was not sent again") == 1
    assert count(bot, ts, "so it was probably not carried out") == 1
    no_more_later(bot, ts, schedules=0)


def test_a_call_in_flight_when_the_bot_is_killed_is_read_back_once(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    """SIGKILL while SFMC has acted but not answered: not sent again; the read-back shows
    it paused, and the thread and card say so once."""
    bot.providers.sfmc.hold_answers(soap_action="Schedule")
    victim = Victim(bot, None)
    victims.append(victim)
    ts = staging_card(bot)
    wait_for(lambda: changes(bot), what="the pause call")
    victim.kill()
    bot.providers.sfmc.release_answers()
    assert status(bot, STAGING_MID, STAGING_TARGET) == PAUSED

    bot.start(port=victim.port)
    wait_for(lambda: recovery_job(bot), what="the start-up recovery pass")
    bot.settle()
    # its lease is still live: nobody reads it back and settles it yet
    assert not any("not sent again" in t for t in thread(bot, ts)), thread(bot, ts)
    assert count(bot, ts, VERIFIED) == 0
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)

    said(bot, ts, VERIFIED, "the result")
    assert changes(bot) == 1
    assert count(bot, ts, f"{STOPPED_WHILE_SENDING} to the provider; it was not sent again") == 1
    assert count(bot, ts, VERIFIED) == 1
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    no_more_later(bot, ts, schedules=1)


def test_a_request_settled_just_before_a_crash_still_gets_its_final_card(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    """Killed the moment a pause is verified and stored: nothing is left to recover, so
    the card's final edit must have been written with the result, not after it (the card
    would say "Working" for ever)."""
    bot.providers.sfmc.knobs.set(latency_ms=500)  # "Working" is on the card meanwhile
    victim = Victim(bot, CrashPoint.AFTER_SETTLED)
    victims.append(victim)
    ts = staging_card(bot)
    victim.crashed()
    bot.providers.sfmc.knobs.set(latency_ms=0)
    assert "Working" in card_text(bot, ts)
    assert request_on(bot, ts).status is RequestStatus.SUCCEEDED
    assert status(bot, STAGING_MID, STAGING_TARGET) == PAUSED

    bot.start(port=victim.port)
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)  # whatever the dead sender had taken is taken again
    said(bot, ts, VERIFIED, "the result")
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    bot.settle()
    assert count(bot, ts, VERIFIED) == 1
    assert changes(bot) == 1


# -- point 5: two replicas; one restarts while the other executes ----------------------------


def test_a_restarting_replica_does_not_take_over_a_live_execution(bot: BotUnderTest) -> None:
    assert bot.clock is not None
    replica = bot.start_another()
    bot.providers.sfmc.hold_answers(soap_action="Schedule")
    ts = staging_card(bot)
    wait_for(lambda: changes(bot), what="the pause call")
    owner = request_on(bot, ts).owner

    # the replica restarts: its start-up pass, then periodic ones while the call is slow
    replica.stop()
    bot.start_another()
    wait_for(lambda: recovery_job(bot), what="the start-up recovery pass")
    bot.clock.advance(EXECUTION_LEASE / 2)
    wait_for(lambda: recovery_ran(bot), what="a periodic recovery pass", timeout=30)
    bot.settle(in_flight_ok=True)  # the held call stays in flight on purpose
    assert not any("not sent again" in t for t in thread(bot, ts)), thread(bot, ts)
    assert count(bot, ts, VERIFIED) == 0  # nobody settled it behind the executing process
    assert request_on(bot, ts).status is RequestStatus.EXECUTING
    assert owner is not None
    assert request_on(bot, ts).owner == owner

    bot.providers.sfmc.release_answers()
    said(bot, ts, VERIFIED, "the result")
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    no_more_later(bot, ts, schedules=1)
    assert count(bot, ts, VERIFIED) == 1
    assert not any("not sent again" in t for t in thread(bot, ts)), thread(bot, ts)


# -- a request recorded, its card never posted ------------------------------------------------


def test_a_request_whose_card_was_never_posted_gets_it_and_runs_once(
    bot: BotUnderTest, victims: list[Victim]
) -> None:
    victim = Victim(bot, CrashPoint.BEFORE_CARD_POST)
    victims.append(victim)
    with contextlib.suppress(httpx.HTTPError):  # the process may die before it answers
        bot.driver.slash_command(STAGING_PAUSE, user="U0ALICE", channel=OPS)
    victim.crashed()
    assert bot.cards() == []
    assert changes(bot) == 0

    bot.start(port=victim.port)
    assert bot.clock is not None
    bot.clock.advance(PAST_THE_LEASE)
    [card] = wait_for(bot.cards, what="the card, posted by recovery")
    ts = str(card["ts"])
    said(bot, ts, VERIFIED, "the result")
    wait_for(lambda: "Done" in card_text(bot, ts), what="the card's final state")
    assert changes(bot) == 1
    assert count(bot, ts, VERIFIED) == 1
    assert len(bot.cards()) == 1
