"""Journey Builder REST (get, list, pause, resume, stop) and Automation REST reads.

Pause and resume answer HTTP 202 for success *and* failure; the body decides
(reference §3.1-§3.5). Stop is by id only and answers 200 with no body, or 500.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from starlette.responses import JSONResponse, Response

from sandbox.sfmc.auth import AuthService
from sandbox.sfmc.routing import Ctx, rest_error
from sandbox.sfmc.state import (
    ERR_INVALID_VALUE,
    ERR_NOT_FOUND,
    ERR_NOT_PAUSED,
    GUARDRAIL_ACTIONS,
    MAX_PAUSED_DAYS,
    REST_STATUS_NAMES,
    Automation,
    JourneyPause,
    JourneyVersion,
    Outcome,
    Tenant,
    journey_pause,
    journey_resume,
    journey_stop,
    sfmc_time,
)

JOURNEY_PAGE_SIZE = 50  # swagger: default and maximum
AUTOMATION_PAGE_SIZE, AUTOMATION_MAX_PAGE_SIZE = 50, 500
NOT_FOUND_KEY = "Interaction matching key not found."
NOT_FOUND_ID = "Interaction matching criteria not found."
AUTOMATION_TYPE_IDS = {"scheduled": 1, "triggered": 2}


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _accepted_error(errorcode: int, message: str) -> JSONResponse:
    """Journey pause/resume failures: HTTP 202 with an error body and empty documentation."""
    return rest_error(202, errorcode, message, documentation="")


ACCEPTED = {"status": "Accepted"}


def _query_int(ctx: Ctx, name: str, default: int | None = None) -> int | None:
    raw = ctx.request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer.") from None


def _query_bool(ctx: Ctx, name: str, default: bool) -> bool:
    raw = ctx.request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false.")


def _page(ctx: Ctx, default_size: int, max_size: int) -> tuple[int, int]:
    """($page, $pageSize): 1-based; a size above the maximum is clamped to it."""
    page = _query_int(ctx, "$page", 1) or 1
    size = _query_int(ctx, "$pageSize", default_size) or default_size
    if page < 1 or size < 1:
        raise BadRequest("$page and $pageSize must be positive integers.")
    return page, min(size, max_size)


def journey_json(v: JourneyVersion, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": v.id,
        "key": v.key,
        "name": v.name,
        "description": v.description,
        "version": v.version,
        "workflowApiVersion": 1.0,
        "createdDate": sfmc_time(v.created),
        "modifiedDate": sfmc_time(v.modified),
        "status": v.status,
        "definitionType": v.definition_type,
        "entryMode": v.entry_mode,
        "definitionId": v.definition_id,
        "executionMode": "Production",
        "scheduledStatus": "Draft" if v.status == "Draft" else "None",
        "stats": {
            "currentPopulation": v.current_population,
            "cumulativePopulation": v.cumulative_population,
            "metGoal": 0,
            "metExitCriteria": 0,
            "goalPerformance": 0.0,
        },
    }
    if v.last_published is not None:
        body["lastPublishedDate"] = sfmc_time(v.last_published)
    if full:
        body.update({"goals": [], "exits": [], "notifiers": [], "activities": [], "triggers": []})
    return body


def automation_json(a: Automation, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": a.object_id,
        "key": a.key,
        "name": a.name,
        "description": a.description,
        "type": a.automation_type,
        "typeId": AUTOMATION_TYPE_IDS.get(a.automation_type, 0),
        "statusId": a.status,
        "status": REST_STATUS_NAMES.get(a.status, str(a.status)),
        "categoryId": a.category_id,
        "schedule": a.schedule.rest_json(a.schedule_status) if a.schedule else None,
        "lastRunTime": sfmc_time(a.last_run_time),
        "lastRunInstanceId": a.last_run_instance_id,
    }
    if full:
        body["steps"] = []
    return body


class RestService:
    def __init__(self, tenant: Tenant, auth: AuthService) -> None:
        self.tenant = tenant
        self.auth = auth

    def _versions(self, ctx: Ctx, mid: int) -> tuple[list[JourneyVersion], int | None, str]:
        """The versions the path names (key: or id), the version an id named, the 404 text."""
        if "key" in ctx.params:
            return self.tenant.journey_by_key(mid, ctx.params["key"]), None, NOT_FOUND_KEY
        versions, named = self.tenant.journey_by_id(mid, ctx.params["id"])
        return versions, named, NOT_FOUND_ID

    # --- journeys ---------------------------------------------------------------------------

    async def get_journey(self, ctx: Ctx) -> Response:
        """One version: ``versionNumber``, else the version an id names, else the latest."""
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        try:
            wanted = _query_int(ctx, "versionNumber")
        except BadRequest as exc:
            return rest_error(400, ERR_INVALID_VALUE, exc.message)
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            versions, named, missing = self._versions(ctx, token.mid)
            number = wanted if wanted is not None else named
            found = [v for v in versions if number is None or v.version == number]
            if not found:
                return rest_error(404, ERR_NOT_FOUND, missing)
            return JSONResponse(journey_json(found[-1]))

    async def list_journeys(self, ctx: Ctx) -> Response:
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        q = ctx.request.query_params
        try:
            page, size = _page(ctx, JOURNEY_PAGE_SIZE, JOURNEY_PAGE_SIZE)
            most_recent = _query_bool(ctx, "mostRecentVersionOnly", True)
            version_number = _query_int(ctx, "versionNumber")
        except BadRequest as exc:
            return rest_error(400, ERR_INVALID_VALUE, exc.message)
        text = (q.get("nameOrDescription") or "").lower()
        status = (q.get("status") or "").lower()
        definition_type = (q.get("definitionType") or "").lower()
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            if q.get("id"):
                definitions = [self.tenant.journey_by_id(token.mid, q["id"])[0]]
            else:
                definitions = self.tenant.journey_definitions(token.mid)
            items = [
                v
                for versions in definitions
                for v in (versions[-1:] if most_recent else versions)
                if (not text or text in v.name.lower() or text in v.description.lower())
                and (not status or v.status.lower() == status)
                and (not definition_type or v.definition_type.lower() == definition_type)
                and (version_number is None or v.version == version_number)
            ]
            items.sort(key=lambda v: (v.modified or ctx.now, v.id), reverse=True)
            chunk = items[(page - 1) * size : page * size]
            return JSONResponse(
                {
                    "count": len(items),
                    "page": page,
                    "pageSize": size,
                    "links": {},
                    "items": [journey_json(v, full=False) for v in chunk],
                }
            )

    async def _pause_or_resume(self, ctx: Ctx, verb: str) -> Response:
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        try:
            all_versions = _query_bool(ctx, "allVersions", False)
            number = _query_int(ctx, "versionNumber")
            pause = await self._pause_options(ctx) if verb == "pause" else None
        except BadRequest as exc:
            return _accepted_error(ERR_INVALID_VALUE, exc.message)
        if not all_versions and number is None:
            return _accepted_error(ERR_INVALID_VALUE, "AllVersions=true or VersionNumber required.")
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            versions, _, missing = self._versions(ctx, token.mid)
            if not versions:
                return _accepted_error(ERR_NOT_FOUND, missing)
            if all_versions:
                from_status = "Published" if pause else "Paused"
                targets = [v for v in versions if v.status == from_status]
            else:
                targets = [v for v in versions if v.version == number]
                if not targets:
                    return _accepted_error(ERR_NOT_FOUND, f"Version {number} was not found.")
            outcomes: list[Outcome] = []
            for v in targets:
                if pause is not None:
                    outcomes.append(journey_pause(v, ctx.now, replace(pause)))
                else:
                    outcomes.append(journey_resume(v, ctx.now))
            if not outcomes:
                message = (
                    "An interaction must be in published status to be paused."
                    if pause
                    else "An interaction must be in paused status to be resumed."
                )
                return _accepted_error(ERR_NOT_PAUSED, message)
            failed = next((o for o in outcomes if not o.ok), None)
            if failed is not None:
                return _accepted_error(failed.error_code or ERR_NOT_PAUSED, failed.message)
            return JSONResponse(ACCEPTED, status_code=202)

    async def _pause_options(self, ctx: Ctx) -> JourneyPause:
        """The optional pause body (keys case-insensitive, as .NET binds them)."""
        raw = await ctx.request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        opts = {str(k).lower(): v for k, v in body.items()}
        days = opts.get("pauseddays", MAX_PAUSED_DAYS)
        if days is None:
            days = MAX_PAUSED_DAYS
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PAUSED_DAYS:
            raise BadRequest(f"PausedDays must be a whole number from 1 to {MAX_PAUSED_DAYS}.")
        guardrail = opts.get("guardrailaction") or "none"
        if not isinstance(guardrail, str) or guardrail.lower() not in GUARDRAIL_ACTIONS:
            raise BadRequest("GuardrailAction must be one of stop, resume or none.")
        flags = {}
        for name in ("ExtendWaitEndDates", "RetainContactInjectionWhileJourneyPaused"):
            value = opts.get(name.lower(), False)
            if not isinstance(value, bool):
                raise BadRequest(f"{name} must be true or false.")
            flags[name] = value
        return JourneyPause(
            paused_at=ctx.now,
            paused_days=days,
            guardrail_action=guardrail.lower(),
            extend_wait_end_dates=flags["ExtendWaitEndDates"],
            retain_contact_injection=flags["RetainContactInjectionWhileJourneyPaused"],
        )

    async def pause_journey(self, ctx: Ctx) -> Response:
        return await self._pause_or_resume(ctx, "pause")

    async def resume_journey(self, ctx: Ctx) -> Response:
        return await self._pause_or_resume(ctx, "resume")

    async def stop_journey(self, ctx: Ctx) -> Response:
        """By id only; ``versionNumber`` picks the version (none: the latest, even a Draft)."""
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        try:
            number = _query_int(ctx, "versionNumber")
        except BadRequest as exc:
            return rest_error(400, ERR_INVALID_VALUE, exc.message)
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            versions, _, missing = self._versions(ctx, token.mid)
            found = [v for v in versions if number is None or v.version == number]
            if not found:
                return rest_error(404, ERR_NOT_FOUND, missing)
            outcome = journey_stop(found[-1], ctx.now)
            if not outcome.ok:
                return rest_error(500, 500, "Internal Server Error", documentation="")
            return Response(status_code=200)

    # --- automations ------------------------------------------------------------------------

    async def get_automation(self, ctx: Ctx) -> Response:
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            a = self.tenant.automation_by_id(token.mid, ctx.params["id"])
            if a is None:
                return rest_error(404, ERR_NOT_FOUND, "Automation not found.")
            return JSONResponse(automation_json(a))

    async def list_automations(self, ctx: Ctx) -> Response:
        token = self.auth.bearer(ctx)
        if isinstance(token, Response):
            return token
        try:
            page, size = _page(ctx, AUTOMATION_PAGE_SIZE, AUTOMATION_MAX_PAGE_SIZE)
        except BadRequest as exc:
            return rest_error(400, ERR_INVALID_VALUE, exc.message)
        with self.tenant.lock:
            self.tenant.tick(ctx.now)
            rows = sorted(self.tenant.automations_of(token.mid), key=lambda a: a.name.lower())
            chunk = rows[(page - 1) * size : page * size]
            return JSONResponse(
                {
                    "count": len(rows),
                    "page": page,
                    "pageSize": size,
                    "links": {},
                    "items": [automation_json(a, full=False) for a in chunk],
                }
            )
