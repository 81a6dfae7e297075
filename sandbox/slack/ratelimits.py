"""Slack's Web API rate limits as the emulator enforces them (reference §2.6).

Slack budgets each method per app per workspace by *tier*: Tier 1 about 1 call a minute,
Tier 2 about 20, Tier 3 about 50, Tier 4 about 100, each with a modest burst.
``chat.postMessage`` is special: about one message a second per channel with short bursts
(the per-channel bucket in the emulator), plus a workspace-wide cap. Over budget, Slack
answers HTTP 429 with ``Retry-After`` in whole seconds and ``{"ok": false, "error":
"ratelimited"}``.

:data:`METHOD_TIERS` is the one table of which tier every method the emulator serves is in;
the rates and bursts are :class:`~sandbox.slack.model.SlackSettings` fields, so a test (or
``POST /_sandbox/settings``) can turn them up, down or off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sandbox.scrip.ratelimit import BucketReading, TokenBucket
from sandbox.slack.model import SlackSettings


class Tier(StrEnum):
    TIER1 = "tier1"
    TIER2 = "tier2"
    TIER3 = "tier3"
    TIER4 = "tier4"
    #: chat.postMessage: the workspace-wide cap (its per-channel pace is separate).
    POST_MESSAGE = "post_message_workspace"


#: Every Web API method the emulator serves, and its tier. Sources: each method's page on
#: docs.slack.dev ("Rate Limits"), cross-checked with the method JSON of slack-api-ref.
METHOD_TIERS: dict[str, Tier] = {
    "api.test": Tier.TIER4,
    "apps.connections.open": Tier.TIER1,
    # "Special: hundreds of requests per minute"; budgeted as Tier 4, its lower bound.
    "auth.test": Tier.TIER4,
    "chat.postMessage": Tier.POST_MESSAGE,
    "chat.update": Tier.TIER3,
    "chat.postEphemeral": Tier.TIER4,
    # "Special rate limits apply" with no figure; budgeted as Tier 4.
    "chat.getPermalink": Tier.TIER4,
    "views.open": Tier.TIER4,
    "views.update": Tier.TIER4,
    "views.publish": Tier.TIER4,
    "reactions.get": Tier.TIER3,
    "reactions.add": Tier.TIER3,
    "usergroups.users.list": Tier.TIER2,
    "users.info": Tier.TIER4,
    "conversations.info": Tier.TIER3,
    "conversations.history": Tier.TIER3,
    "conversations.replies": Tier.TIER3,
}


@dataclass(frozen=True)
class Budget:
    per_min: float
    burst: int

    @property
    def per_s(self) -> float:
        return self.per_min / 60.0


def budget(settings: SlackSettings, tier: Tier) -> Budget:
    """The rate and burst ``settings`` give ``tier``."""
    match tier:
        case Tier.TIER1:
            return Budget(settings.tier1_per_min, settings.tier1_burst)
        case Tier.TIER2:
            return Budget(settings.tier2_per_min, settings.tier2_burst)
        case Tier.TIER3:
            return Budget(settings.tier3_per_min, settings.tier3_burst)
        case Tier.TIER4:
            return Budget(settings.tier4_per_min, settings.tier4_burst)
        case Tier.POST_MESSAGE:
            return Budget(
                settings.post_message_workspace_per_min, settings.post_message_workspace_burst
            )


class TierLimiter:
    """One token bucket per method (per workspace: the emulator is one workspace, one app).

    Not thread-safe: the emulator calls it under its own lock. A bucket whose budget the
    settings changed starts again, full, at the new budget.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[Budget, TokenBucket]] = {}

    def take(self, method: str, settings: SlackSettings, now: datetime) -> BucketReading | None:
        """Spend one call of ``method``'s budget; ``None`` when the method is not limited."""
        tier = METHOD_TIERS.get(method)
        if tier is None or not settings.rate_limits_enabled:
            return None
        wanted = budget(settings, tier)
        held = self._buckets.get(method)
        if held is None or held[0] != wanted:
            held = (wanted, TokenBucket(rate=wanted.per_s, burst=wanted.burst, now=now))
            self._buckets[method] = held
        return held[1].take(now)

    def clear(self) -> None:
        self._buckets.clear()
