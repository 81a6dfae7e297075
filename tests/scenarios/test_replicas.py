"""Two bot processes on one database: every card ends in its final state.

Many production approvals are raced (each approved through both processes at the same
moment); whichever process executes a request, its card must end showing what the store
holds, not an older render one of the processes sent late.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from bot.domain.requests import RequestStatus
from bot.slack.ids import ApprovalAction
from sandbox.sfmc import PROD_MID
from sandbox.sfmc.schedule import Schedule
from tests.scenarios.conftest import BotUnderTest, wait_for
from tests.scenarios.test_approvals import ask, card_text, click, find_request, together

CHANNELS = ("C0OPS", "C0RACE1", "C0RACE2", "C0RACE3")
PER_CHANNEL = 4
#: Room for every paced edit and reply of all the requests to get out.
SETTLED_WITHIN = 120.0


def quiet(bot: BotUnderTest, *, for_s: float = 3.0) -> None:
    """Wait until no card edit has reached Slack for ``for_s`` seconds."""
    seen = -1
    since = time.monotonic()

    def calm() -> bool:
        nonlocal seen, since
        count = len(bot.slack.calls("chat.update"))
        if count != seen:
            seen, since = count, time.monotonic()
        return time.monotonic() - since >= for_s

    wait_for(calm, timeout=SETTLED_WITHIN, what="the card edits to stop")


def status_line(bot: BotUnderTest, channel: str, ts: str) -> str:
    """The card's status line (its fallback text)."""
    return str(bot.slack.message(channel, ts).get("text", ""))[:200]


def test_raced_approvals_on_two_processes_all_end_done(bot: BotUnderTest) -> None:
    replica = bot.start_another()
    for i, channel in enumerate(CHANNELS[1:], start=1):
        bot.slack.add_channel(channel, f"race-{i}")
    start = datetime(2024, 1, 8)
    cards: list[tuple[str, str]] = []
    for c, channel in enumerate(CHANNELS):
        for i in range(PER_CHANNEL):
            key = f"race-{c}-{i}"
            bot.providers.sfmc.add_automation(
                PROD_MID,
                key=key,
                name=f"Race {c} {i}",
                status=6,
                schedule=Schedule("Hourly", start=start, end=datetime(2079, 6, 6, 8, 0)),
            )
            ts = ask(bot, f"pause prod/automation:{key} for 1d", channel=channel)
            cards.append((channel, ts))

    votes: list[Callable[[], None]] = []
    for channel, ts in cards:
        votes.append(partial(click, bot, ts, ApprovalAction.APPROVE, "U0BOB", channel=channel))
        votes.append(
            partial(
                click,
                bot,
                ts,
                ApprovalAction.APPROVE,
                "U0ADMIN",
                driver=replica.driver,
                channel=channel,
            )
        )
    together(*votes)

    def all_succeeded() -> bool:
        for channel, ts in cards:
            request = find_request(bot, ts, channel)
            if request is None or request.status is not RequestStatus.SUCCEEDED:
                return False
        return True

    wait_for(all_succeeded, timeout=SETTLED_WITHIN, what="every request to succeed")
    for c in range(len(CHANNELS)):
        for i in range(PER_CHANNEL):
            assert bot.providers.sfmc.automation(PROD_MID, f"race-{c}-{i}").status == 4

    def stale() -> dict[str, str]:
        return {
            f"{channel}/{ts}": status_line(bot, channel, ts)
            for channel, ts in cards
            if "Done" not in card_text(bot, ts, channel)
        }

    with contextlib.suppress(AssertionError):  # judged below, once the edits have stopped
        wait_for(lambda: not stale(), timeout=SETTLED_WITHIN, what="every card to show Done")
    quiet(bot)
    left = stale()
    assert left == {}, f"{len(left)} of {len(cards)} cards do not show Done: {left}"
    for channel, ts in cards:
        assert ApprovalAction.APPROVE not in card_text(bot, ts, channel)
