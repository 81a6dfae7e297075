"""A marketing campaign's worth of targets with one name prefix, for bulk requests.

The default seeds keep their counts (tests read them); tests, benchmarks and try-outs that
need many targets matching one pattern (``pause prod/*:bf25-*``) add a campaign:
automations in each given business unit, journeys, and scrip automations, all named
``<prefix>-...`` and active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sandbox.scrip import ScripEmulator
from sandbox.sfmc import SfmcEmulator
from sandbox.sfmc.schedule import Schedule


@dataclass
class Campaign:
    """What :func:`add_campaign` added: automation and journey keys, scrip ids."""

    automations: dict[int, list[str]] = field(default_factory=dict)
    journeys: dict[int, list[str]] = field(default_factory=dict)
    scrip: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            sum(len(v) for v in self.automations.values())
            + sum(len(v) for v in self.journeys.values())
            + len(self.scrip)
        )


def add_campaign(
    sfmc: SfmcEmulator,
    scrip: ScripEmulator | None,
    *,
    prefix: str = "bf25",
    mids: tuple[int, ...],
    automations: int = 10,
    journeys: int = 5,
    scrip_automations: int = 5,
) -> Campaign:
    """Add active targets named ``<prefix>-...`` (automations and journeys in each MID of
    ``mids``, scrip automations in the sandbox program)."""
    added = Campaign()
    start = datetime(2024, 1, 8, 9, 0)
    for mid in mids:
        added.automations[mid] = []
        for n in range(1, automations + 1):
            key = f"{prefix}-send-{n:03d}"
            sfmc.add_automation(
                mid,
                key=key,
                name=f"{prefix.upper()} Send {n:03d}",
                status=6,
                description=f"{prefix} campaign send {n}",
                schedule=Schedule("Daily", start=start, end=datetime(2079, 6, 6, 8, 0)),
            )
            added.automations[mid].append(key)
        added.journeys[mid] = []
        for n in range(1, journeys + 1):
            key = f"{prefix}-journey-{n:03d}"
            sfmc.add_journey(mid, key=key, name=f"{prefix.upper()} Journey {n:03d}")
            added.journeys[mid].append(key)
    if scrip is not None:
        for n in range(1, scrip_automations + 1):
            created = scrip.add_automation(name=f"{prefix.upper()} Points {n:03d}")
            added.scrip.append(str(created["id"]))
    return added
