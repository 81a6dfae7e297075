"""The Slack emulator and driver over real HTTP: Web API rules, response_urls, signed payloads."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.internals import parse_body
from slack_bolt.request.payload_utils import (
    to_action,
    to_command,
    to_event,
    to_options,
    to_view,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.clock import Clock
from sandbox.run import running_sandbox
from sandbox.server import ServerThread
from sandbox.slack import (
    SANDBOX_APP_TOKEN,
    SANDBOX_BOT_TOKEN,
    SlackDriver,
    SlackEmulator,
    SlackSettings,
)
from sandbox.slack.ratelimits import METHOD_TIERS, Tier

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = "test-signing-secret"
TS_RE = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SlackEmulator, str]]:
    # Slack's tier limits are off here (tests of Web API rules); the tests of the limits
    # themselves turn them on.
    emulator = SlackEmulator(
        clock=Clock(frozen_at=T0), settings=SlackSettings(rate_limits_enabled=False)
    )
    with ServerThread(emulator.app) as thread:
        yield emulator, thread.url


@pytest.fixture
def emu(server: tuple[SlackEmulator, str]) -> SlackEmulator:
    emulator, _ = server
    emulator.clock.freeze(T0)
    emulator.reset()
    return emulator


@pytest.fixture
def url(server: tuple[SlackEmulator, str], emu: SlackEmulator) -> str:
    return server[1]


@pytest.fixture
def client(url: str) -> AsyncWebClient:
    return AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/")


async def error_of(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def modal(title: str = "Pause automation", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "pause_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason_input"},
            }
        ],
        **extra,
    }


# ====================================================================== Web API basics


async def test_auth_test_and_token_errors(client: AsyncWebClient, url: str) -> None:
    resp = await client.auth_test()
    assert resp["user_id"] == "U0BOT"
    assert resp["team_id"] == "T0SANDBOX"
    assert resp["bot_id"]
    bad = AsyncWebClient(token="xoxb-wrong", base_url=url + "/api/")
    assert (await error_of(bad.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=url + "/api/")
    assert (await error_of(anonymous.auth_test())).response["error"] == "not_authed"


async def test_apps_connections_open_takes_only_an_app_level_token(url: str) -> None:
    """The start of the Socket Mode handshake: a ws URL for the app token, refusals else."""
    opened = await AsyncWebClient(base_url=url + "/api/").apps_connections_open(
        app_token=SANDBOX_APP_TOKEN
    )
    host = url.removeprefix("http://")
    assert opened["url"].startswith(f"ws://{host}/socket-mode/")
    bot = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=url + "/api/")
    wrong = bot.apps_connections_open(app_token="xapp-wrong")
    assert (await error_of(wrong)).response["error"] == "invalid_auth"
    as_bot = bot.apps_connections_open(app_token=SANDBOX_BOT_TOKEN)
    assert (await error_of(as_bot)).response["error"] == "not_allowed_token_type"
    app_as_bot = AsyncWebClient(token=SANDBOX_APP_TOKEN, base_url=url + "/api/")
    assert (await error_of(app_as_bot.auth_test())).response["error"] == "not_allowed_token_type"


async def test_post_message_shape_and_increasing_ts(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    blocks = [section("*Pause* requested"), {"type": "divider"}]
    first = await client.chat_postMessage(channel="C0OPS", text="Pause requested", blocks=blocks)
    second = await client.chat_postMessage(channel="#automation-ops", text="again")
    assert first["channel"] == second["channel"] == "C0OPS"
    assert TS_RE.match(first["ts"])
    assert TS_RE.match(second["ts"])
    assert float(second["ts"]) > float(first["ts"])
    msg = first["message"]
    assert msg["user"] == "U0BOT"
    assert msg["bot_id"]
    assert msg["type"] == "message"
    assert msg["text"] == "Pause requested"
    assert [b["type"] for b in msg["blocks"]] == ["section", "divider"]
    assert all(b.get("block_id") for b in msg["blocks"])  # Slack fills block_ids in
    assert [m["ts"] for m in emu.messages("C0OPS")] == [first["ts"], second["ts"]]
    call = emu.calls("chat.postMessage")[0]
    assert call.args["blocks"][0]["text"]["text"] == "*Pause* requested"
    assert call.at == T0
    assert call.ok
    assert call.token == SANDBOX_BOT_TOKEN


def test_form_encoded_blocks_are_decoded(url: str, emu: SlackEmulator) -> None:
    body = {
        "channel": "C0OPS",
        "text": "hi",
        "blocks": json.dumps([section("from a form")]),
    }
    resp = httpx.post(
        url + "/api/chat.postMessage",
        data=body,
        headers={"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"},
    )
    assert resp.json()["ok"] is True
    assert emu.calls("chat.postMessage")[0].args["blocks"][0]["text"]["text"] == "from a form"
    bad = httpx.post(
        url + "/api/chat.postMessage", data={**body, "blocks": "[{", "token": "xoxb-sandbox"}
    )
    assert bad.json() == {
        "ok": False,
        "error": "invalid_blocks_format",
        "response_metadata": {"messages": ["[ERROR] invalid JSON [json-pointer:/blocks]"]},
    }


async def test_post_message_errors_and_dm(client: AsyncWebClient) -> None:
    err = await error_of(client.chat_postMessage(channel="#nope", text="x"))
    assert err.response["error"] == "channel_not_found"
    with pytest.warns(UserWarning, match="top-level `text`"):
        err = await error_of(client.chat_postMessage(channel="C0OPS", text=""))
    assert err.response["error"] == "no_text"
    dm = await client.chat_postMessage(channel="U0ALICE", text="hello")
    assert dm["channel"] == "D0ALICE"


async def test_chat_update_rules(client: AsyncWebClient, emu: SlackEmulator) -> None:
    posted = await client.chat_postMessage(
        channel="C0OPS", text="Pending", blocks=[section("Pending")]
    )
    ts = posted["ts"]
    updated = await client.chat_update(channel="C0OPS", ts=ts, text="Approved")
    assert updated["ts"] == ts
    assert updated["text"] == "Approved"
    latest = emu.message("C0OPS", ts)
    assert latest["text"] == "Approved"
    assert latest["blocks"][0]["text"]["text"] == "Pending"  # blocks kept unless sent
    assert latest["edited"]["user"] == "U0BOT"
    assert [v["text"] for v in emu.message_versions("C0OPS", ts)] == ["Pending", "Approved"]
    await client.chat_update(channel="C0OPS", ts=ts, text="Done", blocks=[])
    assert emu.message("C0OPS", ts)["blocks"] == []

    err = await error_of(client.chat_update(channel="C0OPS", ts="1.000001", text="x"))
    assert err.response["error"] == "message_not_found"
    human = emu.add_message("C0OPS", user="U0ALICE", text="please pause")
    err = await error_of(client.chat_update(channel="C0OPS", ts=human["ts"], text="x"))
    assert err.response["error"] == "cant_update_message"


async def test_threads_and_permalinks(client: AsyncWebClient, emu: SlackEmulator) -> None:
    parent = await client.chat_postMessage(channel="C0OPS", text="Request #1")
    reply = await client.chat_postMessage(channel="C0OPS", text="approved", thread_ts=parent["ts"])
    broadcast = await client.chat_postMessage(
        channel="C0OPS", text="done", thread_ts=parent["ts"], reply_broadcast=True
    )
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert [m["text"] for m in emu.thread("C0OPS", parent["ts"])] == [
        "Request #1",
        "approved",
        "done",
    ]
    assert [m["text"] for m in emu.messages("C0OPS")] == ["Request #1", "done"]
    root = emu.message("C0OPS", parent["ts"])
    assert root["reply_count"] == 2
    assert root["latest_reply"] == broadcast["ts"]
    assert emu.message("C0OPS", broadcast["ts"])["subtype"] == "thread_broadcast"

    err = await error_of(client.chat_postMessage(channel="C0OPS", text="x", thread_ts="1.2"))
    assert err.response["error"] == "thread_not_found"
    link = await client.chat_getPermalink(channel="C0OPS", message_ts=reply["ts"])
    assert link["permalink"] == (
        f"https://sandbox.slack.com/archives/C0OPS/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={parent['ts']}&cid=C0OPS"
    )
    err = await error_of(client.chat_getPermalink(channel="C0OPS", message_ts="1.000002"))
    assert err.response["error"] == "message_not_found"


async def test_ephemeral_messages(client: AsyncWebClient, emu: SlackEmulator) -> None:
    resp = await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="only you")
    assert TS_RE.match(resp["message_ts"])
    assert [e["text"] for e in emu.ephemerals("C0OPS", "U0BOB")] == ["only you"]
    assert emu.ephemerals("C0OPS", "U0ALICE") == []
    assert emu.messages("C0OPS") == []
    err = await error_of(client.chat_postEphemeral(channel="C0OPS", user="U0NOBODY", text="x"))
    assert err.response["error"] == "user_not_found"


# ====================================================================== views


async def test_views_open_trigger_rules(client: AsyncWebClient, emu: SlackEmulator) -> None:
    trigger = emu.mint_trigger("U0ALICE")
    opened = await client.views_open(trigger_id=trigger, view=modal())
    view = opened["view"]
    assert view["id"].startswith("V")
    assert view["root_view_id"] == view["id"]
    assert view["hash"]
    assert view["callback_id"] == "pause_modal"
    assert view["state"] == {"values": {}}
    assert emu.views("U0ALICE")[0]["id"] == view["id"]
    assert emu.latest_view("U0ALICE") == view

    again = await error_of(client.views_open(trigger_id=trigger, view=modal()))
    assert again.response["error"] == "exchanged_trigger_id"
    stale = emu.mint_trigger("U0ALICE")
    emu.clock.advance(3.01)
    expired = await error_of(client.views_open(trigger_id=stale, view=modal()))
    assert expired.response["error"] == "expired_trigger_id"
    unknown = await error_of(client.views_open(trigger_id="123.456.abcdef", view=modal()))
    assert unknown.response["error"] == "invalid_trigger_id"


async def test_views_update_hash_and_missing(client: AsyncWebClient, emu: SlackEmulator) -> None:
    view = (await client.views_open(trigger_id=emu.mint_trigger("U0BOB"), view=modal()))["view"]
    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view=modal("Working…")
    )
    assert updated["view"]["id"] == view["id"]
    assert updated["view"]["hash"] != view["hash"]
    assert emu.view(view["id"])["title"]["text"] == "Working…"
    conflict = await error_of(
        client.views_update(view_id=view["id"], hash=view["hash"], view=modal())
    )
    assert conflict.response["error"] == "hash_conflict"
    missing = await error_of(client.views_update(view_id="V404", view=modal()))
    assert missing.response["error"] == "not_found"


async def test_views_publish_home(client: AsyncWebClient, emu: SlackEmulator) -> None:
    home = {"type": "home", "blocks": [section("My pending approvals")]}
    first = await client.views_publish(user_id="U0CAROL", view=home)
    second = await client.views_publish(user_id="U0CAROL", view=home, hash=first["view"]["hash"])
    assert first["view"]["id"] == second["view"]["id"]
    assert emu.home("U0CAROL") == second["view"]
    assert emu.home("U0BOB") is None
    conflict = await error_of(
        client.views_publish(user_id="U0CAROL", view=home, hash=first["view"]["hash"])
    )
    assert conflict.response["error"] == "hash_conflict"
    wrong = await error_of(client.views_publish(user_id="U0CAROL", view=modal()))
    assert wrong.response["error"] == "invalid_arguments"


# ====================================================================== directory


async def test_usergroups_and_users(client: AsyncWebClient, emu: SlackEmulator) -> None:
    members = await client.usergroups_users_list(usergroup="S0APPROVERS")
    assert members["users"] == ["U0BOB", "U0CAROL"]
    emu.set_usergroup("S0NEW", ["U0DAVE"])
    assert (await client.usergroups_users_list(usergroup="S0NEW"))["users"] == ["U0DAVE"]
    err = await error_of(client.usergroups_users_list(usergroup="S0MISSING"))
    assert err.response["error"] == "no_such_subteam"
    emu.settings.usergroups_enabled = False
    err = await error_of(client.usergroups_users_list(usergroup="S0APPROVERS"))
    assert err.response["error"] == "plan_upgrade_required"

    bob = (await client.users_info(user="U0BOB"))["user"]
    assert bob["name"] == "bob"
    assert bob["tz"] == "America/New_York"
    assert bob["tz_offset"] == -5 * 3600  # EST on 2 March
    assert bob["profile"]["real_name"] == "Bob Approver"
    err = await error_of(client.users_info(user="U0NOBODY"))
    assert err.response["error"] == "user_not_found"

    info = (await client.conversations_info(channel="C0OPS"))["channel"]
    assert info["name"] == "automation-ops"
    assert info["is_channel"] is True
    err = await error_of(client.conversations_info(channel="#missing"))
    assert err.response["error"] == "channel_not_found"


async def test_reactions(client: AsyncWebClient, emu: SlackEmulator) -> None:
    ts = (await client.chat_postMessage(channel="C0OPS", text="approve?"))["ts"]
    await client.reactions_add(channel="C0OPS", timestamp=ts, name="white_check_mark")
    err = await error_of(
        client.reactions_add(channel="C0OPS", timestamp=ts, name="white_check_mark")
    )
    assert err.response["error"] == "already_reacted"
    emu.add_reaction("C0OPS", ts, "white_check_mark", "U0BOB")
    got = await client.reactions_get(channel="C0OPS", timestamp=ts)
    assert got["message"]["reactions"] == [
        {"name": "white_check_mark", "users": ["U0BOT", "U0BOB"], "count": 2}
    ]
    err = await error_of(client.reactions_get(channel="C0OPS", timestamp="1.000003"))
    assert err.response["error"] == "message_not_found"


# ====================================================================== rate limits, knobs


async def test_post_message_rate_limit_per_channel(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    emu.settings.rate_limits_enabled = True
    emu.settings.post_message_burst = 2
    for _ in range(2):
        await client.chat_postMessage(channel="C0OPS", text="ok")
    err = await error_of(client.chat_postMessage(channel="C0OPS", text="too fast"))
    assert err.response.status_code == 429
    assert err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] in ("1", ["1"])
    await client.chat_postMessage(channel="C0APPROVALS", text="other channel is fine")
    emu.clock.advance(1)
    await client.chat_postMessage(channel="C0OPS", text="after a second")
    assert len(emu.messages("C0OPS")) == 3


async def test_forced_429_and_sdk_retry_handler_recovers(url: str, emu: SlackEmulator) -> None:
    emu.force_rate_limit("chat.postMessage", 1, retry_after=0)
    retrying = AsyncWebClient(
        token=SANDBOX_BOT_TOKEN,
        base_url=url + "/api/",
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    resp = await retrying.chat_postMessage(channel="C0OPS", text="eventually")
    assert resp["ok"] is True
    statuses = [(c.status, c.knob) for c in emu.calls("chat.postMessage")]
    assert statuses == [(429, "rate_limit"), (200, None)]
    assert len(emu.messages("C0OPS")) == 1


# ---------------------------------------------------------------------- tiers

_TIER_BURSTS = {"tier1_burst": 1, "tier2_burst": 2, "tier3_burst": 3, "tier4_burst": 4}
#: Retry-After (whole seconds) of an empty bucket at the default rates: 60 s / 1, 20, 50, 100.
_TIER_RETRY_AFTER = {Tier.TIER1: "60", Tier.TIER2: "3", Tier.TIER3: "2", Tier.TIER4: "1"}


def _call(http: httpx.Client, method: str, **args: Any) -> httpx.Response:
    token = SANDBOX_APP_TOKEN if method == "apps.connections.open" else SANDBOX_BOT_TOKEN
    return http.post(f"/api/{method}", data=args, headers={"Authorization": f"Bearer {token}"})


def test_every_served_method_has_a_tier(emu: SlackEmulator) -> None:
    assert set(emu.methods) == set(METHOD_TIERS)
    assert METHOD_TIERS["chat.update"] is Tier.TIER3
    assert METHOD_TIERS["views.publish"] is Tier.TIER4
    assert METHOD_TIERS["views.open"] is Tier.TIER4
    assert METHOD_TIERS["chat.postEphemeral"] is Tier.TIER4
    assert METHOD_TIERS["usergroups.users.list"] is Tier.TIER2
    assert METHOD_TIERS["reactions.get"] is Tier.TIER3
    assert METHOD_TIERS["apps.connections.open"] is Tier.TIER1


def test_limits_are_on_by_default_at_slack_rates() -> None:
    settings = SlackEmulator().settings
    assert settings.rate_limits_enabled is True
    per_min = (
        settings.tier1_per_min,
        settings.tier2_per_min,
        settings.tier3_per_min,
        settings.tier4_per_min,
    )
    assert per_min == (1, 20, 50, 100)
    assert settings.post_message_per_s == 1


@pytest.mark.parametrize(
    "method", sorted(m for m, t in METHOD_TIERS.items() if t is not Tier.POST_MESSAGE)
)
def test_each_method_has_its_tier_budget(url: str, emu: SlackEmulator, method: str) -> None:
    emu.settings = emu.settings.model_copy(update={"rate_limits_enabled": True, **_TIER_BURSTS})
    tier = METHOD_TIERS[method]
    burst = _TIER_BURSTS[f"{tier}_burst"]
    with httpx.Client(base_url=url, timeout=5) as http:
        # a call refused for its arguments spends the budget too, as on Slack
        for _ in range(burst):
            assert _call(http, method).status_code != 429
        over = _call(http, method)
        assert over.status_code == 429
        assert over.json() == {"ok": False, "error": "ratelimited"}
        assert over.headers["retry-after"] == _TIER_RETRY_AFTER[tier]
        # the budget is per method: another method of the same tier still has its own
        same_tier = [m for m, t in METHOD_TIERS.items() if t is tier and m != method]
        other = same_tier[0] if same_tier else "auth.test"
        assert _call(http, other).status_code != 429
        emu.clock.advance(int(_TIER_RETRY_AFTER[tier]))
        assert _call(http, method).status_code != 429
        assert _call(http, method).status_code == 429


def test_tier3_edits_refill_at_their_rate(url: str, emu: SlackEmulator) -> None:
    emu.settings = emu.settings.model_copy(
        update={"rate_limits_enabled": True, "tier3_per_min": 60, "tier3_burst": 2}
    )
    with httpx.Client(base_url=url, timeout=5) as http:
        posted = _call(http, "chat.postMessage", channel="C0OPS", text="card").json()
        ok = [
            _call(http, "chat.update", channel="C0OPS", ts=posted["ts"], text=f"v{i}")
            for i in range(3)
        ]
        assert [r.status_code for r in ok] == [200, 200, 429]
        assert ok[0].json()["ok"] is True
        emu.clock.advance(0.5)
        assert _call(http, "chat.update", channel="C0OPS", ts=posted["ts"]).status_code == 429
        emu.clock.advance(0.5)
        last = _call(http, "chat.update", channel="C0OPS", ts=posted["ts"], text="v3")
        assert last.json()["ok"] is True
    statuses = [c.status for c in emu.calls("chat.update")]
    assert statuses == [200, 200, 429, 429, 200]


def test_post_message_workspace_cap(url: str, emu: SlackEmulator) -> None:
    emu.settings = emu.settings.model_copy(
        update={"rate_limits_enabled": True, "post_message_workspace_burst": 3}
    )
    with httpx.Client(base_url=url, timeout=5) as http:
        for channel in ("C0OPS", "C0APPROVALS", "C0GENERAL"):
            assert _call(http, "chat.postMessage", channel=channel, text="hi").json()["ok"]
        capped = _call(http, "chat.postMessage", channel="C0NEW", text="a fresh channel")
        assert capped.status_code == 429
        assert capped.headers["retry-after"] == "1"  # 300 a minute: one every 0.2 s
        emu.clock.advance(0.2)
        assert _call(http, "chat.postMessage", channel="C0NEW", text="now").json()["ok"]
    assert [m["text"] for m in emu.messages("C0NEW")] == ["now"]


def test_rate_limit_settings_from_the_control_api(url: str, emu: SlackEmulator) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        changed = http.post(
            "/_sandbox/settings", json={"rate_limits_enabled": True, "tier2_burst": 1}
        )
        assert changed.status_code == 200
        assert changed.json()["tier2_burst"] == 1
        assert http.get("/_sandbox/settings").json()["rate_limits_enabled"] is True
        assert _call(http, "usergroups.users.list", usergroup="S0APPROVERS").json()["ok"]
        assert _call(http, "usergroups.users.list", usergroup="S0APPROVERS").status_code == 429
        # a new budget applies at once (the bucket starts again, full)
        http.post("/_sandbox/settings", json={"tier2_burst": 2})
        assert _call(http, "usergroups.users.list", usergroup="S0APPROVERS").json()["ok"]
        bad = http.post("/_sandbox/settings", json={"tier4_per_min": 0})
        assert bad.status_code == 400
        # the one off switch
        http.post("/_sandbox/settings", json={"rate_limits_enabled": False, "tier2_burst": 1})
        for _ in range(5):
            assert _call(http, "usergroups.users.list", usergroup="S0APPROVERS").json()["ok"]
            assert _call(http, "chat.postMessage", channel="C0OPS", text="x").json()["ok"]
            assert _call(http, "apps.connections.open").json()["ok"]


def test_control_api_knobs_calls_messages_reset(url: str, emu: SlackEmulator) -> None:
    auth = {"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"}
    with httpx.Client(base_url=url, timeout=5) as http:
        knobs = http.post(
            "/_sandbox/knobs", json={"force_rate_limit": {"users.info": 2}, "retry_after_s": 7}
        )
        assert knobs.json()["force_rate_limit"] == {"users.info": 2}
        for _ in range(2):
            throttled = http.post("/api/users.info", data={"user": "U0BOB"}, headers=auth)
            assert throttled.status_code == 429
            assert throttled.headers["retry-after"] == "7"
        assert http.post("/api/users.info", data={"user": "U0BOB"}, headers=auth).json()["ok"]
        assert http.post("/_sandbox/knobs", json={"bogus": 1}).status_code == 400

        http.post("/api/chat.postMessage", json={"channel": "C0OPS", "text": "x"}, headers=auth)
        calls = http.get("/_sandbox/calls", params={"method": "users.info"}).json()["calls"]
        assert [c["status"] for c in calls] == [429, 429, 200]
        messages = http.get("/_sandbox/messages", params={"channel": "C0OPS"}).json()
        assert [m["text"] for m in messages["messages"]] == ["x"]

        http.post("/_sandbox/knobs", json={"latency_ms": 200})
        started = time.perf_counter()
        http.post("/api/auth.test", headers=auth)
        assert time.perf_counter() - started >= 0.2

        assert http.post("/_sandbox/reset").json()["reset"] is True
        assert http.get("/_sandbox/calls").json()["calls"] == []
        assert emu.messages("C0OPS") == []
        assert emu.knobs.settings.latency_ms == 0


def test_server_error_knob(url: str, emu: SlackEmulator) -> None:
    emu.knobs.set(fail_next_5xx=1)
    auth = {"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"}
    first = httpx.post(url + "/api/auth.test", headers=auth)
    assert first.status_code == 500
    assert first.json()["ok"] is False
    assert httpx.post(url + "/api/auth.test", headers=auth).json()["ok"] is True


# ====================================================================== Block Kit limits


def _actions(action_id: str) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": "Go"},
    }
    return {"type": "actions", "elements": [button]}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section(f"b{i}") for i in range(51)], "/blocks]"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([section("ok", block_id="b" * 256)], "/blocks/0/block_id"),
        ([section("a", block_id="same"), section("b", block_id="same")], "/blocks/1/block_id"),
        ([_actions("a" * 256)], "/blocks/0/elements/0/action_id"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/text/text"),
        ([{"type": "nope"}], "/blocks/0/type"),
    ],
    ids=[
        "51-blocks",
        "section-3001",
        "block-id-256",
        "dup-block-id",
        "action-id-256",
        "header",
        "type",
    ],
)
async def test_message_block_limits(
    client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    err = await error_of(client.chat_postMessage(channel="C0OPS", text="t", blocks=blocks))
    assert err.response["error"] == "invalid_blocks"
    assert any(pointer in m for m in err.response["response_metadata"]["messages"])


async def test_fifty_blocks_are_fine(client: AsyncWebClient) -> None:
    blocks = [section(f"b{i}") for i in range(50)]
    assert (await client.chat_postMessage(channel="C0OPS", text="t", blocks=blocks))["ok"]


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal("x" * 25), "/view/title/text"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
        ({**modal(), "blocks": [section(str(i)) for i in range(101)]}, "/view/blocks]"),
        ({k: v for k, v in modal().items() if k != "submit"}, "/view/submit"),
    ],
    ids=["title-25", "metadata-3001", "callback-256", "101-blocks", "input-needs-submit"],
)
async def test_view_limits(
    client: AsyncWebClient, emu: SlackEmulator, view: dict[str, Any], pointer: str
) -> None:
    trigger = emu.mint_trigger("U0ALICE")
    err = await error_of(client.views_open(trigger_id=trigger, view=view))
    assert err.response["error"] == "invalid_arguments"
    assert any(pointer in m for m in err.response["response_metadata"]["messages"])
    minted = emu.trigger(trigger)
    assert minted is not None
    assert not minted.used


# ====================================================================== response_url


def test_response_url_five_uses_then_used_url(url: str, emu: SlackEmulator) -> None:
    response_url = emu.mint_response_url(url, channel="C0OPS", user="U0ALICE")
    for i in range(5):
        resp = httpx.post(response_url, json={"text": f"update {i}"})
        assert resp.status_code == 200
        assert resp.text == "ok"
    sixth = httpx.post(response_url, json={"text": "one too many"})
    assert (sixth.status_code, sixth.text) == (404, "used_url")
    posts = emu.responses(response_url)
    assert [p.status for p in posts] == [200] * 5 + [404]
    assert [e["text"] for e in emu.ephemerals("C0OPS", "U0ALICE")][-1] == "update 4"


def test_response_url_expires_after_30_minutes(url: str, emu: SlackEmulator) -> None:
    response_url = emu.mint_response_url(url, channel="C0OPS", user="U0ALICE")
    emu.clock.advance(30 * 60 + 1)
    resp = httpx.post(response_url, json={"text": "late"})
    assert (resp.status_code, resp.text) == (404, "expired_url")
    unknown = httpx.post(url + "/response/deadbeef", json={"text": "?"})
    assert unknown.status_code == 404


def test_response_url_in_channel_replace_and_delete(url: str, emu: SlackEmulator) -> None:
    auth = {"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"}
    posted = httpx.post(
        url + "/api/chat.postMessage", json={"channel": "C0OPS", "text": "Approve?"}, headers=auth
    ).json()
    ts = posted["ts"]
    action_url = emu.mint_response_url(url, channel="C0OPS", user="U0BOB", message_ts=ts)
    httpx.post(action_url, json={"replace_original": True, "text": "Approved by Bob"})
    assert emu.message("C0OPS", ts)["text"] == "Approved by Bob"
    httpx.post(action_url, json={"response_type": "in_channel", "text": "FYI everyone"})
    assert [m["text"] for m in emu.messages("C0OPS")] == ["Approved by Bob", "FYI everyone"]
    bad = httpx.post(action_url, json={"blocks": [section("x" * 3001)]})
    assert (bad.status_code, bad.text) == (400, "invalid_blocks")
    httpx.post(action_url, json={"delete_original": True})
    with pytest.raises(KeyError):
        emu.message("C0OPS", ts)
    payloads = [p.payload for p in emu.responses(action_url) if p.status == 200]
    assert payloads[-1] == {"delete_original": True}


# ====================================================================== driver: signatures


class Echo:
    """A tiny app that checks signatures with slack_sdk and keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.verifier = SignatureVerifier(SECRET)
        self.app = Starlette(routes=[Route("/slack/events", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.requests.append((body, headers))
        return JSONResponse({"valid": self.verifier.is_valid_request(body, headers)})

    def last_body(self) -> dict[str, Any]:
        body, headers = self.requests[-1]
        return parse_body(body.decode(), headers["content-type"])


@pytest.fixture(scope="module")
def echo_server() -> Iterator[tuple[Echo, str]]:
    echo = Echo()
    with ServerThread(echo.app) as thread:
        yield echo, thread.url


@pytest.fixture
def echo(echo_server: tuple[Echo, str]) -> Echo:
    echo_server[0].requests.clear()
    return echo_server[0]


@pytest.fixture
def driver(echo_server: tuple[Echo, str], url: str, emu: SlackEmulator) -> Iterator[SlackDriver]:
    with SlackDriver(
        bot_url=echo_server[1] + "/slack/events",
        signing_secret=SECRET,
        emulator=emu,
        emulator_url=url,
    ) as d:
        yield d


def test_signatures_valid_wrong_secret_and_stale(driver: SlackDriver, echo: Echo) -> None:
    assert driver.slash_command("pause welcome").json() == {"valid": True}
    assert driver.slash_command("x", signing_secret_override="nope").json() == {"valid": False}
    assert driver.slash_command("x", timestamp_offset=-600).json() == {"valid": False}
    assert driver.event({"type": "app_mention"}, timestamp_offset=-200).json() == {"valid": True}
    delivery = driver.raw(b'{"type":"url_verification"}', sign_request=False)
    assert delivery.json() == {"valid": False}
    assert delivery.elapsed_s > 0


def test_slash_command_payload(driver: SlackDriver, echo: Echo, emu: SlackEmulator) -> None:
    delivery = driver.slash_command("pause Welcome Series", user="U0BOB", channel="C0OPS")
    _body, headers = echo.requests[-1]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    command = to_command(echo.last_body())
    assert command is not None
    assert command["command"] == "/automation"
    assert command["text"] == "pause Welcome Series"
    assert command["user_id"] == "U0BOB"
    assert command["user_name"] == "bob"
    assert command["channel_id"] == "C0OPS"
    assert command["channel_name"] == "automation-ops"
    assert command["team_id"] == "T0SANDBOX"
    assert command["is_enterprise_install"] == "false"
    assert command["response_url"] == delivery.response_url
    assert command["response_url"].startswith(driver.emulator_url + "/response/")
    trigger = emu.trigger(command["trigger_id"])
    assert trigger is not None
    assert trigger.user == "U0BOB"
    assert not trigger.used


async def test_block_action_payload_from_stored_message(
    driver: SlackDriver, echo: Echo, client: AsyncWebClient
) -> None:
    blocks = [
        section("Pause *Welcome Series*?"),
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "value": "req-42",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "static_select",
                    "action_id": "duration",
                    "placeholder": {"type": "plain_text", "text": "For"},
                    "options": [
                        {"text": {"type": "plain_text", "text": "1 hour"}, "value": "1h"},
                        {"text": {"type": "plain_text", "text": "1 day"}, "value": "1d"},
                    ],
                },
            ],
        },
    ]
    posted = await client.chat_postMessage(channel="C0OPS", text="Pause?", blocks=blocks)
    await asyncio.to_thread(
        driver.block_action,
        action_id="approve",
        user="U0CAROL",
        channel="C0OPS",
        message_ts=posted["ts"],
    )
    body = echo.last_body()
    action = to_action(body)
    assert action is not None
    assert action["action_id"] == "approve"
    assert action["value"] == "req-42"
    assert action["block_id"] == "decision"
    assert action["type"] == "button"
    assert body["type"] == "block_actions"
    assert body["user"] == {
        "id": "U0CAROL",
        "username": "carol",
        "name": "carol",
        "team_id": "T0SANDBOX",
    }
    assert body["container"]["message_ts"] == posted["ts"]
    assert body["message"]["ts"] == posted["ts"]
    assert body["message"]["blocks"][1]["block_id"] == "decision"
    assert body["channel"] == {"id": "C0OPS", "name": "automation-ops"}
    assert body["response_url"].startswith(driver.emulator_url)
    assert body["trigger_id"]

    await asyncio.to_thread(
        driver.block_action,
        action_id="duration",
        value="1d",
        user="U0CAROL",
        channel="C0OPS",
        message_ts=posted["ts"],
    )
    selected = to_action(echo.last_body())
    assert selected is not None
    assert selected["selected_option"]["value"] == "1d"
    assert selected["selected_option"]["text"]["text"] == "1 day"
    with pytest.raises(LookupError):
        driver.block_action(
            action_id="ghost", user="U0CAROL", channel="C0OPS", message_ts=posted["ts"]
        )


