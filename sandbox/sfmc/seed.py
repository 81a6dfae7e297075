"""Demo data: one installed package with a staging and a production business unit.

Both BUs get the same realistic estate (their ids differ), including near-duplicate names
for "did you mean" and a journey key with a slash.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sandbox.sfmc.schedule import Schedule

if TYPE_CHECKING:
    from sandbox.sfmc.app import SfmcEmulator

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
STAGING_MID = 5100001
PROD_MID = 5100002
MIDS = (STAGING_MID, PROD_MID)


def _daily(hour: int, start: datetime) -> Schedule:
    return Schedule(
        "Daily",
        start=start.replace(hour=hour, minute=0, second=0, microsecond=0),
        end=datetime(2079, 6, 6, 8, 0),
    )


def seed(emulator: SfmcEmulator) -> None:
    emulator.add_account(CLIENT_ID, CLIENT_SECRET, list(MIDS))
    for mid in MIDS:
        _seed_automations(emulator, mid)
        _seed_journeys(emulator, mid)


def _seed_automations(emu: SfmcEmulator, mid: int) -> None:
    start = datetime(2024, 1, 8)
    forever = datetime(2079, 6, 6, 8, 0)
    hourly = Schedule("Hourly", start=start, end=forever)
    weekly = Schedule("Weekly", start=start.replace(hour=6), weekdays=("Monday",), end=forever)
    monthly = Schedule(
        "Monthly",
        start=start.replace(hour=2),
        pattern_type="ByDay",
        scheduled_day=1,
        range_type="EndAfter",
        occurrences=36,
    )
    rows: list[tuple[str, str, int, str, Schedule | None]] = [
        ("daily-welcome-send", "Daily Welcome Email Send", 6,
         "Sends the welcome email to yesterday's sign-ups", _daily(7, start)),
        ("daily-welcome-resend", "Daily Welcome Email Resend", 6,
         "Resends the welcome email to non-openers", _daily(19, start)),
        ("daily-welcome-send-test", "Daily Welcome Email Send - Test", 5,
         "QA copy of the welcome send", _daily(8, start)),
        ("hourly-lead-sync", "Hourly Lead Sync", 6, "Imports new leads from the CRM", hourly),
        ("weekly-newsletter", "Weekly Newsletter Build", 4,
         "Builds and sends the Monday newsletter", weekly),
        ("abandoned-cart-import", "Abandoned Cart Import", 7,
         "File drop: abandoned carts from the shop", None),
        ("partner-feed-trigger", "Partner Feed Import", 8,
         "File drop from the partner SFTP (disabled)", None),
        ("monthly-data-cleanup", "Monthly Data Cleanup", 2,
         "Purges expired data extension rows", monthly),
        ("nightly-crm-export", "Nightly CRM Export", 3,
         "Exports engagement data to the CRM", _daily(1, start)),
        ("legacy-sms-sync", "Legacy SMS Sync", -1, "Old SMS opt-in sync (errored)", None),
    ]  # fmt: skip
    for key, name, status, description, schedule in rows:
        kind = "triggered" if status in (7, 8) else "scheduled"
        emu.add_automation(
            mid,
            key=key,
            name=name,
            status=status,
            description=description,
            automation_type=kind,
            schedule=schedule,
        )


def _seed_journeys(emu: SfmcEmulator, mid: int) -> None:
    rows: list[tuple[str, str, tuple[str, ...], int, str]] = [
        ("welcome-series", "Welcome Series", ("Unpublished", "Published", "Published"), 5400,
         "Three-email onboarding for new subscribers"),
        ("welcome-series-es", "Welcome Series - Spanish", ("Published",), 610,
         "Onboarding for Spanish-speaking subscribers"),
        ("cart-abandonment", "Cart Abandonment", ("Published",), 1240,
         "Reminds shoppers about items left in the cart"),
        ("cart-abandonment-reminder", "Cart Abandonment Reminder", ("Published",), 85,
         "Second nudge after 72 hours"),
        ("winback-q4", "Winback Q4", ("Stopped", "Paused"), 2300,
         "Re-engages lapsed customers"),
        ("birthday-offer", "Birthday Offer", ("Draft",), 0, "Birthday coupon"),
        ("promo/black-friday", "Black Friday Promo", ("Published",), 9800,
         "Black Friday countdown emails"),
        ("spring-sale-2024", "Spring Sale 2024", ("Stopped",), 0, "Ended seasonal promotion"),
    ]  # fmt: skip
    for key, name, versions, population, description in rows:
        emu.add_journey(
            mid,
            key=key,
            name=name,
            versions=versions,
            population=population,
            description=description,
            guardrail_action="resume",
            paused_at=emu.clock.now() - timedelta(days=2),
        )
