"""A stateful SFMC emulator: OAuth2, the SOAP partner API, Journey and Automation REST.

``SfmcEmulator().app`` is a Starlette app; serve it with :class:`sandbox.server.ServerThread`.
The wire choices it makes where the reference is silent are listed in ``README.md`` here.
"""

from sandbox.sfmc.app import CallRecord, SfmcEmulator
from sandbox.sfmc.schedule import Schedule
from sandbox.sfmc.seed import CLIENT_ID, CLIENT_SECRET, PROD_MID, STAGING_MID
from sandbox.sfmc.settings import EmulatorSettings
from sandbox.sfmc.state import Account, Automation, JourneyPause, JourneyVersion

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "PROD_MID",
    "STAGING_MID",
    "Account",
    "Automation",
    "CallRecord",
    "EmulatorSettings",
    "JourneyPause",
    "JourneyVersion",
    "Schedule",
    "SfmcEmulator",
]
