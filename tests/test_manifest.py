"""``manifest.yml`` declares exactly what the app registers and the scopes the code needs.

Three sources are compared:

* the Bolt listeners of the real app (``bot.serve.build_bot``), read by probing each
  listener's own matchers with payloads whose key field records what it is compared with;
* the Web API methods called in ``bot/`` (found in the source with ``ast``), mapped to
  their scopes by the table below;
* the real endpoint: signed requests for the declared command and events are handled, and
  event types the manifest does not subscribe to find no listener.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener_matcher import builtins as bolt_matchers
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings, config_from_mapping
from bot.defaults import sandbox_config
from bot.domain.models import Verb
from bot.metrics import Metrics
from bot.serve import SLACK_EVENTS_PATH, build_bot
from bot.slack.ids import ALL_ID_ENUMS, SLASH_COMMAND
from bot.slack.inbound import SUBSCRIBED_EVENTS
from bot.store import upgrade
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator
from sandbox.slack import SlackSettings as EmulatorSettings
from tests.conftest import Sandbox
from tests.db import isolated_database
from tests.scenarios.conftest import BotUnderTest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "manifest.yml"
BOT_SOURCES = ROOT / "bot"

#: Web API method -> the bot scopes it needs (https://docs.slack.dev/reference/methods/…).
#: ``chat.postMessage`` also needs ``chat:write.public``: cards go to the channel the command
#: came from (or the environment's notify_channel), which the bot need not have joined.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "apps.connections.open": (),  # app-level token (connections:write), not a bot scope
    "auth.test": (),
    "chat.getPermalink": (),
    "chat.postMessage": ("chat:write", "chat:write.public"),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "views.open": (),
    "views.update": (),
    "views.publish": (),
    "reactions.get": ("reactions:read",),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
    # the outbox: did a message reach Slack before a crash? (public and private channels)
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.history": ("channels:history", "groups:history"),
}

#: Bot event -> the scopes its subscription needs.
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_home_opened": (),
    "reaction_added": ("reactions:read",),
    "reaction_removed": ("reactions:read",),
}

#: Declared ahead of the code that uses them. Remove each entry when the code gets it (a
#: test says when).
PLANNED_EVENTS: frozenset[str] = frozenset()
PLANNED_METHODS = frozenset({"reactions.get", "users.info"})

REQUIRED_TOP_LEVEL = ("display_information", "features", "oauth_config", "settings")

#: Event types a listener could plausibly be added for by mistake (not subscribed).
UNSUBSCRIBED_EVENTS = ("app_mention", "message", "member_joined_channel", "app_uninstalled")


def load_manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_manifest()


# -- what the app registers ----------------------------------------------------------------


_BOLT_MATCHES = bolt_matchers._matches.__code__


class _Probe(str):
    """A payload value that records the constraint a Bolt listener matcher compares it with.

    Bolt's builtin matchers call ``_matches(constraint, body_value)``, which compares
    ``body_value == constraint``; the probe answers False (so no listener runs) and keeps
    ``constraint``. Comparisons made elsewhere (Bolt's kwargs building peeks at payloads
    too) are not matchers and are ignored.
    """

    seen: list[str]

    def __new__(cls, label: str) -> _Probe:
        probe = super().__new__(cls, f"<probe:{label}>")
        probe.seen = []
        return probe

    def __eq__(self, other: object) -> bool:
        caller = sys._getframe(1).f_code
        if isinstance(other, str) and caller is _BOLT_MATCHES:
            self.seen.append(str.__str__(other))
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


def _probe_bodies(probe: _Probe) -> dict[str, dict[str, Any]]:
    """One payload per kind of request a manifest can route to the app."""
    return {
        "command": {"command": probe},
        "event": {"type": "event_callback", "event": {"type": probe}},
        "block_actions": {
            "type": "block_actions",
            "actions": [{"action_id": probe, "block_id": "probe-block"}],
        },
        "options": {"type": "block_suggestion", "action_id": probe},
        "view_submission": {
            "type": "view_submission",
            "view": {"type": "modal", "callback_id": probe},
        },
        "view_closed": {"type": "view_closed", "view": {"type": "modal", "callback_id": probe}},
        "shortcut": {"type": "shortcut", "callback_id": probe},
        "message_action": {"type": "message_action", "callback_id": probe},
    }


@dataclass
class Registered:
    """What the app's listeners match, by kind (``command``, ``event``, ...)."""

    by_kind: dict[str, set[str]] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> set[str]:
        return self.by_kind.get(kind, set())


