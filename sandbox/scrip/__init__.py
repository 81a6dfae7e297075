"""A local emulator of the scrip.dev automations API (see ``reference/scrip.md``)."""

from sandbox.scrip.emulator import CANCEL_REFUSED, TRIGGER_REFUSED, ApiError, Call, ScripEmulator
from sandbox.scrip.model import EmulatorOptions
from sandbox.scrip.seed import (
    SANDBOX_API_KEY,
    SANDBOX_ORG_ID,
    SANDBOX_PROGRAM_ID,
    SANDBOX_PROGRAM_NAME,
)

__all__ = [
    "CANCEL_REFUSED",
    "SANDBOX_API_KEY",
    "SANDBOX_ORG_ID",
    "SANDBOX_PROGRAM_ID",
    "SANDBOX_PROGRAM_NAME",
    "TRIGGER_REFUSED",
    "ApiError",
    "Call",
    "EmulatorOptions",
    "ScripEmulator",
]
