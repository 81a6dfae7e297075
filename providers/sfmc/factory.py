"""Builds the SFMC adapters (automations and journeys) of one ``sfmc:`` section."""

from __future__ import annotations

from bot.domain.models import TargetKind
from bot.service.ports import Provider
from providers.factory import BuildContext
from providers.http import CallLimit
from providers.sfmc.auth import TokenProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.config import SfmcSettings
from providers.sfmc.journeys import SfmcJourneyProvider
from providers.sfmc.snapshots import (
    InMemoryScheduleSnapshots,
    JsonFileScheduleSnapshots,
    ScheduleSnapshots,
)


def build(sfmc: SfmcSettings, ctx: BuildContext) -> dict[TargetKind, Provider]:
    """One business unit: its token, its pooled :class:`CallLimit` (appended to
    ``ctx.limits``) and where schedules are kept (``snapshot_file`` wins over the bot's
    database; in memory when neither is given)."""
    tokens = TokenProvider(
        auth_url=str(sfmc.auth_url),
        client_id=sfmc.client_id,
        client_secret=sfmc.client_secret,
        account_id=sfmc.account_id,
        http=ctx.http,
    )
    kept: ScheduleSnapshots = (
        JsonFileScheduleSnapshots(sfmc.snapshot_file)
        if sfmc.snapshot_file
        else ctx.snapshots or InMemoryScheduleSnapshots()
    )
    limit = CallLimit.pooled(sfmc.max_concurrent_calls, event_hooks=ctx.http.event_hooks)
    ctx.limits.append(limit)
    return {
        TargetKind.AUTOMATION: SfmcAutomationProvider(
            environment=ctx.environment, tokens=tokens, http=ctx.http, snapshots=kept, limit=limit
        ),
        TargetKind.JOURNEY: SfmcJourneyProvider(
            environment=ctx.environment, tokens=tokens, http=ctx.http, limit=limit
        ),
    }