async def registered_listeners(app: AsyncApp) -> Registered:
    listeners = app._async_listeners
    assert listeners, "the app registers no listener"
    registered = Registered()
    for listener in listeners:
        matched: dict[str, list[str]] = {}
        for kind in _probe_bodies(_Probe("x")):
            probe = _Probe(kind)
            body = _probe_bodies(probe)[kind]
            request = AsyncBoltRequest(body=body, mode="socket_mode")
            assert not await listener.async_matches(req=request, resp=BoltResponse(status=200))
            if probe.seen:
                matched[kind] = probe.seen
        pairs = [(kind, value) for kind, values in matched.items() for value in values]
        assert len(pairs) == 1, (
            f"listener {listener.ack_function.__name__} is not one plain string constraint "
            f"of one kind ({matched}); extend this test's probes"
        )
        ((kind, value),) = pairs
        registered.by_kind.setdefault(kind, set()).add(value)
    return registered


@pytest.fixture
async def registered(tmp_path: Path) -> AsyncIterator[Registered]:
    """The listeners of the real app, built like ``automation-bot serve`` builds it."""
    slack = SlackEmulator(settings=EmulatorSettings(rate_limits_enabled=False))
    with ServerThread(slack.app) as slack_server:
        database_url = f"sqlite:///{tmp_path / 'manifest.db'}"
        upgrade(database_url)
        unused = "http://127.0.0.1:9"  # providers are never called: nothing is dispatched
        config = config_from_mapping(
            sandbox_config(sfmc_url=unused, scrip_url=unused, database_url=database_url),
            source="manifest test",
        )
        settings = SlackSettings(
            slack_bot_token=SecretStr(slack.bot_token),
            slack_signing_secret=SecretStr("manifest-test-secret"),
            slack_api_url=slack_server.url + "/api/",
        )
        bot = await build_bot(config, settings, metrics=Metrics())
        try:
            yield await registered_listeners(bot.slack_app)
        finally:
            await bot.runtime.aclose()


# -- the shape of the file -------------------------------------------------------------------


def test_manifest_parses_and_has_the_required_keys(manifest: dict[str, Any]) -> None:
    for key in REQUIRED_TOP_LEVEL:
        assert isinstance(manifest.get(key), dict), f"manifest.yml lacks {key}"
    display = manifest["display_information"]
    assert display["name"] == "Automation Bot"
    assert 0 < len(display["description"]) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", display["background_color"])
    assert manifest["features"]["bot_user"]["display_name"] == "automation-bot"
    settings = manifest["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_every_url_is_the_bots_one_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [c["url"] for c in manifest["features"]["slash_commands"]] + [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        settings["interactivity"]["message_menu_options_url"],
    ]
    assert len(set(urls)) == 1, urls
    assert urls[0].startswith("https://")
    assert urls[0].endswith(SLACK_EVENTS_PATH)


def test_the_slash_command_is_the_one_the_bot_handles(
    manifest: dict[str, Any], registered: Registered
) -> None:
    commands = manifest["features"]["slash_commands"]
    declared = {c["command"] for c in commands}
    assert declared == {SLASH_COMMAND} == registered["command"]
    (command,) = commands
    assert command["should_escape"] is False  # the grammar reads raw names, not <@U…> links
    assert command["description"]
    for verb in Verb:
        assert verb.value in command["usage_hint"], f"usage_hint lacks {verb.value}"


def test_bot_events_are_exactly_the_handled_ones(
    manifest: dict[str, Any], registered: Registered
) -> None:
    declared = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    handled = registered["event"]
    assert handled <= declared, f"listeners without a subscription: {handled - declared}"
    now_handled = handled & PLANNED_EVENTS
    assert not now_handled, f"{now_handled} are handled now: drop them from PLANNED_EVENTS"
    assert declared - handled == PLANNED_EVENTS


def test_interactivity_matches_the_interactive_listeners(
    manifest: dict[str, Any], registered: Registered
) -> None:
    interactivity = manifest["settings"]["interactivity"]
    interactive = registered["block_actions"] | registered["view_submission"]
    assert interactive, "no block action or view listener: is interactivity still needed?"
    assert interactivity["is_enabled"] is True
    # external_select options are fetched from the "Select Menus" options load URL
    assert bool(registered["options"]) == bool(interactivity.get("message_menu_options_url"))
    # no shortcuts are declared, none are handled
    assert not manifest["features"].get("shortcuts")
    assert not registered["shortcut"]
    assert not registered["message_action"]
    known_ids = {member.value for enum in ALL_ID_ENUMS for member in enum}
    ids = interactive | registered["options"] | registered["view_closed"]
    assert ids <= known_ids, f"listeners on ids outside bot.slack.ids: {ids - known_ids}"


def test_home_tab_is_enabled_because_app_home_opened_is_handled(
    manifest: dict[str, Any], registered: Registered
) -> None:
    app_home = manifest["features"]["app_home"]
    assert "app_home_opened" in registered["event"]
    assert app_home["home_tab_enabled"] is True
    assert app_home["messages_tab_enabled"] is False  # no listener for message.im


