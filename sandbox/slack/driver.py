"""Act as Slack towards the bot's HTTP endpoint: signed slash commands, interactions, events.

Payloads follow Slack's shapes (reference §2.4, §2.8, §2.11; Bolt's fixtures): slash
commands are form-encoded, interactions are ``payload=<url-encoded JSON>``, events are a JSON
``event_callback`` envelope. Every request is signed with the v0 scheme
(``v0=hex(HMAC_SHA256(secret, "v0:{ts}:{body}"))``). trigger_ids and response_urls are
minted on the :class:`~sandbox.slack.SlackEmulator`, so the bot's ``views.open`` and
``respond()`` calls meet Slack's rules (3-second single-use triggers, 5 uses / 30 minutes).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from sandbox.clock import Clock
from sandbox.slack.blockkit import all_options, find_element
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.model import SANDBOX_TEAM_DOMAIN, SANDBOX_VERIFICATION_TOKEN

_STATE_KEYS = {
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
#: Where an element keeps its initial value (sent back when the user leaves it alone).
_INITIAL_KEYS = {
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
    "users_select": "initial_user",
    "conversations_select": "initial_conversation",
    "channels_select": "initial_channel",
    "multi_users_select": "initial_users",
    "multi_conversations_select": "initial_conversations",
    "multi_channels_select": "initial_channels",
}
_SELECTS = {"static_select", "external_select", "radio_buttons"}
_MULTI_SELECTS = {"multi_static_select", "multi_external_select", "checkboxes"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of ``body`` sent at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One request the driver sent and what the bot answered."""

    response: httpx.Response
    elapsed_s: float
    body: bytes
    headers: dict[str, str]
    payload: dict[str, Any] | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def data(self) -> dict[str, Any] | None:
        """The answer as JSON (e.g. ``response_action: errors``); None if empty or not JSON."""
        if not self.response.content:
            return None
        try:
            parsed = json.loads(self.response.content)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def json(self) -> Any:
        return self.response.json()


