"""From an automation's iCal schedule to a SOAP ``ScheduleDefinition``, and back from REST.

SOAP ``Schedule start`` needs a complete, typed schedule (reference sfmc.md §1.6): the
``Recurrence`` as ``{Minute,Hour,Dai,Week,Month}lyRecurrence`` with its pattern type and
interval, ``RecurrenceType``, a range (``EndOn`` + ``EndDateTime`` or ``EndAfter`` +
``Occurrences``), ``StartDateTime`` (moved forward when in the past) and ``TimeZone/ID``.
The REST read (``GET /automation/v1/automations/{id}``, §7) describes the schedule as
``icalRecur`` + ``startDate`` / ``endDate`` + ``timezoneId``.

Schedule times are wall-clock times in the schedule's own time zone and are kept naive,
as SFMC returns them; only "is this in the past" needs a zone (:func:`wall_now`).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.models import Schedule

#: iCal FREQ -> (RecurrenceType, Recurrence xsi:type, interval element, pattern element).
FREQUENCIES: dict[str, tuple[str, str, str, str]] = {
    "MINUTELY": ("Minutely", "MinutelyRecurrence", "MinuteInterval", "MinutelyRecurrencePatternType"),  # noqa: E501
    "HOURLY": ("Hourly", "HourlyRecurrence", "HourInterval", "HourlyRecurrencePatternType"),
    "DAILY": ("Daily", "DailyRecurrence", "DayInterval", "DailyRecurrencePatternType"),
    "WEEKLY": ("Weekly", "WeeklyRecurrence", "WeekInterval", "WeeklyRecurrencePatternType"),
    "MONTHLY": ("Monthly", "MonthlyRecurrence", "MonthlyInterval", "MonthlyRecurrencePatternType"),
}  # fmt: skip

ICAL_DAYS = {
    "SU": "Sunday",
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
}
_WEEKDAY_INDEX = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_WEEK_OF_MONTH = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}

#: A few Windows time zone names SFMC uses (``timezoneName``), for "is it in the past".
#: Unknown names count as UTC (the ids themselves are unverified: sfmc.md §8 point 8).
WINDOWS_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
}


class ScheduleError(ValueError):
    """The schedule cannot be turned into a SOAP ScheduleDefinition (message says why)."""


@dataclass(frozen=True)
class ScheduleSpec:
    """Everything a ``ScheduleDefinition`` needs, as plain values."""

    recurrence_type: str
    recurrence_xsi: str
    recurrence: dict[str, Any]
    start: datetime
    range_type: str | None = None
    end: datetime | None = None
    occurrences: int | None = None
    timezone_id: int | None = None
    rrule: dict[str, str] = field(default_factory=dict)


def parse_ical(text: str) -> dict[str, str]:
    """``FREQ=DAILY;INTERVAL=1`` -> ``{"FREQ": "DAILY", "INTERVAL": "1"}`` (keys upper-cased)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for piece in body.split(";"):
        if not piece.strip():
            continue
        name, sep, value = piece.partition("=")
        if not sep:
            raise ScheduleError(f"cannot read the iCal recurrence {text!r}")
        parts[name.strip().upper()] = value.strip()
    return parts


def parse_datetime(value: Any) -> datetime | None:
    """An ISO date-time (``Z`` allowed) or an iCal ``UNTIL`` value; None when absent."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    if not text:
        return None
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if text.endswith("Z") else parsed
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def zone_for(schedule: Schedule) -> tzinfo:
    """The zone of the schedule's wall times (UTC when the name is unknown)."""
    name = WINDOWS_ZONES.get(schedule.timezone_name or "", "UTC")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return UTC