# -- scopes ----------------------------------------------------------------------------------


def _api_method_names() -> dict[str, str]:
    """``AsyncWebClient`` attribute -> Web API method (``chat_postMessage`` ->
    ``chat.postMessage``), read from the ``api_call`` in each method's source."""
    names: dict[str, str] = {}
    for attr, func in vars(AsyncWebClient).items():
        if attr.startswith("_") or not inspect.iscoroutinefunction(func):
            continue
        found = re.search(r'api_call\(\s*"([^"]+)"', inspect.getsource(func))
        if found:
            names[attr] = found.group(1)
    return names


def web_api_methods_called(root: Path = BOT_SOURCES) -> dict[str, set[str]]:
    """Web API method -> the files under ``root`` that call it on a Slack client."""
    api = _api_method_names()
    called: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            receiver = ast.unparse(node.func.value)
            if name == "api_call" and receiver.endswith("client"):
                pytest.fail(f"{path}: generic api_call(); call the typed client method")
            if name in api and receiver.endswith("client"):
                called.setdefault(api[name], set()).add(str(path.relative_to(ROOT)))
    return called


def test_the_source_scan_finds_the_known_calls() -> None:
    called = web_api_methods_called()
    for method in ("chat.postMessage", "chat.update", "views.open", "views.publish", "auth.test"):
        assert method in called, f"the scan no longer sees {method}: fix the scan"


def test_scopes_are_exactly_what_the_code_needs(manifest: dict[str, Any]) -> None:
    called = web_api_methods_called()
    unknown = set(called) - set(METHOD_SCOPES)
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {unknown}"
    now_called = set(called) & PLANNED_METHODS
    assert not now_called, f"{now_called} are called now: drop them from PLANNED_METHODS"

    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    needed = {"commands"} if manifest["features"].get("slash_commands") else set()
    for method in set(called) | PLANNED_METHODS:
        needed.update(METHOD_SCOPES[method])
    for event in events:
        needed.update(EVENT_SCOPES[event])

    declared = manifest["oauth_config"]["scopes"]["bot"]
    assert len(declared) == len(set(declared)), "a scope is listed twice"
    assert set(declared) == needed, (
        f"missing: {needed - set(declared)}; not needed: {set(declared) - needed}"
    )
    assert "user" not in manifest["oauth_config"]["scopes"]  # a bot token only


# -- the real endpoint -----------------------------------------------------------------------


@pytest.fixture
def bot(sandbox: Sandbox, tmp_path: Path) -> Iterator[BotUnderTest]:
    with isolated_database("sqlite", tmp_path) as url:
        under_test = BotUnderTest(sandbox, url)
        try:
            yield under_test
        finally:
            under_test.stop()


def test_declared_command_and_events_reach_a_listener(
    manifest: dict[str, Any], bot: BotUnderTest
) -> None:
    for command in manifest["features"]["slash_commands"]:
        delivery = bot.driver.slash_command("help", command=command["command"])
        assert delivery.status_code == 200, delivery.text
        assert "pause" in delivery.text
    for event_type in manifest["settings"]["event_subscriptions"]["bot_events"]:
        if event_type in PLANNED_EVENTS:
            continue
        delivery = bot.driver.event(_realistic_event(event_type))
        assert delivery.status_code == 200, (event_type, delivery.text)


def _realistic_event(event_type: str) -> dict[str, Any]:
    """An event of ``event_type`` with the fields Slack sends (the bot refuses other shapes)."""
    if event_type.startswith("reaction_"):
        return {
            "type": event_type,
            "user": "U0ALICE",
            "reaction": "eyes",
            "item": {"type": "message", "channel": "C0OPS", "ts": "1700000000.000100"},
            "item_user": "U0BOT",
        }
    return {"type": event_type, "user": "U0ALICE", "tab": "home", "channel": "D0HOME"}


def test_undeclared_requests_find_no_listener(manifest: dict[str, Any], bot: BotUnderTest) -> None:
    """The request gate dispatches exactly the manifest's events; any other event is
    acknowledged (a non-2xx would make Slack retry it and, in time, disable the
    subscription) and reaches no listener, so it changes nothing."""
    declared = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert set(SUBSCRIBED_EVENTS) == declared - PLANNED_EVENTS
    before = len(bot.slack.calls())
    for event_type in UNSUBSCRIBED_EVENTS:
        assert event_type not in declared
        delivery = bot.driver.event(
            {"type": event_type, "user": "U0ALICE", "channel": "C0OPS", "text": "hi"}
        )
        assert delivery.status_code == 200, (event_type, delivery.text)
    assert len(bot.slack.calls()) == before  # nothing answered, posted or published
    other = bot.driver.slash_command("help", command="/automation-other")
    assert other.status_code == 404