class SlackDriver:
    """Sends Slack-shaped, signed requests to ``bot_url`` (the bot's ``/slack/events``)."""

    def __init__(
        self,
        *,
        bot_url: str,
        signing_secret: str,
        emulator: SlackEmulator,
        emulator_url: str,
        team_id: str = "T0SANDBOX",
        enterprise_id: str | None = None,
        http: httpx.Client | None = None,
        clock: Clock | Callable[[], float] | None = None,
        verification_token: str = SANDBOX_VERIFICATION_TOKEN,
        team_domain: str = SANDBOX_TEAM_DOMAIN,
        timeout_s: float = 10.0,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.emulator = emulator
        self.emulator_url = emulator_url.rstrip("/")
        self.team_id = team_id
        self.enterprise_id = enterprise_id
        self.team_domain = team_domain
        self.verification_token = verification_token
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=timeout_s)
        self._clock = clock
        self._envelopes: dict[str, dict[str, Any]] = {}

    def as_team(self, team_id: str, enterprise_id: str | None = None) -> SlackDriver:
        """The same driver speaking for another workspace (and Enterprise Grid org)."""
        other = copy.copy(self)
        other.team_id = team_id
        other.enterprise_id = enterprise_id
        other._own_http = False
        return other

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================ signing / sending
    def now(self) -> float:
        """Signing time: wall clock unless a clock was given (the bot verifies against it)."""
        if self._clock is None:
            return time.time()
        if isinstance(self._clock, Clock):
            return self._clock.now().timestamp()
        return self._clock()

    def signed_headers(
        self,
        body: bytes,
        *,
        content_type: str,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> dict[str, str]:
        timestamp = str(int(self.now() + timestamp_offset))
        secret = self.signing_secret if signing_secret_override is None else signing_secret_override
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    def raw(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        sign_request: bool = True,
        content_type: str = "application/json",
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        """POST ``body`` as is; signed unless ``sign_request=False``; ``headers`` win."""
        sent: dict[str, str] = {"Content-Type": content_type}
        if sign_request:
            sent = self.signed_headers(
                body,
                content_type=content_type,
                signing_secret_override=signing_secret_override,
                timestamp_offset=timestamp_offset,
            )
        sent.update(headers or {})
        started = time.perf_counter()
        response = self.http.post(self.bot_url, content=body, headers=sent)
        return Delivery(response, time.perf_counter() - started, body, sent)

    def _send_form(
        self,
        fields: Mapping[str, str],
        *,
        signing_secret_override: str | None,
        timestamp_offset: float,
        headers: Mapping[str, str] | None = None,
    ) -> Delivery:
        body = urlencode(list(fields.items())).encode()
        return self.raw(
            body,
            headers,
            content_type="application/x-www-form-urlencoded",
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )

    def _send_payload(
        self,
        payload: dict[str, Any],
        *,
        signing_secret_override: str | None,
        timestamp_offset: float,
    ) -> Delivery:
        delivery = self._send_form(
            {"payload": json.dumps(payload, separators=(",", ":"))},
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )
        delivery.payload = payload
        delivery.trigger_id = payload.get("trigger_id")
        delivery.response_url = payload.get("response_url")
        return delivery

    # ================================================================ shared pieces
    def _user(self, user_id: str) -> dict[str, Any]:
        known = self.emulator.user(user_id)
        name = known.name if known else user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict[str, Any]:
        team: dict[str, Any] = {"id": self.team_id, "domain": self.team_domain}
        if self.enterprise_id is not None:
            team["enterprise_id"] = self.enterprise_id
        return team

    def _enterprise(self) -> dict[str, Any] | None:
        if self.enterprise_id is None:
            return None
        return {"id": self.enterprise_id, "name": self.enterprise_id.lower()}

    def _channel(self, channel: str) -> tuple[str, str]:
        found = self.emulator.channel(channel)
        if found is None:
            return channel, channel.lower()
        return found.id, "directmessage" if found.is_im else found.name

    def _action_ts(self) -> str:
        return f"{self.now():.6f}"

    def _view_record(self, view: Mapping[str, Any] | str | None, user: str) -> dict[str, Any]:
        if isinstance(view, str):
            return self.emulator.view(view)
        if isinstance(view, Mapping) and view.get("id"):
            return self.emulator.view(str(view["id"]))
        if isinstance(view, Mapping):
            return dict(view)
        latest = self.emulator.latest_view(user)
        if latest is None:
            raise LookupError(f"no open modal for {user}")
        return latest

    # ================================================================ slash commands
    def slash_command(
        self,
        text: str,
        *,
        user: str = "U0ALICE",
        channel: str = "C0OPS",
        command: str = "/automation",
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        channel_id, channel_name = self._channel(channel)
        trigger_id = self.emulator.mint_trigger(user, source="slash_command")
        response_url = self.emulator.mint_response_url(
            self.emulator_url, channel=channel_id, user=user, source="slash_command"
        )
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": self._user(user)["name"],
            "command": command,
            "text": text,
            "api_app_id": self.emulator.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        if self.enterprise_id is not None:
            fields["enterprise_id"] = self.enterprise_id
            fields["enterprise_name"] = self.enterprise_id.lower()
        delivery = self._send_form(
            fields,
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )
        delivery.payload = fields
        delivery.trigger_id = trigger_id
        delivery.response_url = response_url
        return delivery

    # ================================================================ interactivity
    def block_action(
        self,
        *,
        action_id: str,
        user: str,
        value: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        view: Mapping[str, Any] | str | None = None,
        block_id: str | None = None,
        selected_option: Mapping[str, Any] | None = None,
        state_values: Mapping[str, Any] | None = None,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        """A click on ``action_id`` in a stored message (``channel``+``message_ts``) or view.

        The element is looked up in the stored blocks, so its ``block_id``, ``type`` and (for
        buttons) ``value`` come from what the bot really posted; a missing element is a
        ``LookupError``. Without a message or view the action is sent as given.
        """
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": self.emulator.app_id,
            "token": self.verification_token,
            "trigger_id": self.emulator.mint_trigger(user, source="block_actions"),
            "team": self._team(),
            "enterprise": self._enterprise(),
            "is_enterprise_install": False,
        }
        blocks: Any = None
        if view is not None:
            stored = self._view_record(view, user)
            if state_values is not None:
                stored["state"] = {"values": copy.deepcopy(dict(state_values))}
            payload["container"] = {"type": "view", "view_id": stored.get("id")}
            payload["view"] = stored
            blocks = stored.get("blocks")
        elif channel is not None:
            channel_id, channel_name = self._channel(channel)
            payload["channel"] = {"id": channel_id, "name": channel_name}
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": message_ts is None,
            }
            if message_ts is not None:
                message = self.emulator.message(channel_id, message_ts)
                payload["message"] = message
                blocks = message.get("blocks")
                if message.get("thread_ts"):
                    payload["container"]["thread_ts"] = message["thread_ts"]
            payload["state"] = {"values": copy.deepcopy(dict(state_values or {}))}
            payload["response_url"] = self.emulator.mint_response_url(
                self.emulator_url,
                channel=channel_id,
                user=user,
                message_ts=message_ts,
                source="block_actions",
            )
        action: dict[str, Any] = {"action_id": action_id, "action_ts": self._action_ts()}
        element: dict[str, Any] = {}
        if blocks is not None:
            found = find_element(blocks, action_id, block_id)
            if found is None:
                raise LookupError(f"no element with action_id={action_id!r} in the blocks")
            block_id, element = found
        action["block_id"] = block_id or ""
        kind = str(element.get("type") or ("static_select" if selected_option else "button"))
        action["type"] = kind
        if "text" in element:
            action["text"] = element["text"]
        if kind in _SELECTS or kind == "overflow" or selected_option is not None:
            option = dict(selected_option) if selected_option is not None else None
            if option is None and value is not None:
                option = next((o for o in all_options(element) if o.get("value") == value), None)
                if option is None:
                    option = {"text": {"type": "plain_text", "text": value}, "value": value}
            action["selected_option"] = option
            if kind != "overflow":
                action["placeholder"] = element.get("placeholder")
        else:
            action["value"] = value if value is not None else element.get("value")
        if element.get("style"):
            action["style"] = element["style"]
        payload["actions"] = [action]
        return self._send_payload(
            payload,
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )

    def state_values_for(
        self, view: Mapping[str, Any], values: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """``view.state.values`` for ``values`` (same forms as :meth:`view_submission`), for
        a ``block_action`` sent from a modal whose inputs the user already filled."""
        return self._state_values(view, values)

    def _state_values(
        self, view: Mapping[str, Any], values: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """``view.state.values``: every input block, filled from ``values``.

        ``values[block_id][action_id]`` may be a full state dict (used as is, ``type`` added)
        or a plain value: a string (text input, date, user, or an option value for selects)
        or a list (multi-selects, checkboxes).
        """
        state: dict[str, dict[str, Any]] = {}
        elements: dict[tuple[str, str], dict[str, Any]] = {}
        for block in view.get("blocks") or []:
            if isinstance(block, dict) and block.get("type") == "input":
                el = block.get("element") or {}
                key = (str(block.get("block_id")), str(el.get("action_id")))
                elements[key] = el
                state.setdefault(key[0], {})[key[1]] = self._empty_state(el)
        for bid, actions in values.items():
            if not isinstance(actions, Mapping):
                raise TypeError(f"values[{bid!r}] must map action_id -> value")
            for aid, given in actions.items():
                el = elements.get((bid, aid), {})
                state.setdefault(bid, {})[aid] = self._state_for(el, given)
        return state

    @staticmethod
    def _empty_state(el: Mapping[str, Any]) -> dict[str, Any]:
        """What Slack sends for an input the user did not touch: its initial value."""
        kind = str(el.get("type", "plain_text_input"))
        if kind in _SELECTS:
            initial = el.get("initial_option")
            return {"type": kind, "selected_option": dict(initial) if initial else None}
        if kind in _MULTI_SELECTS:
            return {"type": kind, "selected_options": list(el.get("initial_options") or [])}
        key = _STATE_KEYS.get(kind, "value")
        if kind.startswith("multi"):
            return {"type": kind, key: list(el.get(_INITIAL_KEYS.get(kind, "initial_value")) or [])}
        return {"type": kind, key: el.get(_INITIAL_KEYS.get(kind, "initial_value"))}

    @staticmethod
    def _state_for(el: Mapping[str, Any], given: Any) -> dict[str, Any]:
        kind = str(el.get("type", "plain_text_input"))
        if isinstance(given, Mapping):
            return {"type": kind, **given}
        options = {o.get("value"): o for o in all_options(dict(el))}

        def option(v: Any) -> dict[str, Any]:
            found = options.get(v)
            return (
                dict(found)
                if found
                else {"text": {"type": "plain_text", "text": str(v)}, "value": v}
            )

        if kind in _SELECTS:
            return {"type": kind, "selected_option": None if given is None else option(given)}
        if kind in _MULTI_SELECTS:
            return {"type": kind, "selected_options": [option(v) for v in given or []]}
        return {"type": kind, _STATE_KEYS.get(kind, "value"): given}

    def view_submission(
        self,
        view: Mapping[str, Any] | str | None,
        values: Mapping[str, Any],
        *,
        user: str,
        view_overrides: Mapping[str, Any] | None = None,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        """Submit a modal: ``view`` is the opened view (dict with ``id``), a view id, or None
        for the user's latest open modal. ``Delivery.data`` is the bot's ack body (e.g.
        ``{"response_action": "errors", ...}``); the emulator then closes/updates the modal.
        ``view_overrides`` replaces keys of the submitted view (a tampered
        ``private_metadata``, say).
        """
        stored = self._view_record(view, user)
        state = self._state_values(stored, values)
        submitted = copy.deepcopy(stored)
        submitted["state"] = {"values": state}
        submitted.update(view_overrides or {})
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user),
            "api_app_id": self.emulator.app_id,
            "token": self.verification_token,
            "trigger_id": self.emulator.mint_trigger(user, source="view_submission"),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        delivery = self._send_payload(
            payload,
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )
        view_id = submitted.get("id")
        if view_id and delivery.status_code == 200:
            self.emulator.apply_view_response(str(view_id), delivery.data, values=state)
        return delivery

    def view_closed(self, view: Mapping[str, Any] | str | None, *, user: str) -> Delivery:
        """The user pressed Cancel (sent only when the view has ``notify_on_close``)."""
        stored = self._view_record(view, user)
        payload = {
            "type": "view_closed",
            "team": self._team(),
            "user": self._user(user),
            "api_app_id": self.emulator.app_id,
            "token": self.verification_token,
            "view": stored,
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        self.emulator.close_view(str(stored.get("id")))
        return self._send_payload(payload, signing_secret_override=None, timestamp_offset=0)

    def block_suggestion(
        self,
        *,
        action_id: str,
        value: str,
        user: str,
        view: Mapping[str, Any] | str | None = None,
        block_id: str | None = None,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        """An external_select options request; ``Delivery.data`` holds the options."""
        stored = self._view_record(view, user)
        if block_id is None:
            found = find_element(stored.get("blocks"), action_id)
            if found is None:
                raise LookupError(f"no element with action_id={action_id!r} in the view")
            block_id = found[0]
        payload = {
            "type": "block_suggestion",
            "user": self._user(user),
            "container": {"type": "view", "view_id": stored.get("id")},
            "api_app_id": self.emulator.app_id,
            "token": self.verification_token,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "team": self._team(),
            "enterprise": self._enterprise(),
            "is_enterprise_install": False,
            "view": stored,
        }
        return self._send_payload(
            payload,
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )

    # ================================================================ Events API
    def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        """Deliver ``event`` in an ``event_callback`` envelope.

        A known ``event_id`` re-sends the same envelope (a retry); ``retry_num`` adds
        ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` (default ``http_timeout``).
        """
        if event_id is not None and event_id in self._envelopes:
            envelope = self._envelopes[event_id]
        else:
            event_id = event_id or "Ev" + secrets.token_hex(5).upper()
            inner = dict(event)
            inner.setdefault("event_ts", self._action_ts())
            envelope = {
                "token": self.verification_token,
                "team_id": self.team_id,
                "context_team_id": self.team_id,
                "enterprise_id": self.enterprise_id,
                "context_enterprise_id": self.enterprise_id,
                "api_app_id": self.emulator.app_id,
                "event": inner,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(self.now()),
                "authorizations": [
                    {
                        "enterprise_id": self.enterprise_id,
                        "team_id": self.team_id,
                        "user_id": self.emulator.bot_user_id,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
                "event_context": "4-" + secrets.token_hex(16),
            }
            self._envelopes[event_id] = envelope
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        body = json.dumps(envelope, separators=(",", ":")).encode()
        delivery = self.raw(
            body,
            headers,
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )
        delivery.payload = envelope
        return delivery

    def _reaction_event(
        self, kind: str, user: str, reaction: str, channel: str, ts: str
    ) -> dict[str, Any]:
        channel_id, _ = self._channel(channel)
        event: dict[str, Any] = {
            "type": kind,
            "user": user,
            "reaction": reaction,
            "item": {"type": "message", "channel": channel_id, "ts": ts},
            "event_ts": self._action_ts(),
        }
        try:
            author = self.emulator.message(channel_id, ts).get("user")
        except KeyError:
            author = None
        if author:
            event["item_user"] = author
        return event

    def reaction_added(
        self, user: str, reaction: str, channel: str, ts: str, **kwargs: Any
    ) -> Delivery:
        """``user`` reacts with ``reaction`` (no colons); recorded on the emulator's message."""
        event = self._reaction_event("reaction_added", user, reaction, channel, ts)
        with contextlib.suppress(KeyError):
            self.emulator.add_reaction(event["item"]["channel"], ts, reaction, user)
        return self.event(event, **kwargs)

    def reaction_removed(
        self, user: str, reaction: str, channel: str, ts: str, **kwargs: Any
    ) -> Delivery:
        event = self._reaction_event("reaction_removed", user, reaction, channel, ts)
        with contextlib.suppress(KeyError):
            self.emulator.remove_reaction(event["item"]["channel"], ts, reaction, user)
        return self.event(event, **kwargs)

    def app_home_opened(self, user: str, *, tab: str = "home", **kwargs: Any) -> Delivery:
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": tab,
            "event_ts": self._action_ts(),
        }
        home = self.emulator.home(user)
        if home is not None:
            event["view"] = home
        return self.event(event, **kwargs)

    def url_verification(
        self,
        challenge: str,
        *,
        signing_secret_override: str | None = None,
        timestamp_offset: float = 0,
    ) -> Delivery:
        payload = {
            "token": self.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        delivery = self.raw(
            json.dumps(payload).encode(),
            signing_secret_override=signing_secret_override,
            timestamp_offset=timestamp_offset,
        )
        delivery.payload = payload
        return delivery
