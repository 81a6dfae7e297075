"""A pause "for 2d then resume" of each kind, from the slash command to its end.

Over real HTTP, with the bot, both provider emulators and the Slack emulator on one clock:
the pause is verified, both reminders (24 h and 1 h before the end) arrive once in the
thread, nothing ends early, the end is carried out (automations, scrip) or observed
(journeys, after the guardrail's grace), read back, said once in the thread, shown on the
card and announced once in the notify channel with a link to the thread, while one bot
process is restarted and a second one runs on the same database all along.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.jobs import Job, JobKind, job_key
from bot.service.pauses import PauseTimings
from bot.slack.ids import ApprovalAction, ModalAction, ModalBlock
from bot.store import Store
from sandbox.clock import Clock
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import card_text
from tests.scenarios.test_modal import slack_state, text

OPS, NOTIFY = "C0OPS", "C0NOTIFY"
RESUMED = "The pause time is up. Resumed: it is now active"


@dataclass(frozen=True)
class Case:
    command: str
    name: str  # as the reminders and notices name it
    state: Callable[[Sandbox], str]  # the provider's own status, read on the emulator
    paused: str = "4"  # Automation Studio's status codes unless given
    resumed: str = "6"
    said: str = RESUMED  # the end note in the thread
    approval: bool = False
    after_end: timedelta = timedelta(0)


def _automation(mid: int, key: str) -> Callable[[Sandbox], str]:
    return lambda box: str(box.sfmc.automation(mid, key).status)


def _journey(key: str) -> Callable[[Sandbox], str]:
    return lambda box: box.sfmc.journey(STAGING_MID, key).status


def _scrip(name: str) -> Callable[[Sandbox], str]:
    def status(box: Sandbox) -> str:
        [found] = [a for a in box.scrip.automations() if a["name"] == name]
        return str(found["status"])

    return status


CASES = {
    "automation": Case(
        command="pause automation:hourly-lead-sync for 2d then resume",
        name="hourly-lead-sync",
        state=_automation(STAGING_MID, "hourly-lead-sync"),
    ),
    "journey": Case(
        command="pause journey:cart-abandonment for 2d then resume",
        name="cart-abandonment",
        state=_journey("cart-abandonment"),
        paused="Paused",
        resumed="Published",
        said="The pause ended: Journey Builder resumed it",
        after_end=PauseTimings().journey_grace,  # journeys are read after it
    ),
    "scrip": Case(
        command='pause scrip:"Birthday Bonus" for 2d then resume',
        name="Birthday Bonus",
        state=_scrip("Birthday Bonus"),
        paused="paused",
        resumed="active",
    ),
    "production automation": Case(
        command="pause prod/daily-welcome-send for 2d then resume",
        name="daily-welcome-send",
        state=_automation(PROD_MID, "daily-welcome-send"),
        approval=True,
    ),
}


@pytest.fixture
def bot(clocked_sandbox: Sandbox, database_url: str, clock: Clock) -> Iterator[BotUnderTest]:
    under_test = BotUnderTest(
        clocked_sandbox,
        database_url,
        clock=clock,
        notify={"staging": NOTIFY, "prod": NOTIFY},
    )
    try:
        yield under_test
    finally:
        under_test.stop()


def _texts(bot: BotUnderTest, ts: str) -> list[str]:
    return bot.thread_texts(OPS, ts)


def _wait_said(bot: BotUnderTest, ts: str, needle: str, what: str) -> None:
    try:
        wait_for(lambda: any(needle in t for t in _texts(bot, ts)), what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the thread: {_texts(bot, ts)}") from None


def _count(bot: BotUnderTest, ts: str, needle: str) -> int:
    return sum(needle in t for t in _texts(bot, ts))


def _pause_id(bot: BotUnderTest, ts: str) -> int:
    async def find() -> int | None:
        store = Store.from_url(bot.config.database_url)
        try:
            request = await store.find_by_card(channel=OPS, card_ts=ts)
            pause = None if request is None else await store.pause_for_request(request.id)
            return None if pause is None else pause.id
        finally:
            await store.close()

    found: int = wait_for(lambda: asyncio.run(find()), what="the pause record")
    return found


def _wait_done(bot: BotUnderTest, key: str) -> Job:
    """Wait until the job is recorded done: the clock jumps only when its handler has
    finished (a jump of an hour under a running handler would run out its lease, as a
    handler stalled for an hour would, and let the other process run it again)."""

    async def done() -> Job | None:
        store = Store.from_url(bot.config.database_url)
        try:
            job = await store.job(key)
            return job if job is not None and job.done else None
        finally:
            await store.close()

    found: Job = wait_for(lambda: asyncio.run(done()), what=f"job {key} done")
    return found


def _card_if(bot: BotUnderTest, ts: str, needle: str) -> str | None:
    text = card_text(bot, ts, OPS)
    return text if needle in text else None


def _pause(bot: BotUnderTest, case: Case) -> str:
    """Send the command (approve it in production); the card's ts once the pause is
    verified."""
    bot.driver.slash_command(case.command, user="U0ALICE", channel=OPS)
    [card] = wait_for(bot.cards, what="the card")
    ts = str(card["ts"])
    if case.approval:
        _wait_said(bot, ts, "approval", "the approval ask")
        delivery = bot.driver.block_action(
            action_id=ApprovalAction.APPROVE, user="U0BOB", channel=OPS, message_ts=ts
        )
        assert delivery.status_code == 200, delivery.text
    wait_for(
        lambda: any("verified" in t.lower() for t in _texts(bot, ts)), what="the verified reply"
    )
    return ts


@pytest.mark.parametrize("kind", list(CASES))
def test_a_two_day_pause_reminds_ends_on_time_and_reports_once(
    bot: BotUnderTest, clocked_sandbox: Sandbox, clock: Clock, kind: str
) -> None:
    case = CASES[kind]
    bot.start_another()  # a replica on the same database from the start
    ts = _pause(bot, case)
    assert case.state(clocked_sandbox) == case.paused
    reminder = f"Reminder: the pause of {case.name} ends in"

    clock.advance(timedelta(hours=23, minutes=50))
    bot.settle()
    assert _count(bot, ts, "Reminder") == 0  # the 24 h reminder is not due yet

    clock.advance(timedelta(minutes=11))  # 23h 59m left
    _wait_said(bot, ts, f"{reminder} 23h", "the 24 h reminder")
    pause_id = _pause_id(bot, ts)
    assert _wait_done(bot, job_key(JobKind.PAUSE_REMINDER, f"{pause_id}:86400")).attempts == 1

    bot.restart()  # one process goes down and comes back; the replica runs on

    clock.advance(timedelta(hours=23))  # 59m left, less the seconds the test takes
    _wait_said(bot, ts, f"{reminder} 5", "the 1 h reminder")
    assert _wait_done(bot, job_key(JobKind.PAUSE_REMINDER, f"{pause_id}:3600")).attempts == 1
    clock.advance(timedelta(minutes=58))  # a minute before the end
    bot.settle()
    assert case.state(clocked_sandbox) == case.paused
    assert _count(bot, ts, case.said) == 0

    clock.advance(timedelta(minutes=2) + case.after_end)
    _wait_said(bot, ts, case.said, "the end of the pause")
    assert case.state(clocked_sandbox) == case.resumed

    # exactly once, though two processes ran the timers and one of them restarted
    end_job = JobKind.JOURNEY_CHECK if case.after_end else JobKind.PAUSE_END
    assert _wait_done(bot, job_key(end_job, pause_id)).attempts == 1
    bot.settle()
    assert _count(bot, ts, f"{reminder} 23h") == 1, _texts(bot, ts)
    assert _count(bot, ts, f"{reminder} 5") == 1, _texts(bot, ts)
    assert _count(bot, ts, case.said) == 1
    end_note = next(t for t in _texts(bot, ts) if case.said in t)
    assert "Late by" not in end_note
    assert "read back" in end_note.lower() or "verified" in end_note.lower()

    # the card shows how the pause ended, without the Resume now button
    card: str = wait_for(lambda: _card_if(bot, ts, "*Pause*"), what="the card's end")
    assert "resum" in card.split("*Pause*", 1)[1].lower()
    assert "resume_now" not in card.lower()

    # one notice in the notify channel, linking to the thread
    wait_for(lambda: bot.slack.messages(NOTIFY), what="the notify-channel notice")
    bot.settle()
    notices: list[dict[str, Any]] = bot.slack.messages(NOTIFY)
    assert len(notices) == 1
    body = json.dumps(notices[0])
    assert case.name in body
    assert "pause ended: active" in body
    link = f"/archives/{OPS}/p{ts.replace('.', '')}"
    assert link in body

    # nothing more is due for that pause
    clock.advance(timedelta(days=3))
    bot.settle()
    assert _count(bot, ts, case.said) == 1
    assert len(bot.slack.messages(NOTIFY)) == 1


def test_a_production_extension_from_a_reminder_waits_for_its_approval(
    bot: BotUnderTest, clocked_sandbox: Sandbox, clock: Clock
) -> None:
    prod = replace(CASES["production automation"], command="pause prod/daily-welcome-send for 2h")
    ts = _pause(bot, prod)
    pause_id = _pause_id(bot, ts)
    clock.advance(timedelta(hours=1, minutes=1))
    _wait_said(bot, ts, f"Reminder: the pause of {prod.name} ends in 5", "the 1 h reminder")
    [reminder] = [m for m in bot.slack.thread(OPS, ts) if "Reminder" in str(m.get("text"))]

    # Extend opens the form prefilled with the production target
    bot.driver.block_action(
        action_id="reminder.extend", user="U0ALICE", channel=OPS, message_ts=str(reminder["ts"])
    )
    view = wait_for(lambda: bot.slack.latest_view("U0ALICE"), what="the pause form")
    assert "prod|automation|daily-welcome-send" in json.dumps(view)
    delivery = bot.driver.view_submission(
        str(view["id"]),
        slack_state(view, text(ModalBlock.DAYS, ModalAction.DAYS, "2")),
        user="U0ALICE",
    )
    assert delivery.status_code == 200
    assert not (delivery.data or {}).get("errors"), delivery.data

    # a new card asks for approval; until then the pause keeps its end
    new = wait_for(lambda: [c for c in bot.cards() if c["ts"] != ts], what="the extension's card")
    extension = str(new[0]["ts"])
    _wait_said(bot, extension, "approval", "the approval ask")
    assert _count(bot, ts, "extended this pause") == 0
    clock.advance(timedelta(minutes=10))
    bot.settle()
    assert _count(bot, ts, "extended this pause") == 0

    bot.driver.block_action(
        action_id=ApprovalAction.APPROVE, user="U0BOB", channel=OPS, message_ts=extension
    )
    _wait_said(bot, ts, "extended this pause", "the extension note in the pause's thread")

    # the old end passes: still paused; the new end resumes it
    clock.advance(timedelta(hours=1))
    bot.settle()
    assert prod.state(clocked_sandbox) == prod.paused
    assert _count(bot, ts, prod.said) == 0
    clock.advance(timedelta(days=2))
    _wait_said(bot, ts, prod.said, "the end of the extended pause")
    assert prod.state(clocked_sandbox) == prod.resumed
    assert _wait_done(bot, job_key(JobKind.PAUSE_END, pause_id)).attempts == 1
    assert _count(bot, ts, prod.said) == 1
