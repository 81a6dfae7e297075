"""Thread links in notify-channel notices: built from one ``auth.test``, not fetched per card.

Over real HTTP to the Slack emulator. A link built here must be exactly what Slack's (the
emulator's) ``chat.getPermalink`` returns for the card; when ``auth.test`` fails or gives no
usable ``url``, the links come from ``chat.getPermalink``, several lookups at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.requests import OperationRequest
from bot.slack.app import create_web_client
from bot.slack.notifier import PERMALINK_LOOKUPS_MAX, TEAM_URL_RETRY_S, SlackNotifier
from bot.slack.pacing import ChannelPacer
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator, SlackSettings
from sandbox.slack.model import SANDBOX_BOT_TOKEN
from tests.slack.conftest import closed_after_test, memory_store
from tests.slack.test_blocks import make_request

CARDS = "C0CARDS"
NOTIFY = "C0NOTIFY"
TEAM = "acme"
LINK_RE = re.compile(r"<(https://[a-z0-9-]+\.slack\.com/archives/C[A-Z0-9]+/p\d+)\|thread>")


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator(team_domain=TEAM, settings=SlackSettings(rate_limits_enabled=False))
    with ServerThread(emulator.app) as server:
        yield emulator, server.url


class CountingClient(AsyncWebClient):
    """The bot's client, counting ``chat.getPermalink`` calls in flight at once."""

    def __init__(self, *, team_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_flight = 0
        self.max_in_flight = 0
        self._team_url = team_url

    async def chat_getPermalink(self, **kwargs: Any) -> AsyncSlackResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super().chat_getPermalink(**kwargs)
        finally:
            self.in_flight -= 1

    async def auth_test(self, **kwargs: Any) -> AsyncSlackResponse:
        response = await super().auth_test(**kwargs)
        if self._team_url is not None:  # what a misbehaving proxy or workspace might say
            cast(dict[str, Any], response.data)["url"] = self._team_url
        return response


def counting_client(url: str, *, team_url: str | None = None) -> CountingClient:
    plain = create_web_client(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/")
    return CountingClient(
        token=plain.token,
        base_url=plain.base_url,
        timeout=plain.timeout,
        retry_handlers=plain.retry_handlers,
        team_url=team_url,
    )


class Ticker:
    """A monotonic clock the test moves by hand (the auth.test retry interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def notifier_for(client: AsyncWebClient, **kwargs: Any) -> SlackNotifier:
    notifier = SlackNotifier(
        client=client,
        store=memory_store(),  # the outbox; no Home tab viewers
        posts=ChannelPacer(rate=1000.0, burst=100),
        edits=ChannelPacer(rate=1000.0, burst=100, name="edits"),
        ephemerals=ChannelPacer(rate=1000.0, burst=100, name="ephemerals"),
        notice_window=1.0,  # enqueueing is a database write: room for a slow machine
        **kwargs,
    )
    return closed_after_test(notifier)


async def cards(client: AsyncWebClient, count: int, channel: str = CARDS) -> list[OperationRequest]:
    """``count`` requests, each with a card posted in ``channel``."""
    made: list[OperationRequest] = []
    for i in range(count):
        response = await client.chat_postMessage(channel=channel, text=f"card {i}")
        request = make_request(key=f"welcome-{i:03d}", name=f"Welcome {i}", id=f"req-{i}")
        made.append(
            request.model_copy(
                update={"channel": str(response["channel"]), "card_ts": str(response["ts"])}
            )
        )
    return made


async def announce_all(
    notifier: SlackNotifier, requests: list[OperationRequest], channel: str = NOTIFY
) -> None:
    for request in requests:
        await notifier.announce(channel=channel, request=request, text="pause ended: active")
    assert await notifier.drain(within=30)


def linked_keys(message: dict[str, Any]) -> dict[str, str | None]:
    """Each summary line's target key -> its thread link (``None`` for a line without)."""
    found: dict[str, str | None] = {}
    for block in message["blocks"]:
        for line in block.get("text", {}).get("text", "").split("\n"):
            key = re.search(r"staging/journey:(welcome-\d{3})", line)
            if key is not None:
                link = LINK_RE.search(line)
                found[key.group(1)] = link.group(1) if link else None
    return found


async def slack_permalinks(
    emulator_client: AsyncWebClient, requests: list[OperationRequest]
) -> dict[str, str]:
    """What Slack's own ``chat.getPermalink`` says for each request's card."""
    links: dict[str, str] = {}
    for request in requests:
        answer = await emulator_client.chat_getPermalink(
            channel=str(request.channel), message_ts=str(request.card_ts)
        )
        links[request.spec.key] = str(answer["permalink"])
    return links


async def test_a_burst_of_30_notices_makes_one_auth_test_and_no_permalink_calls(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url)
    requests = await cards(client, 30)
    emulator.clear_calls()
    notifier = notifier_for(client)

    await announce_all(notifier, requests)

    assert len(emulator.calls("auth.test")) == 1
    assert emulator.calls("chat.getPermalink") == []
    [summary] = emulator.messages(NOTIFY)
    assert "30 pauses ended" in json.dumps(summary["blocks"])
    links = linked_keys(summary)
    assert set(links) == {r.spec.key for r in requests}
    for request in requests:
        link = links[request.spec.key]
        assert link == (
            f"https://{TEAM}.slack.com/archives/{CARDS}/p{str(request.card_ts).replace('.', '')}"
        )
    # exactly what Slack itself would have linked (asked only now, after the counts)
    assert links == await slack_permalinks(client, requests)

    # the next burst reuses the team URL: still one auth.test in all
    await announce_all(notifier, requests[:5])
    assert len(emulator.calls("auth.test")) == 1
    assert len(emulator.calls("chat.getPermalink")) == 30  # only the test's own


async def test_concurrent_first_notices_share_one_auth_test(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url)
    requests = await cards(client, 20)
    emulator.clear_calls()
    # auth.test is slow, so both notify channels' summaries wait for it at the same time
    emulator.knobs.set(latency_ms=300, path_filter="/api/auth.test")
    notifier = notifier_for(client)
    for i, request in enumerate(requests):
        channel = NOTIFY if i % 2 == 0 else "C0NOTIFYTWO"
        await notifier.announce(channel=channel, request=request, text="pause ended: active")
    assert await notifier.drain(within=30)

    assert len(emulator.calls("auth.test")) == 1
    assert emulator.calls("chat.getPermalink") == []
    [first] = emulator.messages(NOTIFY)
    [second] = emulator.messages("C0NOTIFYTWO")
    links = {**linked_keys(first), **linked_keys(second)}
    assert len(links) == 20
    assert all(link is not None for link in links.values())


async def test_a_single_notice_links_the_same_way(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    client = counting_client(url)
    [request] = await cards(client, 1)
    emulator.clear_calls()
    await announce_all(notifier_for(client), [request])

    assert len(emulator.calls("auth.test")) == 1
    assert emulator.calls("chat.getPermalink") == []
    [notice] = emulator.messages(NOTIFY)
    body = json.dumps(notice["blocks"])
    expected = (await slack_permalinks(client, [request]))[request.spec.key]
    assert f"<{expected}|thread>" in body


async def test_when_auth_test_fails_links_come_from_parallel_permalink_lookups(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url)
    requests = await cards(client, 30)
    emulator.clear_calls()
    emulator.knobs.set(expire_tokens_next=1, path_filter="/api/auth.test")
    ticker = Ticker()
    notifier = notifier_for(client, monotonic=ticker)

    await announce_all(notifier, requests)

    [auth] = emulator.calls("auth.test")
    assert not auth.ok
    assert auth.error == "token_expired"
    lookups = emulator.calls("chat.getPermalink")
    assert len(lookups) == 30
    assert all(c.ok for c in lookups)
    # several at a time, never more than the limit: not one after another
    assert 1 < client.max_in_flight <= PERMALINK_LOOKUPS_MAX
    assert client.max_in_flight == PERMALINK_LOOKUPS_MAX
    [summary] = emulator.messages(NOTIFY)  # the notice still went out, with every link
    expected = {c.args["message_ts"]: (c.response or {})["permalink"] for c in lookups}
    links = linked_keys(summary)
    assert links == {r.spec.key: expected[r.card_ts] for r in requests}

    # within the minute: no new auth.test, and the cards already looked up are cached
    ticker.now += TEAM_URL_RETRY_S - 1
    await announce_all(notifier, requests[:10])
    assert len(emulator.calls("auth.test")) == 1
    assert len(emulator.calls("chat.getPermalink")) == 30
    assert linked_keys(emulator.messages(NOTIFY)[-1]) == {
        r.spec.key: expected[r.card_ts] for r in requests[:10]
    }

    # a minute after the failure auth.test is tried again; now it works: links built here
    ticker.now += 2
    more = await cards(client, 3, channel="C0MORE")
    await announce_all(notifier, more)
    assert [c.ok for c in emulator.calls("auth.test")] == [False, True]
    assert len(emulator.calls("chat.getPermalink")) == 30
    assert linked_keys(emulator.messages(NOTIFY)[-1]) == await slack_permalinks(client, more)


async def test_a_team_url_that_is_not_https_is_not_used(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url, team_url=f"http://{TEAM}.slack.com/")
    requests = await cards(client, 12)
    emulator.clear_calls()
    ticker = Ticker()
    notifier = notifier_for(client, monotonic=ticker)

    await announce_all(notifier, requests)
    await announce_all(notifier, requests[:4])  # within the minute: no second auth.test

    assert len(emulator.calls("auth.test")) == 1
    assert len(emulator.calls("chat.getPermalink")) == 12  # each card once
    assert client.max_in_flight > 1
    first, second = emulator.messages(NOTIFY)
    expected = await slack_permalinks(client, requests)
    assert linked_keys(first) == expected
    assert linked_keys(second) == {r.spec.key: expected[r.spec.key] for r in requests[:4]}


async def test_a_failed_lookup_means_no_link_and_the_notice_still_goes_out(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url)
    requests = await cards(client, 3)
    gone = requests[1].model_copy(update={"card_ts": "1.000001"})  # no such message
    named = requests[2].model_copy(update={"channel": "cards"})  # not an id: asked for
    emulator.add_channel(CARDS, "cards")
    emulator.clear_calls()
    emulator.knobs.set(expire_tokens_next=1, path_filter="/api/auth.test")
    notifier = notifier_for(client)

    await announce_all(notifier, [requests[0], gone, named])

    assert [c.error for c in emulator.calls("chat.getPermalink")].count("message_not_found") == 1
    [summary] = emulator.messages(NOTIFY)
    expected = await slack_permalinks(client, [requests[0], requests[2]])
    assert linked_keys(summary) == {
        requests[0].spec.key: expected[requests[0].spec.key],
        gone.spec.key: None,
        named.spec.key: expected[named.spec.key],
    }

    # a lone notice whose lookup fails is posted without a link
    await announce_all(notifier, [gone])
    lone = emulator.messages(NOTIFY)[-1]
    assert "pauses ended" not in json.dumps(lone["blocks"])
    assert "|thread>" not in json.dumps(lone["blocks"])
    assert lone["text"].endswith("pause ended: active")


async def test_with_a_team_url_a_name_instead_of_a_channel_id_is_looked_up(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    client = counting_client(url)
    [request] = await cards(client, 1)
    emulator.add_channel(CARDS, "cards")
    named = request.model_copy(update={"channel": "cards"})
    emulator.clear_calls()

    await announce_all(notifier_for(client), [named])

    assert len(emulator.calls("chat.getPermalink")) == 1
    [notice] = emulator.messages(NOTIFY)
    expected = (await slack_permalinks(client, [request]))[request.spec.key]
    assert f"<{expected}|thread>" in json.dumps(notice["blocks"])
