"""A local emulator of the Slack Web API plus the ``response_url`` receiver (reference §2).

Run ``SlackEmulator().app`` under :class:`sandbox.server.ServerThread` and point the bot's
``AsyncWebClient(base_url=f"{url}/api/")`` at it. Routes:

* ``GET|POST /api/<method>`` — the Web API (form, JSON or query arguments; token in
  ``Authorization: Bearer`` or a ``token`` argument). Answers ``{"ok": true, ...}`` or
  ``{"ok": false, "error": ...}`` like Slack, 429 + ``Retry-After`` when throttled.
  ``apps.connections.open`` (the start of the Socket Mode handshake) takes only an
  app-level token (``xapp-``): it answers a ``ws://`` URL on this server, which is not
  served (the emulator has no WebSocket server), so a Socket Mode client is refused at the
  WebSocket step and keeps retrying. Any other method refuses an app-level token
  (``not_allowed_token_type``), as Slack does.
* ``POST /response/<id>`` — response_urls minted by :class:`sandbox.slack.SlackDriver`
  (5 uses within 30 minutes, then 404 ``used_url`` / ``expired_url``).
* ``/_sandbox/...`` — the control API (calls, messages, knobs, settings, clock, reset); no
  token, never throttled, not recorded.

Each Web API call goes through: latency knob; forced 429s (per method, or the shared
``rate_limit_next`` knob); 5xx and malformed-body knobs; token check; argument parsing;
the method's tier budget and, for ``chat.postMessage``, its per-channel bucket (both off
with ``rate_limits_enabled=False``; tiers in :mod:`sandbox.slack.ratelimits`); the method;
recording.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.clock import Clock
from sandbox.knobs import Knobs, KnobSettings
from sandbox.scrip.ratelimit import TokenBucket
from sandbox.slack.blockkit import assign_ids, check_message_blocks, check_view
from sandbox.slack.model import (
    SANDBOX_APP_ID,
    SANDBOX_APP_TOKEN,
    SANDBOX_BOT_ID,
    SANDBOX_BOT_NAME,
    SANDBOX_BOT_TOKEN,
    SANDBOX_BOT_USER_ID,
    SANDBOX_TEAM_DOMAIN,
    SANDBOX_TEAM_ID,
    SANDBOX_TEAM_NAME,
    Channel,
    ResponsePost,
    ResponseUrl,
    SlackCall,
    SlackSettings,
    SlackUser,
    Trigger,
    Usergroup,
    ViewRecord,
    default_channels,
    default_usergroups,
    default_users,
)
from sandbox.slack.ratelimits import TierLimiter

MAX_MESSAGE_TEXT = 40_000
_JSON_ARGS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
    "view": "invalid_arguments",
}
_TRIGGER_RE = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
_CHANNEL_ID_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

Handler = Callable[[dict[str, Any], datetime], dict[str, Any]]


class SlackError(Exception):
    """An error answer: ``{"ok": false, "error": code, ...}``."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        messages: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.messages = list(messages or [])
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
            if self.error == "invalid_blocks":
                body["errors"] = list(self.messages)
        return body


def _missing(name: str) -> SlackError:
    return SlackError("invalid_arguments", messages=[f"[ERROR] missing required field: {name}"])


def _bool(value: Any) -> bool:
    return (
        value is True
        or (isinstance(value, str) and value.lower() in ("true", "1"))
        or (isinstance(value, int) and not isinstance(value, bool) and value == 1)
    )


