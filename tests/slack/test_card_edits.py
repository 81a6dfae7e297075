"""Card edits show the request as stored when they reach Slack, whoever sent what before.

Two bot processes may edit one card: an edit rendered from an old copy, or one that lands
after the other process's newer edit, must not leave the card behind the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.models import PauseOptions, TargetKind, Verb
from bot.domain.outbox import OutboxStatus
from bot.domain.requests import OperationRequest, RequestSpec, RequestStatus, Via
from bot.slack import blocks
from bot.slack.app import create_web_client
from bot.slack.notifier import SlackNotifier
from bot.store.repository import Store
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator, SlackSettings
from sandbox.slack.model import SANDBOX_BOT_TOKEN
from tests.db import DATABASE_PARAMS, fresh_store, test_database_urls

CHANNEL = "C0OPS"
SPEC = RequestSpec(
    verb=Verb.PAUSE,
    environment="staging",
    kind=TargetKind.AUTOMATION,
    key="daily-welcome-send",
    name="Daily Welcome Email Send",
    target_id="obj-1",
    pause=PauseOptions(),
)


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator(settings=SlackSettings(rate_limits_enabled=False))
    with ServerThread(emulator.app) as server:
        yield emulator, server.url + "/api/"


@pytest.fixture(params=DATABASE_PARAMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = test_database_urls(tmp_path)[request.param]
    if url is None:
        pytest.skip("no PostgreSQL configured")
    async with fresh_store(url) as opened:
        yield opened


async def posted(store: Store, notifier: SlackNotifier) -> OperationRequest:
    request = await store.create_request(
        spec=SPEC, requested_by="U0ALICE", via=Via.COMMAND, reason=None, channel=CHANNEL
    )
    ref = await notifier.post_card(request)
    assert ref is not None
    return await store.set_card(request.id, channel=ref.channel, card_ts=ref.ts)


async def finish(store: Store, request: OperationRequest) -> OperationRequest:
    await store.transition(request.id, to=RequestStatus.EXECUTING)
    done = await store.transition(
        request.id,
        to=RequestStatus.SUCCEEDED,
        state_before="active (6 Scheduled)",
        state_after="paused (4 Paused)",
    )
    assert done is not None
    return done


def card_text(emulator: SlackEmulator, request: OperationRequest) -> str:
    return str(emulator.message(CHANNEL, str(request.card_ts)).get("text", ""))


async def test_an_edit_from_an_old_copy_shows_the_stored_request(
    slack: tuple[SlackEmulator, str], store: Store
) -> None:
    emulator, api = slack
    notifier = SlackNotifier(
        client=create_web_client(token=SANDBOX_BOT_TOKEN, base_url=api), store=store
    )
    old = await posted(store, notifier)
    await finish(store, old)
    await notifier.update_card(old)  # the caller's copy still says "received"
    assert "Done" in card_text(emulator, old)


class OtherProcessFirst(AsyncWebClient):
    """Slack as seen when another process finishes the request (writing its card's edit
    to the shared outbox, as every change does) and shows it on the card while this
    process's older edit is on its way, so the older edit lands last."""

    def __init__(self, *, store: Store, emulator_api: str, **kwargs: Any) -> None:
        super().__init__(token=SANDBOX_BOT_TOKEN, base_url=emulator_api, **kwargs)
        self.store = store
        self.other = create_web_client(token=SANDBOX_BOT_TOKEN, base_url=emulator_api)
        self.raced = False

    async def chat_update(self, **kwargs: Any) -> Any:
        if not self.raced:
            self.raced = True
            request = await self.store.find_by_card(channel=kwargs["channel"], card_ts=kwargs["ts"])
            assert request is not None
            done = await finish(self.store, request)
            other = SlackNotifier(client=self.other, store=self.store, owner="other-process")
            await other.update_card(done)  # its row is this process's, being sent: bumped
            final = blocks.request_card(done, now=done.updated_at)
            await self.other.chat_update(
                channel=kwargs["channel"], ts=kwargs["ts"], text=final.text, blocks=final.blocks
            )
        return await super().chat_update(**kwargs)


async def test_an_edit_that_lands_after_a_newer_one_is_followed_by_the_stored_state(
    slack: tuple[SlackEmulator, str], store: Store
) -> None:
    emulator, api = slack
    client = OtherProcessFirst(store=store, emulator_api=api)
    notifier = SlackNotifier(client=client, store=store)
    request = await posted(store, notifier)
    await notifier.update_card(request)
    assert client.raced
    assert "Done" in card_text(emulator, request)
    assert all(i.status is OutboxStatus.SENT for i in await store.outbox_items())
