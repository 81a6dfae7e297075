"""Builds the SFMC adapters (automations and journeys) of one ``sfmc:`` section."""

from __future__ import annotations

from bot.domain.models import TargetKind
from bot.service.ports import Provider
from providers.factory import BuildContext
from providers.http import CallLimit
from providers.sfmc.auth import TokenProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.config import BusinessUnit, SfmcSettings
from providers.sfmc.journeys import SfmcJourneyProvider
from providers.sfmc.snapshots import (
    InMemoryScheduleSnapshots,
    JsonFileScheduleSnapshots,
    ScheduleSnapshots,
)
from providers.units import business_units


def build(sfmc: SfmcSettings, ctx: BuildContext) -> dict[TargetKind, Provider]:
    """Each business unit: its token, its pooled :class:`CallLimit` (appended to
    ``ctx.limits``) and where schedules are kept (``snapshot_file`` wins over the bot's
    database; in memory when neither is given; keyed by MID). Several units are put
    together per kind (:mod:`providers.units`): keys are qualified by the unit's name."""
    kept: ScheduleSnapshots = (
        JsonFileScheduleSnapshots(sfmc.snapshot_file)
        if sfmc.snapshot_file
        else ctx.snapshots or InMemoryScheduleSnapshots()
    )
    units = sfmc.units()
    if len(units) == 1:
        return _unit(units[0], ctx, kept)
    built = {unit.name or str(unit.account_id): _unit(unit, ctx, kept) for unit in units}
    return {
        kind: business_units(ctx.environment, {name: p[kind] for name, p in built.items()})
        for kind in (TargetKind.AUTOMATION, TargetKind.JOURNEY)
    }


def _unit(
    unit: BusinessUnit, ctx: BuildContext, kept: ScheduleSnapshots
) -> dict[TargetKind, Provider]:
    tokens = TokenProvider(
        auth_url=unit.auth_url,
        client_id=unit.client_id,
        client_secret=unit.client_secret,
        account_id=unit.account_id,
        http=ctx.http,
    )
    limit = CallLimit.pooled(unit.max_concurrent_calls, event_hooks=ctx.http.event_hooks)
    ctx.limits.append(limit)
    return {
        TargetKind.AUTOMATION: SfmcAutomationProvider(
            environment=ctx.environment, tokens=tokens, http=ctx.http, snapshots=kept, limit=limit
        ),
        TargetKind.JOURNEY: SfmcJourneyProvider(
            environment=ctx.environment, tokens=tokens, http=ctx.http, limit=limit
        ),
    }
