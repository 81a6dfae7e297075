"""The automation adapter on the full partner WSDL, and what goes on the wire.

The full WSDL (``etframework.wsdl``: the file ``AUTOMATION_BOT_PARTNER_WSDL`` names, else
``sfmc/etframework.wsdl`` in a directory beside the checkout) imports a fault schema from
the internet; it must load offline (the test network guard would fail any
outside connection) and drive the emulator exactly like the project's minimal WSDL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from pydantic import SecretStr

from bot.domain.models import NormalState, PauseOptions, VersionSelector
from providers.sfmc.auth import TokenProvider
from providers.sfmc.automations import SfmcAutomationProvider
from providers.sfmc.soap import FAULT_XSD_URL, OfflineLoader, default_wsdl_path, load_document
from sandbox.clock import Clock
from sandbox.server import ServerThread
from sandbox.sfmc import CLIENT_ID, CLIENT_SECRET, STAGING_MID, SfmcEmulator
from sandbox.sfmc import Schedule as EmuSchedule

PARTNER_WSDL_ENV = "AUTOMATION_BOT_PARTNER_WSDL"


def partner_wsdl() -> Path | None:
    """The full partner WSDL: ``$AUTOMATION_BOT_PARTNER_WSDL``, else the first
    ``sfmc/etframework.wsdl`` in a directory beside the checkout."""
    named = os.environ.get(PARTNER_WSDL_ENV)
    if named:
        return Path(named)
    beside = Path(__file__).resolve().parents[2].parent
    return next(iter(sorted(beside.glob("*/sfmc/etframework.wsdl"))), None)


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALL = VersionSelector()
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _wsdl(name: str) -> Path | None:
    if name == "own":
        return None
    path = partner_wsdl()
    if path is None or not path.is_file():
        pytest.skip(
            f"the full partner WSDL was not found (set {PARTNER_WSDL_ENV}, or put "
            "sfmc/etframework.wsdl in a directory beside the checkout)"
        )
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SfmcEmulator, str]]:
    emulator = SfmcEmulator(clock=Clock(frozen_at=T0))
    with ServerThread(emulator.app) as thread:
        yield emulator, thread.url


@pytest.fixture
def emu(server: tuple[SfmcEmulator, str]) -> Iterator[SfmcEmulator]:
    emulator, _ = server
    emulator.clock.freeze(T0)
    emulator.reset()
    emulator.add_automation(
        STAGING_MID,
        key="bot-daily",
        name="Bot Daily Send",
        status=6,
        schedule=EmuSchedule(
            "Daily",
            start=datetime(2024, 1, 8, 7, 0),
            end=datetime(2079, 6, 6, 8, 0),
            timezone_id=5,
        ),
    )
    yield emulator
    emulator.knobs.reset()


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
async def http(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), trust_env=False, event_hooks={"request": [record]}
    ) as client:
        yield client


def _provider(
    emu: SfmcEmulator, url: str, http: httpx.AsyncClient, wsdl: Path | None
) -> SfmcAutomationProvider:
    tokens = TokenProvider(
        auth_url=url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        account_id=STAGING_MID,
        http=http,
    )
    return SfmcAutomationProvider(
        environment="staging",
        tokens=tokens,
        http=http,
        wsdl_path=wsdl,
        clock=emu.clock.now,
        backoff=0.0,
    )


def _envelopes(sent: list[httpx.Request], action: str) -> list[Any]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return [
        etree.fromstring(r.content, parser)
        for r in sent
        if r.url.path.endswith("/Service.asmx") and r.headers.get("soapaction") == f'"{action}"'
    ]


def test_the_partner_wsdl_loads_offline() -> None:
    path = _wsdl("partner")
    assert path is not None
    document = load_document(path)
    binding = document.bindings[f"{{{PARTNER}}}SoapBinding"]
    assert {"Retrieve", "Perform", "Schedule"} <= set(binding._operations)


def test_the_offline_loader_stubs_the_fault_schema_and_refuses_the_rest() -> None:
    loader = OfflineLoader()
    stub = etree.fromstring(loader.load(FAULT_XSD_URL))
    assert stub.get("targetNamespace") == "urn:fault.partner.exacttarget.com"
    with pytest.raises(OSError, match="offline"):
        loader.load("https://webservice.exacttarget.com/etframework.wsdl")
    assert loader.load(str(default_wsdl_path())).startswith(b"<?xml")


@pytest.mark.parametrize("wsdl", ["own", "partner"])
async def test_every_verb_works_unchanged(
    wsdl: str, emu: SfmcEmulator, server: tuple[SfmcEmulator, str], http: httpx.AsyncClient
) -> None:
    provider = _provider(emu, server[1], http, _wsdl(wsdl))

    state = await provider.get("bot-daily")
    assert (state.state, state.raw_status) == (NormalState.ACTIVE, "6 Scheduled")
    assert state.schedule is not None

    paused = await provider.pause(state, options=PauseOptions(), versions=ALL)
    assert paused.request_id
    assert emu.automation(STAGING_MID, "bot-daily").status == 4

    state = await provider.get("bot-daily")
    resumed = await provider.resume(state, versions=ALL)
    assert resumed.message == "Program scheduled."
    after = emu.automation(STAGING_MID, "bot-daily")
    assert after.status == 6
    assert after.schedule is not None
    assert after.schedule.ical_recur() == "FREQ=DAILY;UNTIL=20790606T080000;INTERVAL=1"
    assert after.schedule.start == datetime(2026, 3, 3, 7, 0)

    state = await provider.get("bot-daily")
    ran = await provider.run(state)
    assert ran.message == "Performed Activity"
    assert emu.automation(STAGING_MID, "bot-daily").status == 3

    state = await provider.get("bot-daily")
    stopped = await provider.stop(state, versions=ALL)
    assert stopped.request_id
    assert emu.automation(STAGING_MID, "bot-daily").status == 5


@pytest.mark.parametrize("wsdl", ["own", "partner"])
async def test_rendered_envelopes(
    wsdl: str,
    emu: SfmcEmulator,
    server: tuple[SfmcEmulator, str],
    http: httpx.AsyncClient,
    sent: list[httpx.Request],
) -> None:
    provider = _provider(emu, server[1], http, _wsdl(wsdl))
    state = await provider.get("bot-daily")
    await provider.pause(state, options=PauseOptions(), versions=ALL)
    await provider.resume(await provider.get("bot-daily"), versions=ALL)
    await provider.run(await provider.get("bot-daily"))

    (pause,) = [
        e for e in _envelopes(sent, "Schedule") if e.findtext(f".//{{{PARTNER}}}Action") == "pause"
    ]
    token = pause.find(f"{{{SOAP_ENV}}}Header/{{http://exacttarget.com}}fueloauth")
    assert token is not None
    assert token.text
    msg = pause.find(f"{{{SOAP_ENV}}}Body/{{{PARTNER}}}ScheduleRequestMsg")
    schedule = msg.find(f"{{{PARTNER}}}Schedule")
    assert schedule is not None
    assert len(schedule) == 0  # <Schedule/>
    assert not (schedule.text or "").strip()
    interaction = msg.find(f"{{{PARTNER}}}Interactions/{{{PARTNER}}}Interaction")
    prefix, _, name = interaction.get(XSI_TYPE).rpartition(":")
    assert (interaction.nsmap.get(prefix or None), name) == (PARTNER, "Automation")
    assert interaction.findtext(f"{{{PARTNER}}}ObjectID") == state.target.id

    (start,) = [
        e for e in _envelopes(sent, "Schedule") if e.findtext(f".//{{{PARTNER}}}Action") == "start"
    ]
    definition = start.find(f".//{{{PARTNER}}}ScheduleRequestMsg/{{{PARTNER}}}Schedule")
    recurrence = definition.find(f"{{{PARTNER}}}Recurrence")
    assert recurrence.get(XSI_TYPE).endswith(":DailyRecurrence")
    assert recurrence.findtext(f"{{{PARTNER}}}DailyRecurrencePatternType") == "Interval"
    assert recurrence.findtext(f"{{{PARTNER}}}DayInterval") == "1"
    assert definition.findtext(f"{{{PARTNER}}}RecurrenceType") == "Daily"
    assert definition.findtext(f"{{{PARTNER}}}RecurrenceRangeType") == "EndOn"
    assert definition.findtext(f"{{{PARTNER}}}StartDateTime") == "2026-03-03T07:00:00"
    assert definition.findtext(f"{{{PARTNER}}}EndDateTime") == "2079-06-06T08:00:00"
    assert definition.findtext(f"{{{PARTNER}}}TimeZone/{{{PARTNER}}}ID") == "5"

    (perform,) = _envelopes(sent, "Perform")
    assert perform.findtext(f".//{{{PARTNER}}}PerformRequestMsg/{{{PARTNER}}}Action") == "start"
    definition = perform.find(f".//{{{PARTNER}}}Definitions/{{{PARTNER}}}Definition")
    assert definition.get(XSI_TYPE).endswith(":Automation")
    assert all(
        r.headers["content-type"].startswith("text/xml") for r in sent if "Service" in r.url.path
    )
