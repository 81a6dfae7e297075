"""Home tab refreshes: coalesced in the background (many ends, one publish per viewer)."""

from __future__ import annotations

from typing import Any, cast

from bot.domain.requests import PauseRecord
from bot.slack.notifier import SlackNotifier
from bot.store.repository import Store
from tests.slack.test_notice_links import counting_client, notifier_for, slack  # noqa: F401


class Pauses:
    """The one store call the Home tab makes, counted."""

    def __init__(self) -> None:
        self.reads = 0

    async def active_pauses(self, *, environment: str | None = None) -> list[PauseRecord]:
        self.reads += 1
        return []


async def test_background_refreshes_coalesce_into_one_publish_per_viewer(
    slack: tuple[Any, str],  # noqa: F811
) -> None:
    emulator, url = slack
    pauses = Pauses()
    notifier = notifier_for(counting_client(url), background=True, home_delay=0.3)
    notifier._store = cast(Store, pauses)
    await notifier.publish_home("U0ALICE")
    await notifier.publish_home("U0BOB")
    emulator.clear_calls()
    for _ in range(50):  # fifty cards reaching their end at once
        await notifier.refresh_homes()
    assert emulator.calls("views.publish") == []  # not yet: waiting to coalesce
    assert await notifier.drain(within=10)
    assert len(emulator.calls("views.publish")) == 2  # one per viewer
    assert pauses.reads == 3  # two opens, one shared refresh
    await notifier.refresh_homes()  # a later change refreshes again
    assert await notifier.drain(within=10)
    assert len(emulator.calls("views.publish")) == 4


async def test_without_background_a_refresh_publishes_at_once(
    slack: tuple[Any, str],  # noqa: F811
) -> None:
    emulator, url = slack
    notifier: SlackNotifier = notifier_for(counting_client(url))
    notifier._store = cast(Store, Pauses())
    await notifier.publish_home("U0ALICE")
    emulator.clear_calls()
    await notifier.refresh_homes()
    assert len(emulator.calls("views.publish")) == 1
