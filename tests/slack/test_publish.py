"""``SlackNotifier.publish``: an event becomes a reply in its card's thread and, when the
environment's notify channel subscribes to it, a notice there; it queues, so it can run
inside the store transaction of the change it reports."""

from __future__ import annotations

from bot.domain.events import Event
from bot.domain.requests import OperationRequest
from bot.slack.app import create_web_client
from bot.slack.notifier import SlackNotifier
from bot.slack.pacing import ChannelPacer
from bot.store.repository import Store
from sandbox.slack import SlackEmulator
from sandbox.slack.model import SANDBOX_BOT_TOKEN
from tests.bot.test_events import SAMPLES
from tests.slack.test_pacing import CARDS, NOTIFY, card, slack  # noqa: F401


def notifier_on(url: str, store: Store) -> SlackNotifier:
    return SlackNotifier(
        client=create_web_client(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/"),
        store=store,
        posts=ChannelPacer(rate=1000.0, burst=100),
        edits=ChannelPacer(rate=1000.0, burst=100, name="edits"),
        ephemerals=ChannelPacer(rate=1000.0, burst=100, name="ephemerals"),
        notice_window=0.1,
        notify_channels={"staging": NOTIFY},
    )


def texts(emulator: SlackEmulator, request: OperationRequest) -> list[str]:
    return [r["text"] for r in emulator.thread(CARDS, str(request.card_ts))[1:]]


async def test_events_reply_in_the_thread_and_subscribed_ones_notify(
    slack: tuple[SlackEmulator, str],  # noqa: F811
) -> None:
    emulator, url = slack
    store = Store.from_url("sqlite://")
    notifier = notifier_on(url, store)
    try:
        staging = await card(notifier, 1)
        elsewhere = (await card(notifier, 2)).model_copy(
            update={"spec": staging.spec.model_copy(update={"environment": "qa"})}
        )
        await notifier.publish_home("U0VIEWER")  # notices refresh the Home tab (a store read)
        homes = len(emulator.calls("views.publish"))
        ended: Event = SAMPLES["ended_resumed"]
        async with store.atomic():  # as the services publish: with the change, queued
            assert await store.claim_event("the change")
            await notifier.publish(staging, SAMPLES["vote_cast"])
            await notifier.publish(staging, ended)
            await notifier.publish(elsewhere, ended)
            assert emulator.messages(NOTIFY) == []  # nothing waited for Slack in here
        assert await notifier.drain(within=10)

        assert texts(emulator, staging) == [
            ":white_check_mark: <@U0BOB> approved (1 of 2)",
            "The pause time is up. Resumed: it is now active (6 Scheduled) (verified by "
            "reading it back).",
        ]
        assert len(texts(emulator, elsewhere)) == 1
        # one notice: the vote is not subscribed, and qa has no notify channel
        [notice] = emulator.messages(NOTIFY)
        assert notice["text"] == "staging/journey:welcome-001 v3: pause ended: active (6 Scheduled)"
        assert len(emulator.calls("views.publish")) == homes + 1  # refreshed after the notice
        assert await store.claim_event("after")  # the store is free: no transaction leaked
    finally:
        await notifier.aclose()  # its sender (and notice timers) stop before the store closes
        await store.close()
