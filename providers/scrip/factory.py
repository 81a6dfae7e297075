"""Builds the scrip adapter of one ``scrip:`` section."""

from __future__ import annotations

from bot.domain.models import TargetKind
from bot.service.ports import Provider
from providers.factory import BuildContext
from providers.scrip.config import ScripSettings
from providers.scrip.provider import ScripProvider


def build(scrip: ScripSettings, ctx: BuildContext) -> dict[TargetKind, Provider]:
    return {
        TargetKind.SCRIP: ScripProvider(
            environment=ctx.environment,
            base_url=str(scrip.base_url),
            api_key=scrip.api_key,
            program_id=scrip.program_id,
            http=ctx.http,
        )
    }