def wall_now(schedule: Schedule, now: datetime) -> datetime:
    """``now`` as a wall time comparable with the schedule's start (naive or aware)."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if schedule.start is not None and schedule.start.tzinfo is not None:
        return aware
    return aware.astimezone(zone_for(schedule)).replace(tzinfo=None)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _step(freq: str, interval: int) -> timedelta | None:
    return {
        "MINUTELY": timedelta(minutes=interval),
        "HOURLY": timedelta(hours=interval),
        "DAILY": timedelta(days=interval),
        "WEEKLY": timedelta(weeks=interval),
    }.get(freq)


def first_at_or_after(start: datetime, freq: str, interval: int, now: datetime) -> datetime:
    """``start`` moved forward by whole recurrence periods to the first time >= ``now``."""
    if start >= now:
        return start
    step = _step(freq, interval)
    if step is not None:
        periods = math.ceil((now - start) / step)
        return start + periods * step
    if freq == "MONTHLY":
        months = (now.year - start.year) * 12 + (now.month - start.month)
        months = max(0, months // interval * interval)
        moved = _add_months(start, months)
        while moved < now:
            months += interval
            moved = _add_months(start, months)
        return moved
    raise ScheduleError(f"unsupported recurrence FREQ={freq}")


def _interval(rrule: dict[str, str]) -> int:
    raw = rrule.get("INTERVAL", "1") or "1"
    try:
        value = int(raw)
    except ValueError as exc:
        raise ScheduleError(f"the iCal INTERVAL {raw!r} is not a number") from exc
    if value < 1:
        raise ScheduleError(f"the iCal INTERVAL {value} must be at least 1")
    return value


def _byday(rrule: dict[str, str]) -> list[tuple[int | None, str]]:
    days: list[tuple[int | None, str]] = []
    for item in filter(None, (p.strip().upper() for p in rrule.get("BYDAY", "").split(","))):
        code = item[-2:]
        if code not in ICAL_DAYS:
            raise ScheduleError(f"unknown iCal day {item!r}")
        prefix = item[:-2]
        days.append((int(prefix) if prefix else None, code))
    return days


def build_spec(schedule: Schedule, *, now: datetime) -> ScheduleSpec:
    """The SOAP schedule that puts ``schedule`` back in force (start moved past ``now``)."""
    if not schedule.ical_recur:
        raise ScheduleError("the schedule has no recurrence (icalRecur)")
    if schedule.start is None:
        raise ScheduleError("the schedule has no start date")
    rrule = parse_ical(schedule.ical_recur)
    freq = rrule.get("FREQ", "").upper()
    if freq not in FREQUENCIES:
        raise ScheduleError(
            f"FREQ={freq or '?'} cannot be scheduled over SOAP "
            "(supported: minutely, hourly, daily, weekly, monthly)"
        )
    recurrence_type, xsi, interval_element, pattern_element = FREQUENCIES[freq]
    interval = _interval(rrule)
    byday = _byday(rrule)
    start = first_at_or_after(schedule.start, freq, interval, wall_now(schedule, now))

    recurrence: dict[str, Any] = {}
    if freq in ("MINUTELY", "HOURLY"):
        recurrence = {pattern_element: "Interval", interval_element: interval}
    elif freq == "DAILY":
        weekdays = {code for _, code in byday}
        if weekdays == {"MO", "TU", "WE", "TH", "FR"}:
            recurrence = {pattern_element: "EveryWeekDay"}
        else:
            recurrence = {pattern_element: "Interval", interval_element: interval}
    elif freq == "WEEKLY":
        codes = {code for _, code in byday} or {
            next(c for c, i in _WEEKDAY_INDEX.items() if i == schedule.start.weekday())
        }
        recurrence = {pattern_element: "ByDay", interval_element: interval}
        for code, day in ICAL_DAYS.items():
            recurrence[day] = code in codes
    else:  # MONTHLY
        recurrence = {pattern_element: "ByDay", interval_element: interval}
        positioned = [(pos, code) for pos, code in byday if pos is not None]
        setpos = rrule.get("BYSETPOS")
        if not positioned and byday and setpos:
            positioned = [(int(setpos), byday[0][1])]
        if positioned:
            pos, code = positioned[0]
            if pos not in _WEEK_OF_MONTH:
                raise ScheduleError(f"monthly position {pos} is not supported over SOAP")
            recurrence = {
                pattern_element: "ByWeek",
                interval_element: interval,
                "ScheduledWeek": _WEEK_OF_MONTH[pos],
                "ScheduledDayOfWeek": ICAL_DAYS[code],
            }
        else:
            month_day = rrule.get("BYMONTHDAY")
            recurrence["ScheduledDay"] = int(month_day) if month_day else schedule.start.day

    range_type: str | None = None
    end: datetime | None = None
    occurrences: int | None = None
    if rrule.get("COUNT"):
        range_type, occurrences = "EndAfter", int(rrule["COUNT"])
    else:
        end = schedule.end or parse_datetime(rrule.get("UNTIL"))
        if end is not None:
            range_type = "EndOn"
            if (end.tzinfo is None) != (start.tzinfo is None):
                end = end.replace(tzinfo=None) if start.tzinfo is None else end.replace(tzinfo=UTC)
            if end < start:
                raise ScheduleError(
                    f"the schedule ended on {end.isoformat()}, so it would never run again"
                )
    return ScheduleSpec(
        recurrence_type=recurrence_type,
        recurrence_xsi=xsi,
        recurrence=recurrence,
        start=start,
        range_type=range_type,
        end=end,
        occurrences=occurrences,
        timezone_id=schedule.timezone_id,
        rrule=rrule,
    )


#: SFMC writes its own timestamps (``lastRunTime``, ``createdDate``) in CST without an offset.
SFMC_SYSTEM_TZ = timezone(timedelta(hours=-6))


def system_time(value: Any) -> datetime | None:
    """An SFMC system timestamp as an aware UTC datetime (naive values are CST, UTC-6)."""
    moment = parse_datetime(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SFMC_SYSTEM_TZ)
    return moment.astimezone(UTC)


def next_run(schedule: Schedule, *, now: datetime) -> datetime | None:
    """The next time a simple schedule fires (aware, UTC), when it can be told.

    Weekly/monthly rules with BYDAY are not expanded (None). Naive schedule times are read
    in the schedule's zone (:func:`zone_for`).
    """
    if not schedule.ical_recur or schedule.start is None:
        return None
    try:
        rrule = parse_ical(schedule.ical_recur)
        freq = rrule.get("FREQ", "").upper()
        if freq not in FREQUENCIES or rrule.get("BYDAY") or rrule.get("BYSETPOS"):
            return None
        moment = first_at_or_after(schedule.start, freq, _interval(rrule), wall_now(schedule, now))
    except (ScheduleError, ValueError):
        return None
    end = schedule.end
    if end is not None and (end.tzinfo is None) == (moment.tzinfo is None) and moment > end:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone_for(schedule))
    return moment.astimezone(UTC)


def schedule_from_rest(body: Any) -> Schedule | None:
    """The ``schedule`` object of the REST automation read as a :class:`Schedule`."""
    if not isinstance(body, dict):
        return None
    ical = body.get("icalRecur") or body.get("iCalRecur")
    start = parse_datetime(body.get("startDate"))
    if not ical and start is None:
        return None
    timezone_id = body.get("timezoneId")
    try:
        tz_id = int(timezone_id) if timezone_id is not None else None
    except (TypeError, ValueError):
        tz_id = None
    end = parse_datetime(body.get("endDate"))
    return Schedule(
        ical_recur=str(ical) if ical else None,
        start=start,
        end=end,
        timezone_id=tz_id,
        timezone_name=str(body["timezoneName"]) if body.get("timezoneName") else None,
        status=str(body["scheduleStatus"]) if body.get("scheduleStatus") else None,
    )