async def test_view_submission_and_suggestion_payloads(
    driver: SlackDriver, echo: Echo, client: AsyncWebClient, emu: SlackEmulator
) -> None:
    view = modal(private_metadata='{"channel":"C0OPS"}')
    view["blocks"].append(
        {
            "type": "input",
            "block_id": "target",
            "label": {"type": "plain_text", "text": "Automation"},
            "element": {"type": "external_select", "action_id": "pick", "min_query_length": 1},
        }
    )
    opened = (await client.views_open(trigger_id=emu.mint_trigger("U0ALICE"), view=view))["view"]
    await asyncio.to_thread(
        driver.view_submission, None, {"reason": {"reason_input": "maintenance"}}, user="U0ALICE"
    )
    body = echo.last_body()
    submitted = to_view(body)
    assert submitted is not None
    assert submitted["id"] == opened["id"]
    assert body["type"] == "view_submission"
    assert submitted["private_metadata"] == '{"channel":"C0OPS"}'
    assert submitted["state"]["values"] == {
        "reason": {"reason_input": {"type": "plain_text_input", "value": "maintenance"}},
        "target": {"pick": {"type": "external_select", "selected_option": None}},
    }
    # The echo app's ack is not a response_action, so Slack closes the modal.
    assert not emu.view_is_open(opened["id"])

    await asyncio.to_thread(
        driver.block_suggestion, action_id="pick", value="wel", user="U0ALICE", view=opened
    )
    options = to_options(echo.last_body())
    assert options is not None
    assert options["action_id"] == "pick"
    assert options["block_id"] == "target"
    assert options["value"] == "wel"


