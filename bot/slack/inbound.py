"""What arrives at ``/slack/events``, checked before Bolt sees it (pure, no I/O).

In order: the size, the signature over the raw bytes (nothing is parsed before it holds),
the encoding, the body (a form, ``payload=<JSON>`` or a JSON envelope), then its shape
through typed models of the fields the listeners use, and finally the workspace: a request
from any team or enterprise other than the installation's is refused. Every refusal is a
:class:`Refusal` (a 4xx, or for a slash command an ephemeral answer Slack shows) with a
short reason for one log line; nothing the sender wrote is echoed beyond a few characters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

#: Slack's replay window for signed requests (reference §2.5).
REPLAY_WINDOW_S = 60 * 5
#: A larger body is refused unread (a modal submission is a few tens of kB at most).
MAX_BODY_BYTES = 1024 * 1024
#: How much of anything the sender wrote may appear in a log line or an answer.
ECHO_MAX = 40

#: The kind of an event the bot does not listen to (answered 200 and not dispatched).
IGNORED_EVENT = "ignored_event"
#: Slack's unsigned SSL check of the URL (``ssl_check=1&token=…``): answered 200, nothing more.
SSL_CHECK = "ssl_check"
#: Kinds answered 200 without reaching Bolt.
NOT_DISPATCHED = frozenset({IGNORED_EVENT, SSL_CHECK})

OTHER_WORKSPACE = (
    "This app is installed in another workspace: nothing was done. "
    "Use it from the workspace where it is installed."
)

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,40}$")]
Short = Annotated[str, StringConstraints(max_length=255)]
Text = Annotated[str, StringConstraints(max_length=4000)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]


def clip(value: object) -> str:
    """``value`` as a short printable string, safe to log."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= ECHO_MAX else text[:ECHO_MAX] + "…"


@dataclass(frozen=True)
class Installation:
    """The workspace (and Enterprise Grid org) the bot token belongs to (``auth.test``)."""

    team_id: str | None
    enterprise_id: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A request turned away: ``status`` and ``body`` answer it; ``reason`` is logged."""

    status: int
    reason: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """A signed, well-formed request from the installed workspace, and its parsed body."""

    text: str
    body: dict[str, Any]
    kind: str


# -- the shapes the listeners rely on -----------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlashCommand(_Shape):
    team_id: Id
    enterprise_id: Id | None = None
    user_id: Id
    channel_id: Id | None = None
    command: Annotated[str, StringConstraints(pattern=r"^/[^\s]{1,32}$")]
    text: Text = ""
    trigger_id: Short
    response_url: Url


class Team(_Shape):
    id: Id
    enterprise_id: Id | None = None


class Enterprise(_Shape):
    id: Id


class User(_Shape):
    id: Id


class Option(_Shape):
    value: Short


class Action(_Shape):
    action_id: Short
    block_id: Short | None = None
    value: Annotated[str, StringConstraints(max_length=2000)] | None = None
    selected_option: Option | None = None


class ViewState(_Shape):
    values: dict[Short, dict[Short, dict[str, Any]]] = Field(default_factory=dict)


class View(_Shape):
    id: Id
    type: Short
    hash: Short | None = None
    callback_id: Short = ""
    private_metadata: Annotated[str, StringConstraints(max_length=3000)] = ""
    state: ViewState = Field(default_factory=ViewState)


class Channel(_Shape):
    id: Id


class _Interaction(_Shape):
    team: Team
    enterprise: Enterprise | None = None
    user: User


class BlockActions(_Interaction):
    type: Literal["block_actions"]
    actions: Annotated[list[Action], Field(min_length=1, max_length=25)]
    trigger_id: Short | None = None
    view: View | None = None
    channel: Channel | None = None
    container: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    response_url: Url | None = None


class BlockSuggestion(_Interaction):
    type: Literal["block_suggestion"]
    action_id: Short
    value: Short = ""
    view: View | None = None


class ViewSubmission(_Interaction):
    type: Literal["view_submission", "view_closed"]
    view: View


class ItemRef(_Shape):
    type: Short
    channel: Id | None = None
    ts: Short | None = None


class ReactionEvent(_Shape):
    type: Literal["reaction_added", "reaction_removed"]
    user: Id
    reaction: Short
    item: ItemRef


class HomeOpenedEvent(_Shape):
    type: Literal["app_home_opened"]
    user: Id
    tab: Short = "home"


class AnyEvent(_Shape):
    type: Short


class EventCallback(_Shape):
    type: Literal["event_callback"]
    team_id: Id
    enterprise_id: Id | None = None
    event_id: Short
    event: dict[str, Any]


class UrlVerification(_Shape):
    type: Literal["url_verification"]
    challenge: Short


_INTERACTIONS: dict[str, type[_Interaction]] = {
    "block_actions": BlockActions,
    "block_suggestion": BlockSuggestion,
    "view_submission": ViewSubmission,
    "view_closed": ViewSubmission,
}
_EVENTS: dict[str, type[_Shape]] = {
    "reaction_added": ReactionEvent,
    "reaction_removed": ReactionEvent,
    "app_home_opened": HomeOpenedEvent,
}
#: The events the bot listens to (the manifest's ``bot_events``); others are acknowledged
#: and never dispatched.
SUBSCRIBED_EVENTS = frozenset(_EVENTS)


# -- the checks ---------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None


def verify_signature(
    raw: bytes, headers: Mapping[str, str], *, secret: str, now: float
) -> Refusal | None:
    """Slack's v0 signature of the raw bytes, within the replay window (reference §2.5)."""
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    if not timestamp or not signature:
        return _unsigned("no signature headers")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return _unsigned("a malformed timestamp")
    if abs(now - int(timestamp)) > REPLAY_WINDOW_S:
        return _unsigned("a timestamp outside the 5-minute window")
    expected = (
        "v0="
        + hmac.new(
            secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256
        ).hexdigest()
    )
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return _unsigned("a bad signature")
    return None


