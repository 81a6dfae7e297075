"""An automation's schedule: what SOAP ``Schedule start`` stores and REST reads show.

Schedule times are naive wall-clock times in the schedule's own time zone (``TimeZone/ID``),
exactly as SFMC stores them. Pure data: parsing from XML is in :mod:`sandbox.sfmc.soap`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: ``Recurrence`` xsi:type -> (RecurrenceType, interval element, pattern element).
RECURRENCE_TYPES: dict[str, tuple[str, str, str]] = {
    "MinutelyRecurrence": ("Minutely", "MinuteInterval", "MinutelyRecurrencePatternType"),
    "HourlyRecurrence": ("Hourly", "HourInterval", "HourlyRecurrencePatternType"),
    "DailyRecurrence": ("Daily", "DayInterval", "DailyRecurrencePatternType"),
    "WeeklyRecurrence": ("Weekly", "WeekInterval", "WeeklyRecurrencePatternType"),
    "MonthlyRecurrence": ("Monthly", "MonthlyInterval", "MonthlyRecurrencePatternType"),
}
RECURRENCE_XSI = {rtype: xsi for xsi, (rtype, _, _) in RECURRENCE_TYPES.items()}

#: REST ``schedule.typeId`` per recurrence type (Daily = 3 is recorded; the rest follow it).
SCHEDULE_TYPE_IDS = {"Minutely": 1, "Hourly": 2, "Daily": 3, "Weekly": 4, "Monthly": 5}

WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ICAL_DAYS = {day: day[:2].upper() for day in WEEKDAYS}

#: Emulator-only time zone names (only id 5 is from a recording; the ids are unverified).
TIMEZONE_NAMES = {5: "W. Europe Standard Time"}

WALL_FORMAT = "%Y-%m-%dT%H:%M:%S"


def timezone_name(timezone_id: int) -> str:
    return TIMEZONE_NAMES.get(timezone_id, f"TimeZone {timezone_id}")


@dataclass
class Schedule:
    """A stored ScheduleDefinition (one recurrence, one range, one time zone)."""

    recurrence_type: str  # Minutely | Hourly | Daily | Weekly | Monthly
    start: datetime  # naive, in the schedule's time zone
    interval: int = 1
    pattern_type: str = "Interval"
    weekdays: tuple[str, ...] = ()  # WeeklyRecurrence: the days set to true
    scheduled_day: int | None = None  # MonthlyRecurrence ByDay
    range_type: str = "EndOn"  # EndOn | EndAfter
    end: datetime | None = None  # EndOn
    occurrences: int | None = None  # EndAfter
    timezone_id: int = 5
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def xsi_type(self) -> str:
        return RECURRENCE_XSI[self.recurrence_type]

    @property
    def interval_element(self) -> str:
        return RECURRENCE_TYPES[self.xsi_type][1]

    @property
    def pattern_element(self) -> str:
        return RECURRENCE_TYPES[self.xsi_type][2]

    @property
    def timezone_name(self) -> str:
        return timezone_name(self.timezone_id)

    def ical_recur(self) -> str:
        """The iCal RRULE REST shows, e.g. ``FREQ=DAILY;UNTIL=20790606T080000;INTERVAL=1``."""
        parts = [f"FREQ={self.recurrence_type.upper()}"]
        if self.range_type == "EndAfter" and self.occurrences is not None:
            parts.append(f"COUNT={self.occurrences}")
        elif self.end is not None:
            parts.append(f"UNTIL={self.end.strftime('%Y%m%dT%H%M%S')}")
        parts.append(f"INTERVAL={self.interval}")
        if self.recurrence_type == "Weekly" and self.weekdays:
            parts.append("BYDAY=" + ",".join(_ICAL_DAYS[d] for d in self.weekdays))
        if self.recurrence_type == "Daily" and self.pattern_type == "EveryWeekDay":
            parts.append("BYDAY=MO,TU,WE,TH,FR")
        if self.recurrence_type == "Monthly" and self.scheduled_day is not None:
            parts.append(f"BYMONTHDAY={self.scheduled_day}")
        return ";".join(parts)

    def rest_json(self, schedule_status: str) -> dict[str, Any]:
        """The ``schedule`` object of ``GET /automation/v1/automations/{id}``."""
        body: dict[str, Any] = {
            "id": self.id,
            "typeId": SCHEDULE_TYPE_IDS[self.recurrence_type],
            "startDate": self.start.strftime(WALL_FORMAT),
            "endDate": self.end.strftime(WALL_FORMAT) if self.end else None,
            "scheduledTime": "0001-01-01T" + self.start.strftime("%H:%M:%S"),
            "icalRecur": self.ical_recur(),
            "timezoneName": self.timezone_name,
            "timezoneId": self.timezone_id,
            "scheduleStatus": schedule_status,
        }
        if self.occurrences is not None:
            body["occurrences"] = self.occurrences
        return body
