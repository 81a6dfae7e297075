"""Pacing of Slack posts per channel and coalescing of notify-channel notices (§2.6).

The first tests run the pacer and the coalescer on a fake clock (exact times); the rest go
over real HTTP to the Slack emulator with its per-channel ``chat.postMessage`` limit on.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.slack_response import SlackResponse

from bot.domain.requests import OperationRequest
from bot.slack.app import create_web_client
from bot.slack.blocks import step_message
from bot.slack.notifier import SUMMARY_ITEMS_MAX, Notice, SlackNotifier, notice_summaries
from bot.slack.pacing import ChannelPacer, Coalescer, Urgency, WorkspaceBudget, rate_limited_for
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator
from sandbox.slack.model import SANDBOX_BOT_TOKEN, SlackCall, SlackSettings
from tests.slack.conftest import closed_after_test, memory_store
from tests.slack.test_blocks import EVIL, HUGE, check_message, make_request

# -- a fake clock -----------------------------------------------------------------------------


class FakeTime:
    """``clock`` and ``sleep`` for the pacer: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class ManualTime:
    """``clock`` and ``sleep`` for the coalescer: sleepers wake when the test moves time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float, step: float = 0.25) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            for _ in range(5):
                await asyncio.sleep(0)
            self.now = min(end, self.now + step)
            for due, future in list(self._sleepers):
                if due <= self.now + 1e-9:
                    self._sleepers.remove((due, future))
                    future.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)


def ratelimited(retry_after: str | None = "2") -> SlackApiError:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.test/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": "ratelimited"},
        headers=headers,
        status_code=429,
    )
    return SlackApiError("ratelimited", response)  # type: ignore[no-untyped-call]


# -- ChannelPacer on a fake clock -------------------------------------------------------------


async def test_a_burst_goes_out_at_the_rate_after_the_burst_allowance() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(rate=1.0, burst=3, clock=fake.clock, sleep=fake.sleep)
    sent: list[tuple[int, float]] = []

    async def send(i: int) -> int:
        sent.append((i, fake.now))
        return i

    results = await asyncio.gather(*(pacer.post("C1", partial(send, i)) for i in range(8)))
    assert results == list(range(8))
    assert [i for i, _ in sent] == list(range(8))
    assert [round(t, 6) for _, t in sent] == [0, 0, 0, 1, 2, 3, 4, 5]
    assert pacer.pending() == 0
    # idle long enough, the bucket is full again: a new burst goes out at once
    fake.now += 10
    before = len(sent)
    await asyncio.gather(*(pacer.post("C1", partial(send, i)) for i in range(3)))
    assert {t for _, t in sent[before:]} == {fake.now}


async def test_channels_have_their_own_budget_and_order() -> None:
    manual = ManualTime()
    pacer = ChannelPacer(rate=2.0, burst=1, clock=manual.clock, sleep=manual.sleep)
    sent: list[tuple[str, int, float]] = []

    async def send(channel: str, i: int) -> None:
        sent.append((channel, i, manual.now))

    for i in range(4):
        for ch in ("A", "B"):
            pacer.submit(ch, partial(send, ch, i))
    await manual.advance(2.0)
    assert await pacer.drain(within=1)
    for channel in ("A", "B"):
        mine = [(i, t) for ch, i, t in sent if ch == channel]
        assert [i for i, _ in mine] == [0, 1, 2, 3]
        assert [t for _, t in mine] == [0.0, 0.5, 1.0, 1.5]  # in parallel with the other


async def test_a_429_is_retried_after_retry_after_and_keeps_its_place() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(rate=100.0, burst=10, clock=fake.clock, sleep=fake.sleep)
    attempts: dict[int, int] = {}
    sent: list[int] = []

    async def send(i: int) -> str:
        attempts[i] = attempts.get(i, 0) + 1
        if i == 1 and attempts[i] <= 3:  # more than the client's retry handler took
            raise ratelimited("2")
        sent.append(i)
        return f"ok {i}"

    results = await asyncio.gather(*(pacer.post("C1", partial(send, i)) for i in range(4)))
    assert results == ["ok 0", "ok 1", "ok 2", "ok 3"]
    assert sent == [0, 1, 2, 3]  # the others waited: order is kept
    assert attempts[1] == 4
    assert fake.sleeps.count(2.0) == 3
    assert pacer.rate_limited == 3


async def test_other_errors_go_to_their_caller_and_the_queue_goes_on() -> None:
    pacer = ChannelPacer(rate=1000.0, burst=10)

    async def fails() -> None:
        raise RuntimeError("channel_not_found")

    async def works() -> str:
        return "ok"

    first = pacer.submit("C1", fails)
    second = pacer.submit("C1", works)
    with pytest.raises(RuntimeError, match="channel_not_found"):
        await first
    assert await second == "ok"
    assert await pacer.drain(within=1)


async def test_a_caller_that_stops_waiting_does_not_drop_its_message() -> None:
    fake = FakeTime()
    pacer = ChannelPacer(rate=1.0, burst=1, clock=fake.clock, sleep=fake.sleep)
    sent: list[int] = []

    async def send(i: int) -> None:
        sent.append(i)

    pacer.submit("C1", lambda: send(0))
    waiting = asyncio.ensure_future(pacer.post("C1", lambda: send(1)))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await pacer.drain()
    assert sent == [0, 1]


# -- the workspace budget shared by every key, on a fake clock ---------------------------------


async def test_every_key_shares_the_workspace_budget() -> None:
    fake = FakeTime()
    budget = WorkspaceBudget(per_min=60, burst=2, clock=fake.clock, sleep=fake.sleep)
    # each channel alone could send all of its messages at once
    pacer = ChannelPacer(rate=1000.0, burst=10, clock=fake.clock, sleep=fake.sleep, budget=budget)
    sent: list[tuple[str, float]] = []

    async def send(key: str) -> None:
        sent.append((key, fake.now))

    await asyncio.gather(
        *(pacer.post(key, partial(send, key)) for _ in range(2) for key in ("A", "B", "C"))
    )
    # one a second after a burst of two, whichever channel it is for
    assert [round(t, 6) for _, t in sent] == [0, 0, 1, 2, 3, 4]
    assert sorted(k for k, _ in sent) == ["A", "A", "B", "B", "C", "C"]
    assert budget.taken == 6


async def test_the_most_urgent_waiting_send_gets_the_next_token() -> None:
    fake = FakeTime()
    budget = WorkspaceBudget(per_min=60, burst=1, clock=fake.clock, sleep=fake.sleep)
    pacer = ChannelPacer(rate=1000.0, burst=10, clock=fake.clock, sleep=fake.sleep, budget=budget)
    sent: list[str] = []

    async def send(what: str) -> None:
        sent.append(what)

    first = pacer.submit("card-0", partial(send, "first"), Urgency.EDIT_MOVING)
    await first  # spends the only token
    waiting = [
        pacer.submit("card-1", partial(send, "moving"), Urgency.EDIT_MOVING),
        pacer.submit("card-2", partial(send, "settled"), Urgency.EDIT),
        pacer.submit("C1", partial(send, "refresh"), Urgency.REFRESH),
        pacer.submit("C2", partial(send, "note"), Urgency.NOTE),
        pacer.submit("C3", partial(send, "notice"), Urgency.NOTICE),
        pacer.submit("card-3", partial(send, "settled later"), Urgency.EDIT),
    ]
    await asyncio.gather(*waiting)
    assert sent == ["first", "note", "notice", "settled", "settled later", "moving", "refresh"]
    assert budget.waited == 6


async def test_a_waiting_send_whose_urgency_changes_is_served_by_the_new_one() -> None:
    fake = FakeTime()
    budget = WorkspaceBudget(per_min=60, burst=1, clock=fake.clock, sleep=fake.sleep)
    pacer = ChannelPacer(rate=1000.0, burst=10, clock=fake.clock, sleep=fake.sleep, budget=budget)
    sent: list[str] = []
    moving = True

    async def send(what: str) -> None:
        sent.append(what)

    def card_1() -> Urgency:
        return Urgency.EDIT_MOVING if moving else Urgency.EDIT

    await pacer.post("card-0", partial(send, "card-0"))  # spends the only token
    later = [
        pacer.submit("card-1", partial(send, "card-1"), card_1),
        pacer.submit("card-2", partial(send, "card-2"), Urgency.EDIT_MOVING),
        pacer.submit("card-3", partial(send, "card-3"), Urgency.EDIT),
        pacer.submit("card-4", partial(send, "card-4"), Urgency.EDIT),
    ]
    await asyncio.sleep(0)
    assert budget.waiting() == 4
    moving = False  # card-1's request settled while its edit waited
    await asyncio.gather(*later)
    assert sent == ["card-0", "card-1", "card-3", "card-4", "card-2"]


async def test_an_edit_of_a_card_still_moving_waits_while_the_budget_is_in_use() -> None:
    manual = ManualTime()
    budget = WorkspaceBudget(per_min=60, burst=3, clock=manual.clock, sleep=manual.sleep)
    sent: dict[str, float] = {}
    moving = True

    def card_a() -> Urgency:
        return Urgency.EDIT_MOVING if moving else Urgency.EDIT

    async def edit(what: str, urgency: Any) -> None:
        await budget.take(urgency)
        sent[what] = manual.now

    for _ in range(2):  # the budget is in use: 1 of 3 tokens left
        await budget.take(Urgency.NOTE)
    tasks = [
        asyncio.ensure_future(edit("A", card_a)),
        asyncio.ensure_future(edit("B", Urgency.EDIT_MOVING)),
    ]
    await manual.advance(0.5)
    assert sent == {}  # a token is there, but both cards will change again
    moving = False  # A's request settled: its edit now shows the settled state
    await manual.advance(0.5)
    assert list(sent) == ["A"]
    await manual.advance(0.5)
    assert list(sent) == ["A"]  # B waits for a token for it and one for its later edit
    # B goes once the bucket holds a token for it and one for its card's later edit
    await manual.advance(3.0)
    await asyncio.gather(*tasks)
    assert sent["B"] >= sent["A"] + 1.0


async def test_a_held_back_edit_goes_after_hold_max_however_busy_the_budget() -> None:
    manual = ManualTime()
    budget = WorkspaceBudget(
        per_min=6, burst=3, clock=manual.clock, sleep=manual.sleep, hold_max=5.0
    )
    sent: list[float] = []

    async def edit() -> None:
        await budget.take(Urgency.EDIT_MOVING)
        sent.append(manual.now)

    for _ in range(2):  # a token for it and its later edit only after 10 s
        await budget.take(Urgency.NOTE)
    task = asyncio.ensure_future(edit())
    await manual.advance(4.5)
    assert sent == []
    await manual.advance(1.0)
    await task
    assert 5.0 <= sent[0] <= 5.5


async def test_a_429_holds_the_whole_budget_for_retry_after() -> None:
    manual = ManualTime()
    budget = WorkspaceBudget(per_min=6000, burst=10, clock=manual.clock, sleep=manual.sleep)
    pacer = ChannelPacer(
        rate=1000.0, burst=10, clock=manual.clock, sleep=manual.sleep, budget=budget
    )
    sent: list[tuple[str, float]] = []
    refused = {"A": 1}

    async def send(key: str) -> None:
        if refused.get(key):
            refused[key] -= 1
            raise ratelimited("2")
        sent.append((key, manual.now))

    pacer.submit("A", partial(send, "A"))
    await manual.advance(0.5)
    pacer.submit("B", partial(send, "B"))  # another channel, after the 429
    await manual.advance(3.0)
    assert await pacer.drain(within=1)
    # B waited out A's Retry-After too (the budget is the workspace's, not the channel's)
    assert [k for k, _ in sent] == ["A", "B"] or [k for k, _ in sent] == ["B", "A"]
    assert all(t >= 2.0 for _, t in sent), sent
    assert pacer.rate_limited == 1


async def test_a_send_that_waited_for_the_budget_spends_its_channels_token_when_it_goes() -> None:
    fake = FakeTime()
    budget = WorkspaceBudget(per_min=6000, burst=10, clock=fake.clock, sleep=fake.sleep)
    pacer = ChannelPacer(rate=1.0, burst=2, clock=fake.clock, sleep=fake.sleep, budget=budget)
    sent: list[float] = []

    async def send() -> None:
        sent.append(fake.now)

    budget.hold(5.0)  # e.g. another channel's 429: nobody sends for 5 s
    await asyncio.gather(*(pacer.post("C1", send) for _ in range(3)))
    # the channel allows two at once, then one a second: counted from when they went,
    # not from when the first one started waiting
    assert sent[0] >= 5.0
    assert sent[2] - sent[0] >= 1.0 - 1e-6, sent


def test_a_budget_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="per_min must be positive"):
        WorkspaceBudget(per_min=0, burst=1)
    with pytest.raises(ValueError, match="burst at least 1"):
        WorkspaceBudget(per_min=1, burst=0)


def test_rate_limited_for_reads_retry_after() -> None:
    assert rate_limited_for(ratelimited("7")) == 7.0
    assert rate_limited_for(ratelimited(None)) == 1.0
    assert rate_limited_for(ratelimited("soon")) == 1.0
    assert rate_limited_for(RuntimeError("x")) is None
    with pytest.raises(ValueError, match="rate must be positive"):
        ChannelPacer(rate=0)


# -- Coalescer on a fake clock ----------------------------------------------------------------


async def test_the_coalescer_closes_a_batch_after_a_quiet_window() -> None:
    manual = ManualTime()
    flushed: list[tuple[str, list[int], float]] = []

    async def flush(key: str, items: list[int]) -> None:
        flushed.append((key, items, manual.now))

    coalescer: Coalescer[int] = Coalescer(
        flush, window=2.0, max_hold=5.0, clock=manual.clock, sleep=manual.sleep
    )
    coalescer.add("N1", 0)
    await manual.advance(1.0)
    coalescer.add("N1", 1)  # the window starts again
    await manual.advance(0.5)
    coalescer.add("N2", 99)  # another channel, another batch
    await manual.advance(1.25)
    assert flushed == []
    await manual.advance(0.25)
    assert flushed == [("N1", [0, 1], 3.0)]
    await manual.advance(0.5)
    assert flushed == [("N1", [0, 1], 3.0), ("N2", [99], 3.5)]


async def test_a_steady_trickle_is_cut_at_max_hold_and_nothing_is_dropped() -> None:
    manual = ManualTime()
    flushed: list[tuple[list[int], float]] = []

    async def flush(key: str, items: list[int]) -> None:
        flushed.append((items, manual.now))

    coalescer: Coalescer[int] = Coalescer(
        flush, window=2.0, max_hold=5.0, clock=manual.clock, sleep=manual.sleep
    )
    for i in range(5):  # at 0, 1.5, 3, 4.5 and 6 s: never 2 s of quiet
        coalescer.add("N1", i)
        await manual.advance(1.5)
    assert flushed == [([0, 1, 2, 3], 5.0)]
    await manual.advance(2.0)
    assert flushed == [([0, 1, 2, 3], 5.0), ([4], 8.0)]


async def test_drain_closes_open_batches_at_once() -> None:
    manual = ManualTime()
    flushed: list[list[int]] = []

    async def flush(key: str, items: list[int]) -> None:
        flushed.append(items)

    coalescer: Coalescer[int] = Coalescer(
        flush, window=2.0, max_hold=5.0, clock=manual.clock, sleep=manual.sleep
    )
    coalescer.add("N1", 1)
    coalescer.add("N1", 2)
    assert coalescer.pending() == 2
    drained = asyncio.ensure_future(coalescer.drain())
    await manual.advance(2.0)  # the sleeping task wakes, sees the hurry, flushes
    assert await drained
    assert flushed == [[1, 2]]
    assert coalescer.pending() == 0


# -- the summary message ----------------------------------------------------------------------


def notices(count: int, *, text: str = "pause ended: active", link: bool = False) -> list[Notice]:
    return [
        Notice(
            request=make_request(key=f"welcome-{i:03d}", name=f"Welcome {i}", id=f"req-{i}"),
            text=text,
            link=f"https://sandbox.slack.com/archives/C0OPS/p{i}" if link else None,
        )
        for i in range(count)
    ]


def listed(messages: list[Any]) -> list[str]:
    """The target keys named by summary lines, in order, across all messages."""
    body = "".join(json.dumps(m.blocks, ensure_ascii=False) for m in messages)
    return re.findall(r"staging/journey:(welcome-\d{3})", body)


def test_a_summary_of_50_fits_one_message() -> None:
    [message] = notice_summaries(notices(50))
    check_message(message)
    assert "50 pauses ended" in message.text
    assert "50 pauses ended" in json.dumps(message.blocks)
    assert listed([message]) == [f"welcome-{i:03d}" for i in range(50)]
    assert "more" in message.text  # the fallback names a few, then "…and N more"


def test_a_summary_too_big_for_one_message_is_split_and_nothing_is_lost() -> None:
    many = notices(3 * SUMMARY_ITEMS_MAX + 7, text=HUGE)  # long lines: many sections each
    messages = notice_summaries(many)
    assert len(messages) >= 4
    for message in messages:
        check_message(message)
    assert listed(messages) == [f"welcome-{i:03d}" for i in range(len(many))]
    last_total = len(many)
    assert f"({last_total - 6}\u2013{last_total} of {last_total})" in json.dumps(
        messages[-1].blocks, ensure_ascii=False
    )
    assert "more in the next message" in json.dumps(messages[0].blocks)


def test_a_summary_escapes_and_links() -> None:
    [message] = notice_summaries(notices(2, text=EVIL))
    check_message(message)
    [linked] = notice_summaries(notices(2, link=True))
    assert "<https://sandbox.slack.com/archives/C0OPS/p1|thread>" in json.dumps(linked.blocks)


# -- over HTTP, against the emulator with rate limits on -----------------------------------------

CARDS = "C0CARDS"
NOTIFY = "C0NOTIFY"
#: The emulator allows 25 posts/s per channel after a burst of 4; the pacer sends at 20/s
#: after a burst of 3, so a well-paced bot never sees a 429 (jitter has a token to spare).
SLACK_RATE, SLACK_BURST = 25.0, 4
RATE, BURST = 20.0, 3


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator(
        settings=SlackSettings(
            rate_limits_enabled=True,
            post_message_per_s=SLACK_RATE,
            post_message_burst=SLACK_BURST,
            # only the per-channel pace is under test: the workspace-wide budgets are wide
            post_message_workspace_per_min=60_000,
            post_message_workspace_burst=1_000,
            tier3_per_min=60_000,
            tier3_burst=1_000,
            tier4_per_min=60_000,
            tier4_burst=1_000,
        )
    )
    with ServerThread(emulator.app) as server:
        yield emulator, server.url


def notifier_for(
    url: str, *, client: AsyncWebClient | None = None, rate: float = RATE, **kwargs: Any
) -> SlackNotifier:
    client = client or create_web_client(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/")
    notifier = SlackNotifier(
        client=client,
        store=memory_store(),  # the outbox; no Home tab viewers
        posts=ChannelPacer(rate=rate, burst=BURST),
        edits=ChannelPacer(rate=rate, burst=BURST, name="edits"),
        ephemerals=ChannelPacer(rate=rate, burst=BURST, name="ephemerals"),
        **kwargs,
    )
    return closed_after_test(notifier)


async def card(notifier: SlackNotifier, i: int, channel: str = CARDS) -> OperationRequest:
    request = make_request(key=f"welcome-{i:03d}", name=f"Welcome {i}", id=f"req-{i}")
    request = request.model_copy(update={"channel": channel})
    ref = await notifier.post_card(request)
    assert ref is not None
    return request.model_copy(update={"channel": ref.channel, "card_ts": ref.ts})


def posts(emulator: SlackEmulator, channel: str) -> list[SlackCall]:
    return [c for c in emulator.calls("chat.postMessage") if c.args.get("channel") == channel]


def seconds(calls: list[SlackCall]) -> list[float]:
    return [(c.at - calls[0].at).total_seconds() for c in calls]


def assert_paced(calls: list[SlackCall], *, rate: float, burst: int) -> None:
    """Call ``i`` came no sooner than the bucket allowed (a little timer slack)."""
    at = seconds(calls)
    for i, t in enumerate(at):
        assert t >= (i - burst + 1) / rate - 0.01, (i, t)


async def test_a_burst_of_50_replies_arrives_whole_in_order_and_paced(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    notifier = notifier_for(url, background=True)
    request = await card(notifier, 0)
    emulator.clear_calls()
    started = time.monotonic()
    for i in range(50):
        await notifier.reply(request, step_message(f"step {i:02d}"))
    assert time.monotonic() - started < 0.5  # background: queued, not waited for
    assert await notifier.drain(within=30)

    calls = posts(emulator, CARDS)
    assert len(calls) == 50
    assert all(c.status == 200 and c.ok for c in calls)  # not one 429, not one error
    assert [c.args["thread_ts"] for c in calls] == [request.card_ts] * 50
    replies = emulator.thread(CARDS, str(request.card_ts))[1:]
    assert [r["text"] for r in replies] == [f"step {i:02d}" for i in range(50)]
    assert_paced(calls, rate=RATE, burst=BURST)
    assert seconds(calls)[-1] >= (50 - BURST) / RATE - 0.01
    assert notifier.posts.rate_limited == 0


async def test_two_channels_proceed_in_parallel(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    notifier = notifier_for(url, rate=10.0)
    requests = [await card(notifier, 0, "C0LEFT"), await card(notifier, 1, "C0RIGHT")]
    emulator.clear_calls()
    await asyncio.gather(
        *(
            notifier.reply(request, step_message(f"{request.id} {i}"))
            for i in range(10)
            for request in requests
        )
    )
    left, right = posts(emulator, "C0LEFT"), posts(emulator, "C0RIGHT")
    assert len(left) == len(right) == 10
    for calls in (left, right):
        assert_paced(calls, rate=10.0, burst=BURST)
    # side by side, not one channel after the other: each starts before the other ends
    assert right[0].at < left[-1].at
    assert left[0].at < right[-1].at
    assert all(c.ok for c in left + right)


async def test_a_forced_429_is_retried_after_retry_after_and_nothing_is_dropped(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    # No retry handlers on this client: the pacer alone deals with the 429s.
    bare = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/", retry_handlers=[])
    notifier = notifier_for(url, client=bare)
    request = await card(notifier, 0)
    emulator.clear_calls()
    emulator.force_rate_limit("chat.postMessage", count=2, retry_after=1)
    started = time.monotonic()
    await asyncio.gather(*(notifier.reply(request, step_message(f"r{i}")) for i in range(5)))
    assert time.monotonic() - started >= 2 * 1.0 - 0.05  # Retry-After honoured, twice
    calls = posts(emulator, CARDS)
    assert [c.status for c in calls] == [429, 429, 200, 200, 200, 200, 200]
    assert [c.args["text"] for c in calls] == ["r0", "r0", "r0", "r1", "r2", "r3", "r4"]
    replies = emulator.thread(CARDS, str(request.card_ts))[1:]
    assert [r["text"] for r in replies] == [f"r{i}" for i in range(5)]
    assert notifier.posts.rate_limited == 2


async def test_50_pauses_ending_together_make_one_summary_and_paced_replies(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    setup = notifier_for(url, rate=1000.0)
    emulator.settings.rate_limits_enabled = False  # the cards are the setting, not the test
    requests = [await card(setup, i) for i in range(50)]
    emulator.settings.rate_limits_enabled = True
    emulator.clear_calls()
    notifier = notifier_for(url, rate=RATE, background=True, notice_window=1.0)
    for request in requests:  # what PauseService does at the end of each pause
        await notifier.reply(request, step_message("The pause ended."))
        await notifier.announce(channel=NOTIFY, request=request, text="pause ended: active")
    assert emulator.messages(NOTIFY) == []  # still gathering
    assert await notifier.drain(within=30)

    notices_posted = posts(emulator, NOTIFY)
    assert len(notices_posted) == 1
    [summary] = emulator.messages(NOTIFY)
    body = json.dumps(summary["blocks"], ensure_ascii=False)
    assert "50 pauses ended" in body
    assert re.findall(r"staging/journey:(welcome-\d{3})", body) == [
        f"welcome-{i:03d}" for i in range(50)
    ]
    assert body.count("|thread>") == 50
    for request in requests:
        replies = emulator.thread(CARDS, str(request.card_ts))[1:]
        assert [r["text"] for r in replies] == ["The pause ended."]
    replies_sent = posts(emulator, CARDS)
    assert len(replies_sent) == 50
    assert all(c.ok for c in replies_sent)
    assert_paced(replies_sent, rate=RATE, burst=BURST)


async def test_a_single_notice_is_the_normal_notice(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    notifier = notifier_for(url, notice_window=0.2)
    request = await card(notifier, 7)
    await notifier.announce(channel=NOTIFY, request=request, text="pause ended: active")
    assert await notifier.drain(within=30)  # the notice window passes, the notice is sent
    [notice] = emulator.messages(NOTIFY)
    assert notice["text"] == "staging/journey:welcome-007 v3: pause ended: active"
    assert "pauses ended" not in json.dumps(notice["blocks"])
    assert "|thread>" in json.dumps(notice["blocks"])


async def test_a_card_edit_waits_for_its_thread_but_not_for_other_cards(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    notifier = notifier_for(url, background=True)
    busy, quiet = await card(notifier, 1), await card(notifier, 2)
    emulator.clear_calls()
    for i in range(6):
        await notifier.reply(busy, step_message(f"note {i}"))
    await notifier.update_card(quiet)
    await notifier.update_card(busy)
    await notifier.ephemeral(channel=CARDS, user="U0ALICE", message=step_message("just you"))
    assert await notifier.drain(within=10)
    calls = [c for c in emulator.calls() if c.method.startswith("chat.")]
    assert all(c.ok for c in calls)
    order = [(c.method, c.args.get("ts") or c.args.get("text")) for c in calls]
    # the other card's edit and the private answer did not wait for the backlog...
    assert order.index(("chat.update", quiet.card_ts)) < order.index(("chat.postMessage", "note 3"))
    assert order.index(("chat.postEphemeral", "just you")) < order.index(
        ("chat.postMessage", "note 3")
    )
    # ...the busy card's edit waited for the replies queued before it
    assert order.index(("chat.update", busy.card_ts)) > order.index(("chat.postMessage", "note 5"))
    assert len(posts(emulator, CARDS)) == 6  # edits spend no post budget