def test_events_envelope_retries_and_helpers(
    driver: SlackDriver, echo: Echo, emu: SlackEmulator
) -> None:
    ts = emu.add_message("C0OPS", user="U0BOT", text="approve?")["ts"]
    first = driver.reaction_added("U0BOB", "white_check_mark", "C0OPS", ts)
    envelope = echo.last_body()
    event = to_event(envelope)
    assert event is not None
    assert event["type"] == "reaction_added"
    assert event["item"] == {"type": "message", "channel": "C0OPS", "ts": ts}
    assert event["item_user"] == "U0BOT"
    assert event["user"] == "U0BOB"
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["authorizations"][0]["user_id"] == "U0BOT"
    assert emu.reactions("C0OPS", ts) == [
        {"name": "white_check_mark", "users": ["U0BOB"], "count": 1}
    ]
    assert "x-slack-retry-num" not in echo.requests[-1][1]

    driver.event({}, event_id=envelope["event_id"], retry_num=1, retry_reason="http_timeout")
    body, headers = echo.requests[-1]
    assert json.loads(body) == first.payload
    assert headers["x-slack-retry-num"] == "1"
    assert headers["x-slack-retry-reason"] == "http_timeout"

    driver.reaction_removed("U0BOB", "white_check_mark", "C0OPS", ts)
    assert to_event(echo.last_body())["type"] == "reaction_removed"  # type: ignore[index]
    assert emu.reactions("C0OPS", ts) == []
    driver.app_home_opened("U0DAVE")
    assert to_event(echo.last_body()) == {  # no view until one is published
        "type": "app_home_opened",
        "user": "U0DAVE",
        "channel": "D0DAVE",
        "tab": "home",
        "event_ts": to_event(echo.last_body())["event_ts"],  # type: ignore[index]
    }
    driver.url_verification("challenge-123")
    assert echo.last_body() == {
        "token": driver.verification_token,
        "challenge": "challenge-123",
        "type": "url_verification",
    }


