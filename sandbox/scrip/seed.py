"""Demo data for the scrip emulator: one organisation, one loyalty program, ten automations.

Ids are fixed so docs, tests and local try-outs can name them. Times are relative to the
emulator clock at seeding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SANDBOX_ORG_ID = "0c9d7e3a-5b1f-4f0e-8a2d-6b7c8d9e0f11"
SANDBOX_API_KEY = "sk_sandbox_key"
SANDBOX_PROGRAM_ID = "6f1c2a9e-0b7d-4c55-9a11-3e2f5b8c7d10"
SANDBOX_PROGRAM_NAME = "Loyalty Rewards"


@dataclass(frozen=True)
class SeedAutomation:
    id: str
    name: str
    trigger_type: str
    scope: str
    event_name: str
    age: timedelta
    status: str = "active"
    description: str | None = None
    cron_expression: str | None = None
    execution_status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


NIGHTLY_POINTS_EXPIRY = "a1f0c6d2-3b4e-4c5d-8e6f-101010101001"
WEEKLY_TIER_RECALC = "a1f0c6d2-3b4e-4c5d-8e6f-101010101002"
DOUBLE_POINTS_WEEKEND = "a1f0c6d2-3b4e-4c5d-8e6f-101010101003"
BIRTHDAY_BONUS = "a1f0c6d2-3b4e-4c5d-8e6f-101010101004"
STREAK_REMINDER_FANOUT = "a1f0c6d2-3b4e-4c5d-8e6f-101010101005"
SPRING_PROMO_KICKOFF = "a1f0c6d2-3b4e-4c5d-8e6f-101010101006"
TIER_UPGRADE_WATCHER = "a1f0c6d2-3b4e-4c5d-8e6f-101010101007"
LEGACY_SIGNUP_BONUS = "a1f0c6d2-3b4e-4c5d-8e6f-101010101008"
MONTHLY_STATEMENT = "a1f0c6d2-3b4e-4c5d-8e6f-101010101009"
WELCOME_POINTS = "a1f0c6d2-3b4e-4c5d-8e6f-101010101010"

SEED_AUTOMATIONS: tuple[SeedAutomation, ...] = (
    SeedAutomation(
        id=NIGHTLY_POINTS_EXPIRY,
        name="Nightly Points Expiry",
        trigger_type="cron",
        scope="program",
        event_name="points.expire",
        cron_expression="0 2 * * *",
        description="Expires points older than 12 months every night.",
        age=timedelta(days=180),
    ),
    SeedAutomation(
        id=WEEKLY_TIER_RECALC,
        name="Weekly Tier Recalculation",
        trigger_type="cron",
        scope="program",
        event_name="tier.recalculate",
        cron_expression="0 6 * * 1",
        age=timedelta(days=150),
    ),
    SeedAutomation(
        id=DOUBLE_POINTS_WEEKEND,
        name="Double Points Weekend",
        trigger_type="cron",
        scope="program",
        event_name="promo.double_points",
        cron_expression="0 0 * * 6",
        status="paused",
        extra={"payload": {"multiplier": "2"}},
        age=timedelta(days=120),
    ),
    SeedAutomation(
        id=BIRTHDAY_BONUS,
        name="Birthday Bonus",
        trigger_type="cron",
        scope="participants",
        event_name="bonus.birthday",
        cron_expression="0 9 * * *",
        execution_status="idle",
        extra={"participant_filter": "participant.attributes.birthday_today == true"},
        age=timedelta(days=100),
    ),
    SeedAutomation(
        id=STREAK_REMINDER_FANOUT,
        name="Streak Reminder Fanout",
        trigger_type="cron",
        scope="participants",
        event_name="reminder.streak",
        cron_expression="0 18 * * *",
        execution_status="executing",
        extra={"participants_total": 5000, "participants_processed": 1800},
        age=timedelta(days=80),
    ),
    SeedAutomation(
        id=SPRING_PROMO_KICKOFF,
        name="Spring Promo Kickoff",
        trigger_type="one_time",
        scope="program",
        event_name="promo.spring_kickoff",
        status="completed",
        age=timedelta(days=60),
    ),
    SeedAutomation(
        id=TIER_UPGRADE_WATCHER,
        name="Tier Upgrade Watcher",
        trigger_type="participant_state",
        scope="participants",
        event_name="tier.upgrade",
        execution_status="idle",
        extra={
            "schedule_type": "THRESHOLD",
            "schedule_config": {"attribute": "lifetime_points", "threshold": "5000"},
        },
        age=timedelta(days=45),
    ),
    SeedAutomation(
        id=LEGACY_SIGNUP_BONUS,
        name="Legacy Signup Bonus",
        trigger_type="immediate",
        scope="participants",
        event_name="bonus.signup_legacy",
        status="archived",
        execution_status="completed",
        age=timedelta(days=30),
    ),
    SeedAutomation(
        id=MONTHLY_STATEMENT,
        name="Monthly Points Statement",
        trigger_type="cron",
        scope="program",
        event_name="statement.monthly",
        cron_expression="0 8 1 * *",
        age=timedelta(days=20),
    ),
    SeedAutomation(
        id=WELCOME_POINTS,
        name="Welcome Points Drip",
        trigger_type="immediate",
        scope="participants",
        event_name="bonus.welcome",
        execution_status="completed",
        age=timedelta(days=10),
    ),
)


def seed_times(now: datetime, item: SeedAutomation) -> dict[str, datetime]:
    created = now - item.age
    return {"created_at": created, "updated_at": created + timedelta(days=1)}
