"""scrip.dev automations: pause/resume by PATCH, run by trigger, stop by cancel (never DELETE)."""

from providers.scrip.provider import ScripProvider
from providers.scrip.ratelimit import TokenBucket

__all__ = ["ScripProvider", "TokenBucket"]
