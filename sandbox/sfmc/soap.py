"""``POST /Service.asmx``: the SOAP partner API operations the bot uses on Automations.

Retrieve (Automation / Program, SimpleFilterPart ``equals``/``IN``, paging with
ContinueRequest), Perform (``start`` = run once, ``stop``) and Schedule (``pause``,
``start`` with a full ScheduleDefinition). Shapes follow reference §1.3-§1.8.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from lxml import etree
from starlette.responses import Response

from sandbox.sfmc.auth import AuthService
from sandbox.sfmc.routing import Ctx
from sandbox.sfmc.schedule import RECURRENCE_TYPES, WEEKDAYS, Schedule
from sandbox.sfmc.settings import EmulatorSettings
from sandbox.sfmc.soap_xml import (
    BadEnvelope,
    find,
    find_all,
    find_deep,
    new_message,
    parse_envelope,
    soap_fault,
    soap_response,
    sub,
    text,
    xsi_type,
)
from sandbox.sfmc.state import (
    ERR_INVALID_VALUE,
    ERR_NOT_FOUND,
    ERR_UNSUPPORTED,
    Automation,
    Continuation,
    Outcome,
    Tenant,
    new_guid,
    perform_start,
    perform_stop,
    schedule_pause,
    schedule_start,
)

OPERATIONS = ("Retrieve", "Perform", "Schedule")
RETRIEVABLE_TYPES = ("Automation", "Program")

#: Retrievable Automation properties in WSDL sequence order (zeep parses them in order).
PROPERTIES: dict[str, Callable[[Automation], object]] = {
    "CreatedDate": lambda a: a.created,
    "ModifiedDate": lambda a: a.modified,
    "ObjectID": lambda a: a.object_id,
    "CustomerKey": lambda a: a.key,
    "Name": lambda a: a.name,
    "Description": lambda a: a.description,
    "IsActive": lambda a: a.status not in (-1, 0, 1),
    "Status": lambda a: a.status,
    "AutomationType": lambda a: a.automation_type,
    "LastRunInstanceID": lambda a: a.last_run_instance_id,
    "CategoryID": lambda a: a.category_id,
    "LastRunTime": lambda a: a.last_run_time,
    "LastSaveDate": lambda a: a.modified,
    "RecurrenceID": lambda a: a.schedule.id if a.schedule else None,
}
ALIASES = {"ProgramID": "ObjectID"}  # "asking for ProgramID returns the value as ObjectID"

FILTERS: dict[str, Callable[[Automation], str]] = {
    "CustomerKey": lambda a: a.key,
    "Name": lambda a: a.name,
    "ObjectID": lambda a: a.object_id,
    "ProgramID": lambda a: a.object_id,
    "Status": lambda a: str(a.status),
}


class SoapService:
    def __init__(self, tenant: Tenant, auth: AuthService, settings: EmulatorSettings) -> None:
        self.tenant = tenant
        self.auth = auth
        self.settings = settings

    def actor(self, ctx: Ctx) -> str:
        return f"{ctx.base_url}Service.asmx"

    async def handle(self, ctx: Ctx) -> Response:
        action = ctx.soap_action or ""
        if not action:
            return soap_fault(
                "Server",
                "UnexpectedError: no SOAPAction header",
                actor=self.actor(ctx),
                apifault=(2, "UnexpectedError"),
            )
        if action not in OPERATIONS:
            return soap_fault(
                "Client",
                f"Server did not recognize the value of HTTP Header SOAPAction: {action}.",
                actor=self.actor(ctx),
            )
        try:
            header, message = parse_envelope(await ctx.request.body())
        except BadEnvelope as exc:
            return soap_fault(
                "Client", f"Server was unable to read request. {exc}", actor=self.actor(ctx)
            )
        if etree.QName(message).localname != f"{action}RequestMsg":
            return soap_fault(
                "Client",
                f"The SOAPAction '{action}' does not match the body "
                f"'{etree.QName(message).localname}'.",
                actor=self.actor(ctx),
            )
        token, verdict = self.auth.check(ctx, text(find_deep(header, "fueloauth")))
        if token is None or verdict != "ok":
            reason = "Token Expired" if verdict == "expired" else "Login failed"
            return soap_fault("Security", reason, actor=self.actor(ctx))
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            operation = {
                "Retrieve": self._retrieve,
                "Perform": self._perform,
                "Schedule": self._schedule,
            }[action]
            result = operation(message, token.mid, ctx.now)
        return soap_response(result, action)

    # --- Retrieve ---------------------------------------------------------------------------

    def _retrieve(self, msg: etree._Element, mid: int, now: datetime) -> etree._Element:
        resp = new_message("RetrieveResponseMsg")
        req = find(msg, "RetrieveRequest")
        continue_id = text(req, "ContinueRequest")
        if continue_id:
            cont = self.tenant.continuations.pop(continue_id, None)
            if cont is None or cont.mid != mid:
                return _status_only(resp, f"Error: ContinueRequest '{continue_id}' is not valid.")
            found = (self.tenant.automation_by_id(mid, oid) for oid in cont.object_ids)
            rows = [a for a in found if a is not None]
            properties = cont.properties
            object_type = cont.object_type
        else:
            object_type = text(req, "ObjectType") or ""
            if object_type not in RETRIEVABLE_TYPES:
                return _status_only(
                    resp,
                    f"Error: Unable to find a handler for object type: {object_type}. "
                    "Object types are case-sensitive, check spelling.",
                )
            properties = [p.text.strip() for p in find_all(req, "Properties") if p.text]
            unknown = [p for p in properties if p not in PROPERTIES and p not in ALIASES]
            if not properties or unknown:
                return _status_only(
                    resp,
                    f"Error: The Request Property(s) {', '.join(unknown) or '(none)'} do not "
                    f"match with the fields of {object_type} retrieve",
                )
            selected = self._filter(find(req, "Filter"), mid)
            if isinstance(selected, str):
                return _status_only(resp, selected)
            rows = sorted(selected, key=lambda a: (a.created or now, a.key))
        page, rest = rows[: self.settings.page_size], rows[self.settings.page_size :]
        request_id = new_guid()
        if rest:
            self.tenant.continuations[request_id] = Continuation(
                mid, object_type, properties, [a.object_id for a in rest]
            )
        sub(resp, "OverallStatus", "MoreDataAvailable" if rest else "OK")
        sub(resp, "RequestID", request_id)
        wanted = {ALIASES.get(p, p) for p in properties}
        for a in page:
            _render_automation(sub(resp, "Results", type_="Automation"), a, wanted)
        return resp

    def _filter(self, filt: etree._Element | None, mid: int) -> list[Automation] | str:
        rows = self.tenant.automations_of(mid)
        if filt is None:
            return rows
        if xsi_type(filt) == "ComplexFilterPart" or find(filt, "LeftOperand") is not None:
            return "Error: Complex filters are not supported for Automation retrieve."
        prop = text(filt, "Property") or ""
        operator = (text(filt, "SimpleOperator") or "").lower()
        values = [v.text or "" for v in find_all(filt, "Value")]
        if prop not in FILTERS:
            return f"Error: The filter property '{prop}' is not supported for Automation retrieve."
        if operator not in ("equals", "in"):
            return (
                "Error: The Automation object only supports the IN and equals operators, "
                f"not '{text(filt, 'SimpleOperator')}'."
            )
        if not values:
            return "Error: The filter has no Value."
        if operator == "equals":
            values = values[:1]
        if prop in ("ObjectID", "ProgramID"):
            values = [v.lower() for v in values]
        get = FILTERS[prop]
        return [a for a in rows if get(a) in values]

    # --- Perform ----------------------------------------------------------------------------

    def _perform(self, msg: etree._Element, mid: int, now: datetime) -> etree._Element:
        resp = new_message("PerformResponseMsg")
        action = (text(msg, "Action") or "").lower()
        definitions = find_all(find(msg, "Definitions"), "Definition")
        if not definitions:
            return _overall(resp, None, "Error: No Definitions were given.")
        run_for = timedelta(seconds=self.settings.run_duration_s)
        results = sub(resp, "Results")
        outcomes = []
        for definition in definitions:
            a, outcome = self._target(definition, mid)
            if a is not None:
                if action == "start":
                    outcome = perform_start(a, now, run_for)
                elif action == "stop":
                    outcome = perform_stop(a, now)
                else:
                    outcome = Outcome.error(
                        ERR_UNSUPPORTED, f"The action '{action}' is not supported for Automation."
                    )
            outcomes.append(outcome)
            result = _result(results, outcome)
            obj = sub(result, "Object", type_="Automation")
            sub(obj, "PartnerKey", nil=True)
            sub(obj, "ObjectID", a.object_id if a else text(definition, "ObjectID"), nil=True)
            sub(obj, "CustomerKey", a.key if a else text(definition, "CustomerKey"), nil=True)
            sub(obj, "IsPlatformObject", False)  # real responses carry it; it is not in the WSDL
            sub(obj, "Name")
            sub(obj, "Description")
            sub(obj, "IsActive", True)
        return _overall(resp, outcomes)

    def _target(self, el: etree._Element, mid: int) -> tuple[Automation | None, Outcome]:
        """The Automation an Interaction/Definition names (ObjectID, else CustomerKey)."""
        kind = xsi_type(el)
        if kind not in (None, "Automation"):
            return None, Outcome.error(ERR_UNSUPPORTED, f"Unsupported object type '{kind}'.")
        object_id, key = text(el, "ObjectID"), text(el, "CustomerKey")
        a = None
        if object_id:
            a = self.tenant.automation_by_id(mid, object_id)
        elif key:
            a = self.tenant.automation_by_key(mid, key)
        if a is None:
            return None, Outcome.error(
                ERR_NOT_FOUND, f"Automation '{object_id or key or ''}' was not found."
            )
        return a, Outcome.success("")

    # --- Schedule ---------------------------------------------------------------------------

    def _schedule(self, msg: etree._Element, mid: int, now: datetime) -> etree._Element:
        resp = new_message("ScheduleResponseMsg")
        action = (text(msg, "Action") or "").lower()
        interactions = find_all(find(msg, "Interactions"), "Interaction")
        if not interactions:
            return _overall(resp, None, "Error: No Interactions were given.")
        results = sub(resp, "Results")
        outcomes = []
        for interaction in interactions:
            a, outcome = self._target(interaction, mid)
            stored: Schedule | None = None
            if a is not None:
                if action == "pause":
                    outcome = schedule_pause(a, now)
                elif action == "start":
                    parsed = parse_schedule(find(msg, "Schedule"))
                    if isinstance(parsed, Outcome):
                        outcome = parsed
                    else:
                        outcome = schedule_start(a, parsed, now)
                        stored = parsed if outcome.ok else None
                else:
                    outcome = Outcome.error(
                        ERR_UNSUPPORTED, f"The action '{action}' is not supported for Schedule."
                    )
            outcomes.append(outcome)
            result = _result(results, outcome)
            if stored is not None:
                sub(result, "RequestID", new_guid())
            _render_schedule(sub(result, "Object"), stored)
            sub(result, "Task")
        return _overall(resp, outcomes)


# --- helpers ----------------------------------------------------------------------------------


def _status_only(resp: etree._Element, overall: str) -> etree._Element:
    sub(resp, "OverallStatus", overall)
    sub(resp, "RequestID", new_guid())
    return resp


def _result(results: etree._Element, outcome: Outcome) -> etree._Element:
    result = sub(results, "Result")
    sub(result, "StatusCode", "OK" if outcome.ok else "Error")
    sub(result, "StatusMessage", outcome.message)
    if not outcome.ok:
        sub(result, "ErrorCode", outcome.error_code)
    return result


def _overall(
    resp: etree._Element, outcomes: list[Outcome] | None, error: str | None = None
) -> etree._Element:
    """OverallStatus: OK, Error (every result failed) or Has Errors (some did)."""
    if error is not None or not outcomes:
        overall = error or "Error"
    elif all(o.ok for o in outcomes):
        overall = "OK"
    elif any(o.ok for o in outcomes):
        overall = "Has Errors"
    else:
        overall = "Error"
    sub(resp, "OverallStatus", overall)
    sub(resp, "OverallStatusMessage")
    sub(resp, "RequestID", new_guid())
    return resp


def _render_automation(el: etree._Element, a: Automation, wanted: set[str]) -> None:
    sub(el, "PartnerKey", nil=True)
    for name, get in PROPERTIES.items():
        if name in wanted:
            sub(el, name, get(a), nil=True)
        elif name == "ObjectID":
            sub(el, name, nil=True)


def _render_schedule(el: etree._Element, schedule: Schedule | None) -> None:
    sub(el, "PartnerKey", nil=True)
    sub(el, "ObjectID", nil=True)
    if schedule is None:
        return
    rec = sub(el, "Recurrence", type_=schedule.xsi_type)
    sub(rec, schedule.pattern_element, schedule.pattern_type)
    sub(rec, schedule.interval_element, schedule.interval)
    if schedule.recurrence_type == "Weekly":
        for day in WEEKDAYS:
            sub(rec, day, day in schedule.weekdays)
    if schedule.scheduled_day is not None:
        sub(rec, "ScheduledDay", schedule.scheduled_day)
    sub(el, "RecurrenceType", schedule.recurrence_type)
    sub(el, "RecurrenceRangeType", schedule.range_type)
    sub(el, "StartDateTime", schedule.start.isoformat(timespec="seconds"))
    if schedule.range_type == "EndOn" and schedule.end is not None:
        sub(el, "EndDateTime", schedule.end.isoformat(timespec="seconds"))
    if schedule.range_type == "EndAfter":
        sub(el, "Occurrences", schedule.occurrences)
    tz = sub(el, "TimeZone")
    sub(tz, "PartnerKey", nil=True)
    sub(tz, "ID", schedule.timezone_id)
    sub(tz, "ObjectID", nil=True)


def _wall_time(value: str | None) -> datetime | None:
    """An xsd:dateTime as a naive wall-clock time (any offset is dropped, as SFMC does)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def parse_schedule(el: etree._Element | None) -> Schedule | Outcome:
    """A complete ScheduleDefinition, or the per-result error for an incomplete one."""

    def bad(message: str) -> Outcome:
        return Outcome.error(ERR_INVALID_VALUE, message)

    recurrence = find(el, "Recurrence")
    if el is None or recurrence is None:
        return bad("The action 'start' needs a ScheduleDefinition with a Recurrence.")
    kind = xsi_type(recurrence) or ""
    if kind == "YearlyRecurrence":
        return bad("YearlyRecurrence is not supported for automations.")
    if kind not in RECURRENCE_TYPES:
        return bad(f"Unknown Recurrence type '{kind}'.")
    rtype, interval_name, pattern_name = RECURRENCE_TYPES[kind]
    declared = text(el, "RecurrenceType")
    if declared and declared != rtype:
        return bad(f"RecurrenceType '{declared}' does not match the Recurrence type '{kind}'.")
    try:
        interval = _int(text(recurrence, interval_name)) or 1
        occurrences = _int(text(el, "Occurrences"))
        scheduled_day = _int(text(recurrence, "ScheduledDay"))
        timezone_id = _int(text(el, "TimeZone", "ID"))
        start = _wall_time(text(el, "StartDateTime"))
        end = _wall_time(text(el, "EndDateTime"))
    except ValueError as exc:
        return bad(f"The schedule definition has an invalid value: {exc}.")
    if interval < 1 or (rtype == "Minutely" and interval < 5):
        return bad("The minimum schedule interval is 5 minutes.")
    weekdays = tuple(d for d in WEEKDAYS if (text(recurrence, d) or "").lower() == "true")
    if rtype == "Weekly" and not weekdays:
        return bad("A WeeklyRecurrence needs at least one day set to true.")
    if start is None:
        return bad("StartDateTime is required.")
    range_type = text(el, "RecurrenceRangeType") or ("EndOn" if end else "EndAfter")
    if range_type == "EndOn" and end is None:
        return bad("EndDateTime is required when RecurrenceRangeType is EndOn.")
    if range_type == "EndAfter" and (occurrences is None or occurrences < 1):
        return bad("Occurrences (at least 1) is required when RecurrenceRangeType is EndAfter.")
    if range_type not in ("EndOn", "EndAfter"):
        return bad(f"Unknown RecurrenceRangeType '{range_type}'.")
    if end is not None and range_type == "EndOn" and end <= start:
        return bad("EndDateTime must be after StartDateTime.")
    if timezone_id is None:
        return bad("TimeZone/ID is required.")
    default_pattern = "ByDay" if rtype in ("Weekly", "Monthly") else "Interval"
    return Schedule(
        recurrence_type=rtype,
        start=start,
        interval=interval,
        pattern_type=text(recurrence, pattern_name) or default_pattern,
        weekdays=weekdays,
        scheduled_day=scheduled_day,
        range_type=range_type,
        end=end if range_type == "EndOn" else None,
        occurrences=occurrences if range_type == "EndAfter" else None,
        timezone_id=timezone_id,
    )