# ====================================================================== driver + a real Bolt app


class BoltBot:
    """A minimal AsyncApp: /automation opens a modal, buttons update, submissions post."""

    def __init__(self, emulator_url: str) -> None:
        client = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=emulator_url + "/api/")
        self.app = AsyncApp(client=client, signing_secret=SECRET)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        app = self.app

        @app.command("/automation")
        async def command(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await ack("Working on it")
            self.seen.append(("command", body))
            if body["text"] == "modal":
                # Catch errors: AsyncApp answers 404 after 3 s when a listener raises within
                # ~10 ms of ack() (asyncio_runner resets ack.response to None).
                try:
                    await client.views_open(trigger_id=body["trigger_id"], view=modal())
                except SlackApiError as exc:
                    self.errors.append(str(exc.response["error"]))
            else:
                await respond(text=f"got {body['text']}", response_type="ephemeral")
            self.done.set()

        @app.action("approve")
        async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            self.seen.append(("action", body))
            await client.chat_update(
                channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved"
            )
            self.done.set()

        @app.view("pause_modal")
        async def submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
            reason = view["state"]["values"]["reason"]["reason_input"]["value"]
            self.seen.append(("view", body))
            if not reason:
                await ack(response_action="errors", errors={"reason": "Say why"})
                return
            await ack()

        @app.event("reaction_added")
        async def reaction(event: dict[str, Any], client: AsyncWebClient) -> None:
            self.seen.append(("reaction", event))
            await client.chat_postMessage(
                channel=event["item"]["channel"], thread_ts=event["item"]["ts"], text="noted"
            )
            self.done.set()

        handler = AsyncSlackRequestHandler(app)

        async def endpoint(request: Request) -> Response:
            return await handler.handle(request)

        self.asgi = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])

    def wait(self, timeout: float = 5.0) -> None:
        assert self.done.wait(timeout), "the bot did not finish in time"
        self.done.clear()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def bolt(url: str, emu: SlackEmulator) -> Iterator[tuple[BoltBot, SlackDriver]]:
    bot = BoltBot(url)
    with (
        ServerThread(bot.asgi) as thread,
        SlackDriver(
            bot_url=thread.url + "/slack/events",
            signing_secret=SECRET,
            emulator=emu,
            emulator_url=url,
        ) as driver,
    ):
        yield bot, driver