def _str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class SlackEmulator:
    """One Slack workspace with one installed bot (see the module docstring).

    ``users`` / ``usergroups`` / ``channels`` replace the default directory (Alice, Bob,
    Carol, Dave, Admin; S0APPROVERS, S0OPERATORS, S0ADMINS; C0OPS, C0APPROVALS, ...);
    ``usergroups`` may be a plain ``{"S0...": ["U0...", ...]}`` map.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        knobs: Knobs | None = None,
        settings: SlackSettings | None = None,
        team_id: str = SANDBOX_TEAM_ID,
        enterprise_id: str | None = None,
        team_domain: str = SANDBOX_TEAM_DOMAIN,
        bot_token: str = SANDBOX_BOT_TOKEN,
        app_token: str = SANDBOX_APP_TOKEN,
        bot_user_id: str = SANDBOX_BOT_USER_ID,
        bot_id: str = SANDBOX_BOT_ID,
        app_id: str = SANDBOX_APP_ID,
        users: Iterable[SlackUser] | None = None,
        usergroups: Mapping[str, Sequence[str]] | Iterable[Usergroup] | None = None,
        channels: Iterable[Channel] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.knobs = knobs or Knobs()
        self.settings = settings or SlackSettings()
        self._initial_settings = self.settings.model_copy()
        self.team_id = team_id
        self.enterprise_id = enterprise_id
        self.team_domain = team_domain
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self._lock = threading.RLock()
        self._seed_users = list(users) if users is not None else default_users()
        if usergroups is None:
            self._seed_groups = default_usergroups()
        elif isinstance(usergroups, Mapping):
            self._seed_groups = [
                Usergroup(gid, gid.lower(), list(members)) for gid, members in usergroups.items()
            ]
        else:
            self._seed_groups = list(usergroups)
        self._seed_channels = list(channels) if channels is not None else default_channels()
        self._tokens: set[str] = {bot_token}
        self._app_tokens: set[str] = {app_token}
        self._netloc = "127.0.0.1"  # host:port of the latest Web API call (for ws URLs)
        self._users: dict[str, SlackUser] = {}
        self._groups: dict[str, Usergroup] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}
        self._history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, ViewRecord] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._buckets: dict[str, TokenBucket] = {}
        self._tiers = TierLimiter()
        self._forced: dict[str, list[int]] = {}
        self._calls: list[SlackCall] = []
        self._last_ts = 0
        self._seq = 0
        self._load()
        self._methods: dict[str, Handler] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._get_permalink,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "reactions.get": self._reactions_get,
            "reactions.add": self._reactions_add,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
        }
        self.app = Starlette(
            routes=[
                Route("/_sandbox/{rest:path}", self._control, methods=_METHODS),
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{rid}", self._response, methods=["POST"]),
            ]
        )

    # ================================================================ directory
    def _load(self) -> None:
        self._users = {u.id: copy.deepcopy(u) for u in self._seed_users}
        self._groups = {g.id: copy.deepcopy(g) for g in self._seed_groups}
        self._channels = {c.id: copy.deepcopy(c) for c in self._seed_channels}

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str = "",
        tz: str = "UTC",
        email: str | None = None,
        is_admin: bool = False,
        is_bot: bool = False,
    ) -> SlackUser:
        user = SlackUser(user_id, name, real_name or name, tz, email, is_admin, is_bot)
        with self._lock:
            self._users[user_id] = user
        return user

    def set_usergroup(
        self, group_id: str, users: Sequence[str], *, handle: str | None = None, name: str = ""
    ) -> Usergroup:
        group = Usergroup(group_id, handle or group_id.lower(), list(users), name)
        with self._lock:
            self._groups[group_id] = group
        return group

    def remove_usergroup(self, group_id: str) -> None:
        with self._lock:
            self._groups.pop(group_id, None)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> Channel:
        channel = Channel(channel_id, name, is_private=is_private)
        with self._lock:
            self._channels[channel_id] = channel
        return channel

    def add_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)
            self._app_tokens.discard(token)

    def add_app_token(self, token: str) -> None:
        """Accept ``token`` as an app-level token (``apps.connections.open``)."""
        with self._lock:
            self._app_tokens.add(token)

    def user(self, user_id: str) -> SlackUser | None:
        with self._lock:
            return copy.deepcopy(self._users.get(user_id))

    def channel(self, channel: str) -> Channel | None:
        """The channel with this id (or ``#name``/name); DM ids for users are created."""
        with self._lock:
            found = self._resolve_channel(channel)
            return copy.deepcopy(found)

    def _resolve_channel(self, ref: str) -> Channel | None:
        if ref in self._channels:
            return self._channels[ref]
        name = ref.lstrip("#")
        for ch in self._channels.values():
            if ch.name == name and not ch.is_im:
                return ch
        if ref[:1] in ("U", "W") and ref in self._users:
            dm_id = "D" + ref[1:]
            dm = Channel(dm_id, dm_id, is_im=True, user=ref)
            self._channels[dm_id] = dm
            return dm
        if ref[:1] == "D":
            for ch in self._channels.values():
                if ch.id == ref:
                    return ch
            user_id = "U" + ref[1:]
            if user_id in self._users:
                dm = Channel(ref, ref, is_im=True, user=user_id)
                self._channels[ref] = dm
                return dm
            return None
        if self.settings.auto_create_channels and _CHANNEL_ID_RE.match(ref):
            ch = Channel(ref, ref.lower(), is_private=ref.startswith("G"))
            self._channels[ref] = ch
            return ch
        return None

    # ================================================================ minting (driver side)
    def mint_trigger(self, user: str, *, source: str = "") -> str:
        """A trigger_id for ``user``: valid ``trigger_ttl_s`` on this clock, single use."""
        now = self.clock.now()
        with self._lock:
            self._seq += 1
            trigger_id = f"{int(now.timestamp() * 1000)}.{self._seq}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = Trigger(trigger_id, user, now, source=source)
        return trigger_id

    def trigger(self, trigger_id: str) -> Trigger | None:
        with self._lock:
            return copy.deepcopy(self._triggers.get(trigger_id))

    def mint_response_url(
        self,
        base_url: str,
        *,
        channel: str,
        user: str,
        message_ts: str | None = None,
        source: str = "",
    ) -> str:
        """A response_url under ``base_url`` (the emulator's own URL)."""
        rid = secrets.token_hex(12)
        with self._lock:
            self._response_urls[rid] = ResponseUrl(
                rid, channel, user, self.clock.now(), message_ts, source
            )
        return f"{base_url.rstrip('/')}/response/{rid}"

    # ================================================================ queries (tests)
    @property
    def methods(self) -> list[str]:
        """The Web API methods this emulator serves."""
        return sorted(self._methods)

    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel (and broadcast replies), oldest first."""
        with self._lock:
            ch = self._resolve_channel(channel)
            store = self._messages.get(ch.id if ch else channel, {})
            return [
                copy.deepcopy(m)
                for ts, m in sorted(store.items())
                if m.get("thread_ts") in (None, ts) or m.get("subtype") == "thread_broadcast"
            ]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The parent message and its replies, oldest first (like conversations.replies)."""
        with self._lock:
            ch = self._resolve_channel(channel)
            store = self._messages.get(ch.id if ch else channel, {})
            parent = store.get(ts)
            if parent is None:
                raise KeyError(f"no message {ts} in {channel}")
            root = parent.get("thread_ts") or ts
            return [
                copy.deepcopy(m)
                for mts, m in sorted(store.items())
                if mts == root or m.get("thread_ts") == root
            ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """The latest version of a message (KeyError when missing or deleted)."""
        with self._lock:
            ch = self._resolve_channel(channel)
            msg = self._messages.get(ch.id if ch else channel, {}).get(ts)
            if msg is None:
                raise KeyError(f"no message {ts} in {channel}")
            return copy.deepcopy(msg)

    def message_versions(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Every version of a message, as posted and after each update."""
        with self._lock:
            ch = self._resolve_channel(channel)
            return copy.deepcopy(self._history.get((ch.id if ch else channel, ts), []))

    def ephemerals(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            ch = self._resolve_channel(channel)
            cid = ch.id if ch else channel
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if e["channel"] == cid and (user is None or e["user"] == user)
            ]

    def views(self, user: str, *, open_only: bool = False) -> list[dict[str, Any]]:
        """Modal views opened for ``user`` (latest versions), in opening order."""
        with self._lock:
            return [
                r.snapshot()
                for r in self._views.values()
                if r.user == user and r.type != "home" and (r.open or not open_only)
            ]

    def view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._views.get(view_id)
            if record is None:
                raise KeyError(f"no view {view_id}")
            return record.snapshot()

    def view_user(self, view_id: str) -> str:
        with self._lock:
            return self._views[view_id].user

    def view_is_open(self, view_id: str) -> bool:
        with self._lock:
            record = self._views.get(view_id)
            return record is not None and record.open

    def latest_view(self, user: str) -> dict[str, Any] | None:
        """The most recently opened modal still open for ``user``."""
        open_views = self.views(user, open_only=True)
        return open_views[-1] if open_views else None

    def home(self, user: str) -> dict[str, Any] | None:
        with self._lock:
            view_id = self._homes.get(user)
            return self._views[view_id].snapshot() if view_id else None

    def reactions(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return list(self.message(channel, ts).get("reactions", []))

    def responses(self, response_url: str | None = None) -> list[ResponsePost]:
        """POSTs to response_urls (all, or one URL's / id's), oldest first."""
        rid = response_url.rstrip("/").rsplit("/", 1)[-1] if response_url else None
        with self._lock:
            return [
                copy.deepcopy(p)
                for p in self._response_posts
                if rid is None or p.response_url_id == rid
            ]

    # ================================================================ test-side changes
    def add_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """A message written by a person (the bot cannot ``chat.update`` it)."""
        with self._lock:
            ch = self._resolve_channel(channel)
            if ch is None:
                raise KeyError(f"unknown channel {channel}")
            msg: dict[str, Any] = {"type": "message", "user": user, "text": text}
            if blocks is not None:
                msg["blocks"] = assign_ids(blocks)
            return copy.deepcopy(self._store_message(ch, msg, thread_ts, broadcast=False))

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> bool:
        """Record ``user``'s reaction; False if it was already there."""
        with self._lock:
            msg = self._find(channel, ts)
            return self._react(msg, name, user)

    def remove_reaction(self, channel: str, ts: str, name: str, user: str) -> bool:
        with self._lock:
            msg = self._find(channel, ts)
            for r in msg.get("reactions", []):
                if r["name"] == name and user in r["users"]:
                    r["users"].remove(user)
                    r["count"] -= 1
                    if not r["users"]:
                        msg["reactions"].remove(r)
                    if not msg["reactions"]:
                        del msg["reactions"]
                    return True
            return False

    def force_rate_limit(
        self, method: str, count: int = 1, *, retry_after: int | None = None
    ) -> None:
        """The next ``count`` calls of ``method`` answer 429 + ``Retry-After``."""
        after = self.knobs.settings.retry_after_s if retry_after is None else retry_after
        with self._lock:
            self._forced[method] = [count, after]

    def close_view(self, view_id: str) -> None:
        """The user closed (or Slack dismissed) a modal and every view stacked on it."""
        with self._lock:
            record = self._views.get(view_id)
            if record is None:
                return
            root = record.view.get("root_view_id") or view_id
            for r in self._views.values():
                if r.view.get("root_view_id") == root and r.type != "home":
                    r.open = False

    def apply_view_response(
        self, view_id: str, response: Mapping[str, Any] | None, *, values: Mapping[str, Any]
    ) -> None:
        """What Slack does after a view_submission ack (``response`` = the ack body)."""
        with self._lock:
            record = self._views.get(view_id)
            if record is None:
                return
            record.view["state"] = {"values": copy.deepcopy(dict(values))}
            action = (response or {}).get("response_action")
            now = self.clock.now()
            if action == "errors":
                return
            if action == "update" and isinstance((response or {}).get("view"), dict):
                new = dict((response or {})["view"])
                self._replace_view(record, new, now)
            elif action == "push" and isinstance((response or {}).get("view"), dict):
                pushed = self._new_view(record.user, dict((response or {})["view"]), now)
                pushed.view["root_view_id"] = record.view.get("root_view_id") or record.id
                pushed.view["previous_view_id"] = record.id
            elif action == "clear":
                for r in self._views.values():
                    if r.user == record.user and r.type != "home":
                        r.open = False
            else:
                self.close_view(view_id)

    def reset(self) -> None:
        """Empty workspace back to the configured directory and settings; knobs, calls cleared."""
        with self._lock:
            self._load()
            self.settings = self._initial_settings.model_copy()
            self._tokens = {self.bot_token}
            self._app_tokens = {self.app_token}
            for store in (
                self._messages,
                self._history,
                self._views,
                self._homes,
                self._triggers,
                self._response_urls,
                self._buckets,
                self._forced,
            ):
                store.clear()
            self._tiers.clear()
            self._ephemerals.clear()
            self._response_posts.clear()
            self._calls.clear()
        self.knobs.reset()

    # ================================================================ HTTP: Web API
    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        path = request.url.path
        knobs = self.knobs
        if knobs.latency_s > 0 and knobs.applies(path):
            await asyncio.sleep(knobs.latency_s)
        raw = await request.body()
        now = self.clock.now()
        args: dict[str, Any] = {}
        token: str | None = None
        knob: str | None = None
        with self._lock:
            try:
                args, token = self._parse(request, raw)
                early = self._early_knobs(method, path)
                if early is not None:
                    knob, exc = early
                    raise exc
                if knob is None and knobs.take("expire_tokens_next", path):
                    knob = "expire_token"
                    raise SlackError("token_expired")
                self._netloc = request.url.netloc
                self._authenticate(token, method)
                handler = self._methods.get(method)
                if handler is None:
                    raise SlackError("unknown_method", status=404)
                self._spend_budget(method, now)
                self._decode_json_args(args)
                data = handler(args, now)
                body: dict[str, Any] = {"ok": True, **data}
                status, headers = 200, {}
            except SlackError as exc:
                body, status, headers = exc.body(), exc.status, exc.headers
            self._calls.append(
                SlackCall(
                    method=method,
                    args=copy.deepcopy(args),
                    at=now,
                    status=status,
                    ok=bool(body.get("ok")),
                    error=body.get("error"),
                    response=copy.deepcopy(body),
                    token=token,
                    knob=knob,
                )
            )
        if knob == "malformed":
            return Response(b'{"ok": true, "chan', status_code=200, media_type="application/json")
        return JSONResponse(body, status_code=status, headers=headers)

    def _early_knobs(self, method: str, path: str) -> tuple[str, SlackError] | None:
        forced = self._forced.get(method)
        if forced and forced[0] > 0:
            forced[0] -= 1
            return "rate_limit", self._ratelimited(forced[1])
        if self.knobs.take("rate_limit_next", path):
            return "rate_limit", self._ratelimited(self.knobs.settings.retry_after_s)
        if self.knobs.roll_5xx(path):
            return "5xx", SlackError("internal_error", status=500)
        if self.knobs.take("malformed_next", path):
            return "malformed", SlackError("malformed")
        return None

    def _spend_budget(self, method: str, now: datetime) -> None:
        """The method's tier budget (sandbox/slack/ratelimits.py): 429 when it is spent."""
        reading = self._tiers.take(method, self.settings, now)
        if reading is not None and not reading.allowed:
            raise self._ratelimited(reading.retry_after)

    @staticmethod
    def _ratelimited(retry_after: int) -> SlackError:
        return SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})

    def _parse(self, request: Request, raw: bytes) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query_params)
        ctype = request.headers.get("content-type", "")
        if raw:
            if "json" in ctype:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise SlackError("json_not_object")
                args.update(body)
            else:
                try:
                    args.update(parse_qsl(raw.decode(), keep_blank_values=True))
                except UnicodeDecodeError:
                    raise SlackError("invalid_form_data") from None
        token = args.pop("token", None)
        auth = request.headers.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        return args, (str(token) if token else None)

    def _authenticate(self, token: str | None, method: str) -> None:
        if not token:
            raise SlackError("not_authed")
        wants_app_token = method in _APP_TOKEN_METHODS
        if token in (self._app_tokens if wants_app_token else self._tokens):
            return
        if token in (self._tokens if wants_app_token else self._app_tokens):
            raise SlackError("not_allowed_token_type")
        raise SlackError("invalid_auth")

    @staticmethod
    def _decode_json_args(args: dict[str, Any]) -> None:
        for key, error in _JSON_ARGS.items():
            value = args.get(key)
            if isinstance(value, str) and value != "":
                try:
                    args[key] = json.loads(value)
                except ValueError:
                    raise SlackError(
                        error, messages=[f"[ERROR] invalid JSON [json-pointer:/{key}]"]
                    ) from None

    # ---------------------------------------------------------------- helpers
    def _next_ts(self, now: datetime) -> str:
        micros = int(now.timestamp() * 1_000_000)
        self._last_ts = max(micros, self._last_ts + 100)
        return format_ts(self._last_ts)

    def _channel_arg(self, args: Mapping[str, Any], name: str = "channel") -> Channel:
        ref = _str(args, name)
        if ref is None:
            raise SlackError("channel_not_found")
        ch = self._resolve_channel(ref)
        if ch is None:
            raise SlackError("channel_not_found")
        return ch

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        ch = self._resolve_channel(channel)
        msg = self._messages.get(ch.id if ch else channel, {}).get(ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        return msg

    def _bot_profile(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": SANDBOX_BOT_NAME,
            "deleted": False,
            "team_id": self.team_id,
            "updated": 1_700_000_000,
            "icons": {"image_48": "https://sandbox.invalid/bot_48.png"},
        }

    def _content(self, args: Mapping[str, Any], *, require: bool = True) -> dict[str, Any]:
        """``text``/``blocks``/``attachments``/``metadata`` from args, validated."""
        content: dict[str, Any] = {}
        text = args.get("text")
        if text is not None:
            text = str(text)
            if len(text) > MAX_MESSAGE_TEXT:
                raise SlackError("msg_too_long")
            content["text"] = text
        blocks = args.get("blocks")
        if blocks is not None and blocks != "":
            errors = check_message_blocks(blocks)
            if errors:
                raise SlackError("invalid_blocks", messages=errors)
            content["blocks"] = assign_ids(blocks, salt=str(self._last_ts))
        attachments = args.get("attachments")
        if attachments is not None and attachments != "":
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > 100:
                raise SlackError("too_many_attachments")
            content["attachments"] = attachments
        if isinstance(args.get("metadata"), dict):
            content["metadata"] = args["metadata"]
        has_body = (
            bool(content.get("text"))
            or bool(content.get("blocks"))
            or bool(content.get("attachments"))
        )
        if require and not has_body:
            raise SlackError("no_text")
        return content

    def _store_message(
        self,
        ch: Channel,
        msg: dict[str, Any],
        thread_ts: str | None,
        *,
        broadcast: bool,
    ) -> dict[str, Any]:
        store = self._messages.setdefault(ch.id, {})
        now = self.clock.now()
        ts = self._next_ts(now)
        msg = {**msg, "ts": ts, "team": self.team_id}
        msg.setdefault("text", "")
        if thread_ts is not None:
            parent = store.get(thread_ts)
            if parent is None:
                raise SlackError("thread_not_found")
            root_ts = parent.get("thread_ts") or thread_ts
            root = store[root_ts]
            msg["thread_ts"] = root_ts
            msg["parent_user_id"] = root.get("user")
            if broadcast:
                msg["subtype"] = "thread_broadcast"
                msg["root"] = {k: v for k, v in root.items() if k != "replies"}
            root["thread_ts"] = root_ts
            root["reply_count"] = int(root.get("reply_count", 0)) + 1
            users = list(root.get("reply_users", []))
            if msg.get("user") and msg["user"] not in users:
                users.append(msg["user"])
            root["reply_users"] = users
            root["reply_users_count"] = len(users)
            root["latest_reply"] = ts
            root.setdefault("is_locked", False)
            root.setdefault("subscribed", False)
        store[ts] = msg
        self._history[(ch.id, ts)] = [copy.deepcopy(msg)]
        return msg

    def _react(self, msg: dict[str, Any], name: str, user: str) -> bool:
        reactions: list[dict[str, Any]] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == name:
                if user in r["users"]:
                    return False
                r["users"].append(user)
                r["count"] += 1
                return True
        reactions.append({"name": name, "users": [user], "count": 1})
        return True

    def _user_json(self, user: SlackUser, now: datetime) -> dict[str, Any]:
        try:
            zone = ZoneInfo(user.tz)
            local = now.astimezone(zone)
            offset = local.utcoffset()
            tz_offset = int(offset.total_seconds()) if offset is not None else 0
            tz_label = local.tzname() or user.tz
        except (ZoneInfoNotFoundError, ValueError):
            tz_offset, tz_label = 0, "Coordinated Universal Time"
        real = user.real_name or user.name
        first, _, last = real.partition(" ")
        profile: dict[str, Any] = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": user.name,
            "display_name_normalized": user.name,
            "first_name": first,
            "last_name": last,
            "team": self.team_id,
            "image_48": f"https://sandbox.invalid/{user.id}_48.png",
        }
        if user.email:
            profile["email"] = user.email
        if user.is_bot:
            profile["bot_id"] = self.bot_id if user.id == self.bot_user_id else None
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": user.tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": user.email is not None,
        }

    # ---------------------------------------------------------------- methods
    def _api_test(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {"args": {k: v for k, v in args.items() if isinstance(v, str)}}

    def _apps_connections_open(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ticket = secrets.token_hex(8)
        return {
            "url": f"ws://{self._netloc}/socket-mode/link/?ticket={ticket}&app_id={self.app_id}"
        }

    def _auth_test(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": SANDBOX_TEAM_NAME,
            "user": SANDBOX_BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "enterprise_id": self.enterprise_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        content = self._content(args)
        if self.settings.rate_limits_enabled:
            bucket = self._buckets.get(ch.id)
            if bucket is None:
                bucket = TokenBucket(
                    rate=self.settings.post_message_per_s,
                    burst=self.settings.post_message_burst,
                    now=now,
                )
                self._buckets[ch.id] = bucket
            reading = bucket.take(now)
            if not reading.allowed:
                raise self._ratelimited(reading.retry_after)
        msg: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            **content,
            "bot_profile": self._bot_profile(),
        }
        thread_ts = _str(args, "thread_ts")
        stored = self._store_message(
            ch,
            msg,
            thread_ts,
            broadcast=thread_ts is not None and _bool(args.get("reply_broadcast")),
        )
        return {"channel": ch.id, "ts": stored["ts"], "message": copy.deepcopy(stored)}

    def _update_message(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        ts = _str(args, "ts")
        if ts is None:
            raise _missing("ts")
        msg = self._messages.get(ch.id, {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("user") != self.bot_user_id or msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        content = self._content(args)
        msg.update(content)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts(now)}
        self._history.setdefault((ch.id, ts), []).append(copy.deepcopy(msg))
        return {
            "channel": ch.id,
            "ts": ts,
            "text": msg.get("text", ""),
            "message": copy.deepcopy(msg),
        }

    def _post_ephemeral(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        user = _str(args, "user")
        if user is None:
            raise _missing("user")
        if user not in self._users:
            raise SlackError("user_not_found")
        content = self._content(args)
        ts = self._next_ts(now)
        entry: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "channel": ch.id,
            "user": user,
            "ts": ts,
            "bot_id": self.bot_id,
            "source": "chat.postEphemeral",
            **content,
        }
        thread_ts = _str(args, "thread_ts")
        if thread_ts:
            entry["thread_ts"] = thread_ts
        self._ephemerals.append(entry)
        return {"message_ts": ts}

    def _get_permalink(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        ts = _str(args, "message_ts")
        if ts is None:
            raise _missing("message_ts")
        msg = self._messages.get(ch.id, {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{ch.id}/p{ts.replace('.', '')}"
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _view_from_args(self, args: Mapping[str, Any], *, home: bool) -> dict[str, Any]:
        view = args.get("view")
        if view is None or view == "":
            raise _missing("view")
        errors = check_view(view, home=home)
        if errors:
            raise SlackError("invalid_arguments", messages=errors)
        return dict(view)

    def _view_json(self, view_id: str, view: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        self._seq += 1
        out: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": assign_ids(list(view.get("blocks") or []), salt=view_id),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(now.timestamp())}.{self._seq:08d}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if view.get("type") == "modal":
            out["title"] = view.get("title")
        else:
            out.pop("close")
            out.pop("submit")
        return out

    def _new_view(self, user: str, view: Mapping[str, Any], now: datetime) -> ViewRecord:
        self._seq += 1
        view_id = f"V{self._seq:010d}"
        record = ViewRecord(view_id, user, self._view_json(view_id, view, now), now)
        self._views[view_id] = record
        return record

    def _replace_view(self, record: ViewRecord, view: Mapping[str, Any], now: datetime) -> None:
        new = self._view_json(record.id, view, now)
        new["root_view_id"] = record.view.get("root_view_id") or record.id
        new["previous_view_id"] = record.view.get("previous_view_id")
        new["state"] = record.view.get("state", {"values": {}})
        record.view = new

    def _check_external_id(self, view: Mapping[str, Any], own_id: str | None = None) -> None:
        external = view.get("external_id")
        if external:
            for r in self._views.values():
                if r.view.get("external_id") == external and r.id != own_id:
                    raise SlackError("duplicate_external_id")

    def _views_open(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        trigger_id = _str(args, "trigger_id") or _str(args, "interactivity_pointer")
        if trigger_id is None:
            raise _missing("trigger_id")
        view = self._view_from_args(args, home=False)
        trigger = self._triggers.get(trigger_id)
        if trigger is None or not _TRIGGER_RE.match(trigger_id):
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if (now - trigger.issued_at).total_seconds() > self.settings.trigger_ttl_s:
            raise SlackError("expired_trigger_id")
        self._check_external_id(view)
        trigger.used = True
        record = self._new_view(trigger.user, view, now)
        return {"view": record.snapshot()}

    def _views_update(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
        if view_id is None and external_id is None:
            raise _missing("view_id")
        view = self._view_from_args(args, home=False)
        record: ViewRecord | None = None
        if view_id is not None:
            record = self._views.get(view_id)
        else:
            record = next(
                (r for r in self._views.values() if r.view.get("external_id") == external_id),
                None,
            )
        if record is None or not record.open or record.type == "home":
            raise SlackError("not_found")
        expected = _str(args, "hash")
        if expected is not None and expected != record.view.get("hash"):
            raise SlackError("hash_conflict")
        self._check_external_id(view, record.id)
        self._replace_view(record, view, now)
        return {"view": record.snapshot()}

    def _views_publish(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        user = _str(args, "user_id")
        if user is None:
            raise _missing("user_id")
        view = self._view_from_args(args, home=True)
        existing = self._homes.get(user)
        expected = _str(args, "hash")
        if existing is not None:
            record = self._views[existing]
            if expected is not None and expected != record.view.get("hash"):
                raise SlackError("hash_conflict")
            self._replace_view(record, view, now)
        else:
            record = self._new_view(user, view, now)
            self._homes[user] = record.id
        return {"view": record.snapshot()}

    def _message_arg(self, args: Mapping[str, Any]) -> tuple[Channel, dict[str, Any]]:
        ch = self._channel_arg(args)
        ts = _str(args, "timestamp")
        if ts is None:
            raise SlackError("no_item_specified")
        msg = self._messages.get(ch.id, {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        return ch, msg

    def _reactions_get(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch, msg = self._message_arg(args)
        return {"type": "message", "channel": ch.id, "message": copy.deepcopy(msg)}

    def _reactions_add(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        name = (_str(args, "name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        _, msg = self._message_arg(args)
        if not self._react(msg, name, self.bot_user_id):
            raise SlackError("already_reacted")
        return {}

    def _usergroups_users_list(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        if not self.settings.usergroups_enabled:
            raise SlackError("plan_upgrade_required")
        group_id = _str(args, "usergroup")
        if group_id is None:
            raise _missing("usergroup")
        group = self._groups.get(group_id)
        if group is None:
            raise SlackError("no_such_subteam")
        users = list(group.users)
        if _bool(args.get("include_disabled")):
            users += [u for u in group.disabled_users if u not in users]
        return {"users": users}

    def _users_info(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        user_id = _str(args, "user")
        user = self._users.get(user_id) if user_id else None
        if user is None:
            raise SlackError("user_not_found")
        return {"user": self._user_json(user, now)}

    def _conversations_info(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        info: dict[str, Any] = {
            "id": ch.id,
            "name": ch.name,
            "is_channel": not ch.is_private and not ch.is_im,
            "is_group": ch.is_private,
            "is_im": ch.is_im,
            "is_mpim": False,
            "is_private": ch.is_private or ch.is_im,
            "created": ch.created,
            "is_archived": False,
            "is_general": ch.name == "general",
            "unlinked": 0,
            "name_normalized": ch.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "context_team_id": self.team_id,
            "creator": "U0ADMIN",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        if ch.is_im:
            info["user"] = ch.user
        return {"channel": info}

    def _listed(self, messages: list[dict[str, Any]], args: Mapping[str, Any]) -> list[Any]:
        """Messages as the conversations.* methods list them: ``metadata`` only with
        ``include_all_metadata`` (as Slack does)."""
        with_metadata = _bool(args.get("include_all_metadata"))
        listed = [copy.deepcopy(m) for m in messages]
        if not with_metadata:
            for m in listed:
                m.pop("metadata", None)
        return listed

    def _conversations_replies(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        ts = _str(args, "ts")
        if ts is None:
            raise _missing("ts")
        store = self._messages.get(ch.id, {})
        parent = store.get(ts)
        if parent is None:
            raise SlackError("thread_not_found")
        root = parent.get("thread_ts") or ts
        thread = [
            m for mts, m in sorted(store.items()) if mts == root or m.get("thread_ts") == root
        ]
        limit = int(args.get("limit") or 1000)
        return {"messages": self._listed(thread[:limit], args), "has_more": len(thread) > limit}

    def _conversations_history(self, args: dict[str, Any], now: datetime) -> dict[str, Any]:
        ch = self._channel_arg(args)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        top = [
            m
            for ts, m in sorted(self._messages.get(ch.id, {}).items(), reverse=True)
            if (m.get("thread_ts") in (None, ts) or m.get("subtype") == "thread_broadcast")
            and oldest < float(ts) < latest
        ]
        limit = int(args.get("limit") or 100)
        return {"messages": self._listed(top[:limit], args), "has_more": len(top) > limit}

    # ================================================================ HTTP: response_url
    async def _response(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        raw = await request.body()
        now = self.clock.now()
        payload: dict[str, Any] | None = None
        with self._lock:
            try:
                try:
                    parsed = json.loads(raw or b"{}")
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    raise SlackError("invalid_payload", status=400)
                payload = parsed
                url = self._response_urls.get(rid)
                if url is None:
                    raise SlackError("invalid_token", status=404)
                if (now - url.issued_at).total_seconds() > self.settings.response_url_ttl_s:
                    raise SlackError("expired_url", status=404)
                if url.uses >= self.settings.response_url_max_uses:
                    raise SlackError("used_url", status=404)
                self._apply_response(url, payload)
                url.uses += 1
                url.payloads.append(copy.deepcopy(payload))
            except SlackError as exc:
                self._response_posts.append(
                    ResponsePost(rid, now, exc.status, copy.deepcopy(payload), exc.error)
                )
                return PlainTextResponse(exc.error, status_code=exc.status)
            self._response_posts.append(ResponsePost(rid, now, 200, copy.deepcopy(payload)))
        return PlainTextResponse("ok")

    def _apply_response(self, url: ResponseUrl, payload: dict[str, Any]) -> None:
        ch = self._resolve_channel(url.channel)
        if ch is None:
            raise SlackError("channel_not_found", status=404)
        original = self._messages.get(ch.id, {}).get(url.message_ts or "")
        if _bool(payload.get("delete_original")):
            if original is not None:
                self._messages[ch.id].pop(original["ts"])
                self._history.setdefault((ch.id, original["ts"]), []).append(
                    {"deleted": True, "ts": original["ts"]}
                )
            return
        try:
            content = self._content(payload)
        except SlackError as exc:
            raise SlackError(exc.error, status=400, messages=exc.messages) from None
        if _bool(payload.get("replace_original")) and original is not None:
            for key in ("blocks", "attachments"):
                original.pop(key, None)
            original.update(content)
            original["edited"] = {"user": self.bot_user_id, "ts": self._next_ts(self.clock.now())}
            self._history.setdefault((ch.id, original["ts"]), []).append(copy.deepcopy(original))
            return
        thread_ts = _str(payload, "thread_ts")
        if payload.get("response_type") == "in_channel":
            msg: dict[str, Any] = {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.app_id,
                **content,
                "bot_profile": self._bot_profile(),
            }
            self._store_message(ch, msg, thread_ts, broadcast=False)
            return
        entry: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "channel": ch.id,
            "user": url.user,
            "ts": self._next_ts(self.clock.now()),
            "bot_id": self.bot_id,
            "source": "response_url",
            "replace_original": _bool(payload.get("replace_original")),
            **content,
        }
        if thread_ts:
            entry["thread_ts"] = thread_ts
        self._ephemerals.append(entry)

    # ================================================================ HTTP: control API
    async def _control(self, request: Request) -> Response:
        rest = request.path_params["rest"].strip("/")
        key = (request.method, rest)
        q = request.query_params
        if key == ("GET", "calls"):
            return JSONResponse({"calls": [c.to_json() for c in self.calls(q.get("method"))]})
        if key == ("DELETE", "calls"):
            self.clear_calls()
            return JSONResponse({"calls": []})
        if key == ("GET", "messages"):
            channel = q.get("channel")
            if not channel:
                return JSONResponse({"error": "channel is required"}, status_code=400)
            try:
                thread = q.get("thread_ts")
                messages = self.thread(channel, thread) if thread else self.messages(channel)
            except KeyError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            return JSONResponse({"channel": channel, "messages": messages})
        if key == ("GET", "ephemerals"):
            channel = q.get("channel") or ""
            return JSONResponse({"ephemerals": self.ephemerals(channel, q.get("user"))})
        if key == ("GET", "views"):
            user = q.get("user") or ""
            return JSONResponse({"views": self.views(user), "home": self.home(user)})
        if key == ("GET", "responses"):
            return JSONResponse({"responses": [p.to_json() for p in self.responses()]})
        if key == ("POST", "reset"):
            self.reset()
            return JSONResponse({"reset": True, "now": self.clock.now().isoformat()})
        if key == ("GET", "clock"):
            return JSONResponse({"now": self.clock.now().isoformat()})
        if rest in (
            "knobs",
            "settings",
            "clock/advance",
            "triggers",
            "response_urls",
            "usergroups",
        ):
            if request.method == "GET" and rest == "knobs":
                return JSONResponse(self._knobs_json())
            if request.method == "GET" and rest == "settings":
                return JSONResponse(self.settings.model_dump())
            if request.method != "POST":
                return JSONResponse({"error": "method not allowed"}, status_code=405)
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            return self._control_post(rest, body, request)
        return JSONResponse({"error": "not found"}, status_code=404)

    def _knobs_json(self) -> dict[str, Any]:
        with self._lock:
            forced = {m: c for m, (c, _) in self._forced.items() if c > 0}
        return {**self.knobs.settings.model_dump(), "force_rate_limit": forced}

    def _control_post(self, rest: str, body: dict[str, Any], request: Request) -> Response:
        if rest == "knobs":
            forced = body.pop("force_rate_limit", None) or {}
            unknown = sorted(set(body) - set(KnobSettings.model_fields))
            if unknown:
                return JSONResponse({"error": f"unknown knobs: {unknown}"}, status_code=400)
            try:
                merged = KnobSettings.model_validate({**self.knobs.settings.model_dump(), **body})
            except ValidationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if not isinstance(forced, dict) or not all(
                isinstance(v, int) and v >= 0 for v in forced.values()
            ):
                return JSONResponse(
                    {"error": "force_rate_limit must map method -> count"}, status_code=400
                )
            self.knobs.set(**merged.model_dump())
            for method, count in forced.items():
                self.force_rate_limit(str(method), count)
            return JSONResponse(self._knobs_json())
        if rest == "settings":
            try:
                merged_settings = SlackSettings.model_validate(
                    {**self.settings.model_dump(), **body}
                )
            except ValidationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            with self._lock:
                self.settings = merged_settings
            return JSONResponse(self.settings.model_dump())
        if rest == "clock/advance":
            seconds = body.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                return JSONResponse({"error": "seconds must be a number >= 0"}, status_code=400)
            return JSONResponse({"now": self.clock.advance(float(seconds)).isoformat()})
        if rest == "triggers":
            user = body.get("user")
            if not isinstance(user, str):
                return JSONResponse({"error": "user is required"}, status_code=400)
            return JSONResponse({"trigger_id": self.mint_trigger(user, source="control")})
        if rest == "response_urls":
            channel, user = body.get("channel"), body.get("user")
            if not isinstance(channel, str) or not isinstance(user, str):
                return JSONResponse({"error": "channel and user are required"}, status_code=400)
            base = str(request.base_url).rstrip("/")
            url = self.mint_response_url(
                base, channel=channel, user=user, message_ts=body.get("message_ts")
            )
            return JSONResponse({"response_url": url})
        # usergroups
        group_id, users = body.get("id"), body.get("users")
        if not isinstance(group_id, str) or not isinstance(users, list):
            return JSONResponse({"error": "id and users are required"}, status_code=400)
        group = self.set_usergroup(group_id, [str(u) for u in users], handle=body.get("handle"))
        return JSONResponse({"id": group.id, "handle": group.handle, "users": group.users})
