"""Data the Slack emulator keeps: directory (users, groups, channels), settings, records."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

SANDBOX_TEAM_ID = "T0SANDBOX"
SANDBOX_TEAM_DOMAIN = "sandbox"
SANDBOX_TEAM_NAME = "Sandbox"
SANDBOX_BOT_TOKEN = "xoxb-sandbox"
SANDBOX_APP_TOKEN = "xapp-sandbox"  # app-level token (Socket Mode: apps.connections.open)
SANDBOX_SIGNING_SECRET = "sandbox-signing-secret"
SANDBOX_VERIFICATION_TOKEN = "sandbox-verification-token"
SANDBOX_APP_ID = "A0SANDBOX"
SANDBOX_BOT_ID = "B0SANDBOX"
SANDBOX_BOT_USER_ID = "U0BOT"
SANDBOX_BOT_NAME = "automation-bot"


class SlackSettings(BaseModel):
    """Behaviour switches (``POST /_sandbox/settings``); limits follow reference §2."""

    rate_limits_enabled: bool = Field(
        default=True,
        description=(
            "The one switch for Slack's rate limits: the tier budget of every method, the "
            "workspace-wide chat.postMessage cap and its ~1 message/s per channel"
        ),
    )
    # Per method, per workspace (sandbox/slack/ratelimits.py maps each method to its tier):
    # a token bucket refilled at ``*_per_min`` per minute, holding ``*_burst`` at most.
    tier1_per_min: float = Field(default=1.0, gt=0, description="Tier 1 (1+ per minute)")
    tier1_burst: int = Field(default=2, ge=1)
    tier2_per_min: float = Field(default=20.0, gt=0, description="Tier 2 (20+ per minute)")
    tier2_burst: int = Field(default=5, ge=1)
    tier3_per_min: float = Field(default=50.0, gt=0, description="Tier 3 (50+ per minute)")
    tier3_burst: int = Field(default=10, ge=1)
    tier4_per_min: float = Field(default=100.0, gt=0, description="Tier 4 (100+ per minute)")
    tier4_burst: int = Field(default=20, ge=1)
    post_message_workspace_per_min: float = Field(
        default=300.0,
        gt=0,
        description="chat.postMessage across all channels (Slack publishes no figure)",
    )
    post_message_workspace_burst: int = Field(default=30, ge=1)
    post_message_per_s: float = Field(default=1.0, gt=0, description="Per channel refill")
    post_message_burst: int = Field(default=3, ge=1, description="Per channel burst")
    trigger_ttl_s: float = Field(default=3.0, gt=0, description="trigger_id lifetime")
    response_url_max_uses: int = Field(default=5, ge=1)
    response_url_ttl_s: float = Field(default=1800.0, gt=0)
    usergroups_enabled: bool = Field(
        default=True, description="False: usergroups.* answer plan_upgrade_required (free plan)"
    )
    auto_create_channels: bool = Field(
        default=True, description="Unknown C…/G… ids are created on first use, else not found"
    )


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str = ""
    tz: str = "Europe/London"
    email: str | None = None
    is_admin: bool = False
    is_bot: bool = False
    deleted: bool = False


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str] = field(default_factory=list)
    name: str = ""
    disabled_users: list[str] = field(default_factory=list)


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    user: str | None = None  # the other party of a DM
    created: int = 1_700_000_000


@dataclass
class SlackCall:
    """One Web API call as the emulator saw it (``args`` has decoded JSON fields)."""

    method: str
    args: dict[str, Any]
    at: datetime
    status: int
    ok: bool
    error: str | None
    response: dict[str, Any] | None
    token: str | None = None
    knob: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass
class ViewRecord:
    """A modal or Home tab as Slack holds it; ``view`` is what the API returns."""

    id: str
    user: str
    view: dict[str, Any]
    opened_at: datetime
    open: bool = True

    @property
    def type(self) -> str:
        return str(self.view.get("type", ""))

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.view)


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: datetime
    used: bool = False
    source: str = ""


@dataclass
class ResponseUrl:
    id: str
    channel: str
    user: str
    issued_at: datetime
    message_ts: str | None = None
    source: str = ""
    uses: int = 0
    payloads: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ResponsePost:
    """One POST to a response_url (accepted or refused)."""

    response_url_id: str
    at: datetime
    status: int
    payload: dict[str, Any] | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def default_users() -> list[SlackUser]:
    return [
        SlackUser("U0ALICE", "alice", "Alice Operator", "Europe/London", "alice@example.com"),
        SlackUser("U0BOB", "bob", "Bob Approver", "America/New_York", "bob@example.com"),
        SlackUser("U0CAROL", "carol", "Carol Approver", "Europe/Berlin", "carol@example.com"),
        SlackUser("U0DAVE", "dave", "Dave Viewer", "Asia/Tokyo", "dave@example.com"),
        SlackUser("U0ADMIN", "admin", "Ada Admin", "UTC", "admin@example.com", is_admin=True),
        SlackUser(SANDBOX_BOT_USER_ID, SANDBOX_BOT_NAME, "Automation Bot", "UTC", is_bot=True),
    ]


def default_usergroups() -> list[Usergroup]:
    return [
        Usergroup("S0APPROVERS", "automation-approvers", ["U0BOB", "U0CAROL"], "Approvers"),
        Usergroup("S0OPERATORS", "automation-operators", ["U0ALICE", "U0BOB"], "Operators"),
        Usergroup("S0ADMINS", "automation-admins", ["U0ADMIN"], "Admins"),
    ]


def default_channels() -> list[Channel]:
    return [
        Channel("C0OPS", "automation-ops"),
        Channel("C0APPROVALS", "automation-approvals"),
        Channel("C0GENERAL", "general"),
        Channel("G0PRIVATE", "automation-private", is_private=True),
    ]