def test_bolt_app_end_to_end(bolt: tuple[BoltBot, SlackDriver], emu: SlackEmulator) -> None:
    bot, driver = bolt
    # Slash command -> ack text, then respond() through the emulator's response_url.
    delivery = driver.slash_command("status", user="U0ALICE")
    assert delivery.status_code == 200
    assert delivery.text == "Working on it"
    bot.wait()
    wait_for(lambda: bool(emu.ephemerals("C0OPS", "U0ALICE")))
    assert emu.ephemerals("C0OPS", "U0ALICE")[0]["text"] == "got status"
    assert emu.calls("auth.test")  # Bolt authorised against the emulator

    # Slash command -> views.open with the minted trigger; submit empty -> errors; then ok.
    driver.slash_command("modal", user="U0ALICE")
    bot.wait()
    assert emu.latest_view("U0ALICE") is not None
    invalid = driver.view_submission(None, {"reason": {"reason_input": ""}}, user="U0ALICE")
    assert invalid.data == {"response_action": "errors", "errors": {"reason": "Say why"}}
    view_id = emu.latest_view("U0ALICE")["id"]  # type: ignore[index]
    assert emu.view_is_open(view_id)
    ok = driver.view_submission(view_id, {"reason": {"reason_input": "deploy"}}, user="U0ALICE")
    assert ok.status_code == 200
    assert ok.data is None
    assert not emu.view_is_open(view_id)

    # Button on a bot message -> chat.update of that message.
    button = {
        "type": "button",
        "action_id": "approve",
        "value": "r1",
        "text": {"type": "plain_text", "text": "Approve"},
    }
    posted = httpx.post(
        driver.emulator_url + "/api/chat.postMessage",
        json={
            "channel": "C0OPS",
            "text": "Approve?",
            "blocks": [{"type": "actions", "elements": [button]}],
        },
        headers={"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"},
    ).json()
    driver.block_action(action_id="approve", user="U0BOB", channel="C0OPS", message_ts=posted["ts"])
    bot.wait()
    assert emu.message("C0OPS", posted["ts"])["text"] == "Approved"

    # Reaction event -> threaded reply; bad signature -> 401 and nothing happens.
    driver.reaction_added("U0BOB", "white_check_mark", "C0OPS", posted["ts"])
    bot.wait()
    assert [m["text"] for m in emu.thread("C0OPS", posted["ts"])] == ["Approved", "noted"]
    rejected = driver.slash_command("status", signing_secret_override="wrong")
    assert rejected.status_code == 401
    stale = driver.slash_command("status", timestamp_offset=-600)
    assert stale.status_code == 401
    challenge = driver.url_verification("abc")
    assert challenge.json() == {"challenge": "abc"}
    assert [kind for kind, _ in bot.seen] == [
        "command",
        "command",
        "view",
        "view",
        "action",
        "reaction",
    ]


