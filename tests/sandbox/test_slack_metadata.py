"""Message metadata in the Slack emulator: kept on chat.postMessage, listed by
conversations.replies / conversations.history only with ``include_all_metadata``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.server import ServerThread
from sandbox.slack import SANDBOX_BOT_TOKEN, SlackEmulator

CHANNEL = "C0OPS"
METADATA = {"event_type": "automation_bot_outbox", "event_payload": {"id": 7}}


@pytest.fixture
def client() -> Iterator[AsyncWebClient]:
    emulator = SlackEmulator()
    with ServerThread(emulator.app) as server:
        yield AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=server.url + "/api/")


async def test_metadata_is_kept_and_listed_only_when_asked_for(client: AsyncWebClient) -> None:
    card = await client.chat_postMessage(channel=CHANNEL, text="card")
    reply = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=card["ts"], text="note", metadata=METADATA
    )
    notice = await client.chat_postMessage(channel=CHANNEL, text="notice", metadata=METADATA)

    plain = await client.conversations_replies(channel=CHANNEL, ts=card["ts"])
    assert [m["text"] for m in plain["messages"]] == ["card", "note"]
    assert all("metadata" not in m for m in plain["messages"])
    full = await client.conversations_replies(
        channel=CHANNEL, ts=card["ts"], include_all_metadata=True
    )
    [parent, listed] = full["messages"]
    assert "metadata" not in parent
    assert (listed["ts"], listed["metadata"]) == (reply["ts"], METADATA)

    history = await client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["notice", "card"]  # newest first
    assert history["messages"][0]["metadata"] == METADATA
    since = await client.conversations_history(channel=CHANNEL, oldest=card["ts"])
    assert [(m["ts"], m.get("metadata")) for m in since["messages"]] == [(notice["ts"], None)]