def _unsigned(why: str) -> Refusal:
    return Refusal(401, f"unsigned request: {why}", {"error": "invalid request"})


def _bad(why: str) -> Refusal:
    return Refusal(400, f"malformed request: {why}", {"error": "malformed request"})


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any] | Refusal:
    """The body as Slack sent it: JSON (events) or a form (commands, ``payload=``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _bad("the body is not UTF-8")
    if not text:
        return _bad("an empty body")
    # The same choice Bolt makes: JSON when declared or when it looks like an object.
    is_json = (content_type or "").split(";")[0].strip() == "application/json"
    try:
        if is_json or text.startswith("{"):
            parsed: Any = json.loads(text)
        else:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=100)
            fields = dict(pairs)
            if len(fields) != len(pairs):
                return _bad("a form field is repeated")
            payload = fields.get("payload")
            parsed = json.loads(payload) if payload is not None else fields
    except (ValueError, RecursionError) as exc:
        return _bad(f"the body cannot be read ({type(exc).__name__})")
    if not isinstance(parsed, dict):
        return _bad(f"the body is a {type(parsed).__name__}, not an object")
    return parsed


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(clip(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {clip(first.get('msg', 'invalid'))}"


def _has_nul(body: object) -> bool:
    """Whether any key or string in ``body`` holds a NUL (no database stores one)."""
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _classify(body: dict[str, Any]) -> tuple[str, str | None, str | None] | Refusal:
    """The request's kind and its team and enterprise ids, once its shape is checked."""
    if _has_nul(body):
        return _bad("a NUL character")
    try:
        if "command" in body and "type" not in body:
            command = SlashCommand.model_validate(body)
            return "command", command.team_id, command.enterprise_id
        kind = body.get("type")
        if kind == "url_verification":
            UrlVerification.model_validate(body)
            return "url_verification", None, None
        if kind == "event_callback":
            envelope = EventCallback.model_validate(body)
            inner = AnyEvent.model_validate(envelope.event)
            shape = _EVENTS.get(inner.type)
            if shape is None:  # not subscribed to: acknowledged, never dispatched
                return IGNORED_EVENT, envelope.team_id, envelope.enterprise_id
            shape.model_validate(envelope.event)
            return "event", envelope.team_id, envelope.enterprise_id
        model = _INTERACTIONS.get(kind) if isinstance(kind, str) else None
        if model is None:
            return _bad(f"unsupported type {clip(kind)}")
        interaction = model.model_validate(body)
        enterprise = interaction.enterprise.id if interaction.enterprise else None
        return str(kind), interaction.team.id, enterprise or interaction.team.enterprise_id
    except ValidationError as exc:
        return _bad(_describe(exc))


def check_workspace(
    kind: str, team_id: str | None, enterprise_id: str | None, installation: Installation
) -> Refusal | None:
    """Refuse a request from a team or enterprise other than the installation's."""
    if kind == "url_verification":
        return None
    team_ok = installation.team_id is None or team_id == installation.team_id
    enterprise_ok = enterprise_id is None or enterprise_id == installation.enterprise_id
    if team_ok and enterprise_ok:
        return None
    reason = f"another workspace: team {clip(team_id)}, enterprise {clip(enterprise_id)}"
    if kind == "command":  # Slack shows a slash command's answer to the user
        return Refusal(200, reason, {"response_type": "ephemeral", "text": OTHER_WORKSPACE})
    return Refusal(403, reason, {"error": OTHER_WORKSPACE})


def check_shape(body: dict[str, Any], installation: Installation) -> str | Refusal:
    """The kind of an already parsed body, or why it is refused (shape, then workspace)."""
    classified = _classify(body)
    if isinstance(classified, Refusal):
        return classified
    kind, team_id, enterprise_id = classified
    return check_workspace(kind, team_id, enterprise_id, installation) or kind


def check_request(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secret: str,
    installation: Installation,
    now: float,
) -> Accepted | Refusal:
    """Every check of an HTTP request, signature first (``headers`` keys in lower case)."""
    if len(raw) > MAX_BODY_BYTES:
        return Refusal(413, "malformed request: the body is too large", {"error": "too large"})
    if _is_ssl_check(raw):
        return Accepted(text="", body={}, kind=SSL_CHECK)
    refused = verify_signature(raw, headers, secret=secret, now=now)
    if refused is not None:
        return refused
    body = parse_body(raw, _header(headers, "content-type"))
    if isinstance(body, Refusal):
        return body
    kind = check_shape(body, installation)
    if isinstance(kind, Refusal):
        return kind
    return Accepted(text=raw.decode("utf-8"), body=body, kind=kind)


def _is_ssl_check(raw: bytes) -> bool:
    """Slack's SSL check: a tiny form with ``ssl_check=1`` (and its token), nothing else."""
    if len(raw) > 256 or not raw.startswith((b"ssl_check=1", b"token=")):
        return False
    try:
        fields = dict(parse_qsl(raw.decode("ascii"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return False
    return fields.get("ssl_check") == "1" and set(fields) <= {"ssl_check", "token"}


def command_key(body: Mapping[str, Any], raw: str) -> str:
    """The key a slash command is handled once under: its trigger_id, else the body's digest."""
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        return "command:" + trigger
    return "command-body:" + hashlib.sha256(raw.encode()).hexdigest()