def test_trigger_expired_before_bot_opens_modal(
    bolt: tuple[BoltBot, SlackDriver], emu: SlackEmulator
) -> None:
    bot, driver = bolt
    emu.settings.trigger_ttl_s = 0.000001
    emu.clock.unfreeze()  # real time passes between minting and views.open
    delivery = driver.slash_command("modal", user="U0ALICE")
    assert delivery.status_code == 200
    bot.wait()
    assert bot.errors == ["expired_trigger_id"]
    assert emu.calls("views.open")[0].error == "expired_trigger_id"
    assert emu.views("U0ALICE") == []


def test_untouched_inputs_submit_their_initial_values(emu: SlackEmulator) -> None:
    from sandbox.slack.driver import SlackDriver

    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "env",
                "label": {"type": "plain_text", "text": "Environment"},
                "element": {
                    "type": "static_select",
                    "action_id": "pick",
                    "options": [
                        {"text": {"type": "plain_text", "text": "a"}, "value": "a"},
                        {"text": {"type": "plain_text", "text": "b"}, "value": "b"},
                    ],
                    "initial_option": {"text": {"type": "plain_text", "text": "b"}, "value": "b"},
                },
            },
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "initial_value": "fix",
                },
            },
            {
                "type": "input",
                "block_id": "when",
                "label": {"type": "plain_text", "text": "End"},
                "element": {"type": "datetimepicker", "action_id": "at"},
            },
        ]
    }
    state = SlackDriver._state_values.__get__(object.__new__(SlackDriver))(view, {})
    assert state["env"]["pick"]["selected_option"]["value"] == "b"
    assert state["reason"]["text"]["value"] == "fix"
    assert state["when"]["at"]["selected_date_time"] is None
    changed = SlackDriver._state_values.__get__(object.__new__(SlackDriver))(
        view, {"reason": {"text": "other"}}
    )
    assert changed["reason"]["text"]["value"] == "other"


def test_the_sandbox_runs_slack_at_its_limits() -> None:
    with running_sandbox(slack_port=0) as urls:
        assert urls.slack is not None
        settings = httpx.get(urls.slack + "/_sandbox/settings", timeout=5).json()
    assert settings["rate_limits_enabled"] is True
    assert settings["tier3_per_min"] == 50
