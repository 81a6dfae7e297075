"""Emulator settings that are not failure knobs (those live in :mod:`sandbox.knobs`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmulatorSettings(BaseModel):
    """Settable from Python (``emulator.settings``) or ``POST /_sandbox/settings``."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    page_size: int = Field(default=2500, ge=1, description="SOAP Retrieve rows per page")
    run_duration_s: float = Field(default=60, ge=0, description="How long a Perform start runs")
    rest_rate_limit_errorcode: Literal[50100, 50200] = Field(
        default=50100,
        description="REST throttling flavour: 50100 (Retry-After) or 50200 (temporarily blocked)",
    )
    max_concurrent_calls_per_mid: int | None = Field(
        default=20,
        ge=1,
        description="Calls in flight per business unit (MID) at once; more are throttled"
        " like SFMC throttles (None: no limit)",
    )
    rest_5xx_status: Literal[500, 503] = Field(
        default=500, description="REST server-error flavour: 500, or 503 with errorcode 50300"
    )
