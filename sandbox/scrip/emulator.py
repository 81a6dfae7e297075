"""A local emulator of the scrip.dev automations API (reference ``scrip.md`` §1-§9).

Real HTTP through Starlette: run ``ScripEmulator().app`` under
:class:`sandbox.server.ServerThread` (or any ASGI server) and point a client at
``<url>/v1``. Everything under ``/_sandbox`` is the control API for tests and try-outs
(knobs, clock, state, reset, recorded calls); it needs no key and is never rate limited.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.clock import Clock
from sandbox.knobs import Knobs, KnobSettings
from sandbox.scrip.model import (
    FINAL_STATUSES,
    PATCHABLE_STATUSES,
    RUNNING_EXECUTIONS,
    SCOPES,
    SOURCES,
    STATUSES,
    TRIGGER_TYPES,
    Automation,
    EmulatorOptions,
    Organisation,
    Program,
    cron_anchor,
    cron_interval,
    is_uuid,
    rfc3339,
)
from sandbox.scrip.ratelimit import TokenBucket
from sandbox.scrip.seed import (
    SANDBOX_API_KEY,
    SANDBOX_ORG_ID,
    SANDBOX_PROGRAM_ID,
    SANDBOX_PROGRAM_NAME,
    SEED_AUTOMATIONS,
    STREAK_REMINDER_FANOUT,
    seed_times,
)

TRIGGER_REFUSED = "Automation cannot be triggered (must be active and idle or cron+program)"
CANCEL_REFUSED = "Automation has no pending or running execution to cancel"
MALFORMED_BODY = b'<html><body><h1>502 Bad Gateway</h1></body></html>\n{"data": ['
_ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
_ANONYMOUS = "anonymous"

#: PATCH fields and the trigger types they apply to (None: every type).
_PATCHABLE_FIELDS: Mapping[str, tuple[str, ...] | None] = {
    "name": None,
    "description": None,
    "status": None,
    "event_name": None,
    "payload": None,
    "guard_condition": None,
    "filter_hints": None,
    "participant_filter": None,
    "timezone": None,
    "cron_expression": ("cron",),
    "schedule_config": ("participant_state",),
    "trigger_at": ("one_time",),
}


class ApiError(Exception):
    """An error answer in Scrip's flat shape: ``{"code", "message", "details"?}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def _validation(
    message: str,
    *,
    field: str,
    reason: str,
    expected: str,
    received: Any,
    status: int = 400,
) -> ApiError:
    return ApiError(
        status,
        "validation_error",
        message,
        details={
            "field": field,
            "reason": reason,
            "expected": expected,
            "received": received if received is None else str(received),
            "message": message,
        },
    )


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (control API calls are not recorded)."""

    method: str
    path: str
    query: str
    status: int
    at: str


class ScripEmulator:
    """The scrip automations API on a controllable clock, with failure knobs.

    ``seed=True`` loads one organisation (key ``sk_sandbox_key``), the "Loyalty Rewards"
    program (:data:`SANDBOX_PROGRAM_ID`) and ten automations in every interesting state.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        knobs: Knobs | None = None,
        seed: bool = True,
        options: EmulatorOptions | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.knobs = knobs or Knobs()
        self.options = options or EmulatorOptions()
        self._seed = seed
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._in_flight = 0
        self._idle = threading.Condition()
        self._orgs: dict[str, Organisation] = {}
        self._keys: dict[str, str] = {}
        self._programs: dict[str, Program] = {}
        self._automations: dict[str, Automation] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._load()
        self.app = Starlette(
            routes=[
                Route("/_sandbox/{rest:path}", self._control, methods=_ALL_METHODS),
                Route("/{rest:path}", self._api, methods=_ALL_METHODS),
            ]
        )

    # ================================================================ helpers
    def _load(self) -> None:
        self._orgs.clear()
        self._keys.clear()
        self._programs.clear()
        self._automations.clear()
        self._buckets.clear()
        if not self._seed:
            return
        self.add_organisation(SANDBOX_ORG_ID, "Sandbox Org")
        self.add_api_key(SANDBOX_API_KEY, org_id=SANDBOX_ORG_ID)
        now = self.clock.now()
        self.add_program(
            SANDBOX_PROGRAM_NAME,
            id=SANDBOX_PROGRAM_ID,
            org_id=SANDBOX_ORG_ID,
            created_at=now - timedelta(days=365),
            description="Points, tiers and bonuses for the loyalty club.",
        )
        for item in SEED_AUTOMATIONS:
            times = seed_times(now, item)
            extra = dict(item.extra)
            if item.trigger_type == "one_time" and item.status == "completed":
                extra.setdefault("trigger_at", now - item.age + timedelta(days=2))
                extra.setdefault("processed_at", now - item.age + timedelta(days=2))
            if item.trigger_type == "participant_state":
                extra.setdefault("last_evaluated_at", now - timedelta(minutes=5))
            if item.execution_status == "completed":
                extra.setdefault("participants_total", 1200)
                extra.setdefault("participants_processed", 1200)
                extra.setdefault("execution_started_at", times["created_at"])
                extra.setdefault(
                    "execution_completed_at", times["created_at"] + timedelta(seconds=48)
                )
            self.add_automation(
                id=item.id,
                name=item.name,
                trigger_type=item.trigger_type,
                scope=item.scope,
                event_name=item.event_name,
                status=item.status,
                description=item.description,
                cron_expression=item.cron_expression,
                execution_status=item.execution_status,
                created_at=times["created_at"],
                updated_at=times["updated_at"],
                **extra,
            )
        streak = self._automations[STREAK_REMINDER_FANOUT]
        processed = streak.participants_processed or 0
        streak.execution_started_at = now - timedelta(
            seconds=processed / self.options.participants_per_second + self.options.pending_seconds
        )
        streak.last_run_at = streak.execution_started_at
        streak.progress_base = processed
        streak.progress_since = now

    def reset(self) -> None:
        """Back to the seed: data, rate-limit buckets, knobs and recorded calls."""
        with self._lock:
            self._load()
            self._calls.clear()
        self.knobs.reset()

    def add_organisation(self, org_id: str, name: str) -> Organisation:
        with self._lock:
            org = Organisation(id=org_id, name=name)
            self._orgs[org_id] = org
            return org

    def add_api_key(self, key: str, *, org_id: str = SANDBOX_ORG_ID) -> None:
        with self._lock:
            self._orgs[org_id].api_keys.add(key)
            self._keys[key] = org_id

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            org_id = self._keys.pop(key, None)
            if org_id is not None:
                self._orgs[org_id].api_keys.discard(key)

    def add_program(
        self,
        name: str,
        *,
        id: str | None = None,
        org_id: str = SANDBOX_ORG_ID,
        created_at: datetime | None = None,
        description: str | None = None,
        population: int = 1200,
    ) -> dict[str, Any]:
        with self._lock:
            now = self.clock.now()
            program = Program(
                id=id or str(uuid.uuid4()),
                org_id=org_id,
                name=name,
                created_at=created_at or now,
                updated_at=created_at or now,
                description=description,
                population=population,
            )
            self._programs[program.id] = program
            return program.to_json()

    def add_automation(
        self,
        *,
        name: str,
        program_id: str = SANDBOX_PROGRAM_ID,
        trigger_type: str = "cron",
        scope: str = "program",
        event_name: str | None = None,
        status: str = "active",
        execution_status: str | None = None,
        id: str | None = None,
        created_at: datetime | None = None,
        population: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Insert an automation as-is (no validation) and return its JSON."""
        with self._lock:
            now = self.clock.now()
            program = self._programs[program_id]
            created = created_at or now
            if trigger_type == "cron":
                fields.setdefault("cron_expression", "0 3 * * *")
            if trigger_type in ("cron", "one_time"):
                fields.setdefault("timezone", "UTC")
            if scope == "participants" and execution_status is None:
                execution_status = "idle"
            automation = Automation(
                id=id or str(uuid.uuid4()),
                program_id=program_id,
                name=name,
                trigger_type=trigger_type,
                scope=scope,
                event_name=event_name or name.lower().replace(" ", "_"),
                created_at=created,
                updated_at=fields.pop("updated_at", created),
                status=status,
                execution_status=execution_status,
                population=population if population is not None else program.population,
                **fields,
            )
            if scope == "participants" and execution_status in RUNNING_EXECUTIONS:
                if automation.participants_total is None:
                    automation.participants_total = automation.population
                if automation.participants_processed is None:
                    automation.participants_processed = 0
            if trigger_type == "cron":
                automation.period = cron_interval(automation.cron_expression)
                if automation.schedule_anchor is None:
                    automation.schedule_anchor = cron_anchor(automation.cron_expression, now)
                if status in ("active", "paused") and automation.next_run_at is None:
                    automation.next_run_at = automation.next_scheduled_after(now)
                    if created < now - automation.period:
                        automation.last_run_at = automation.next_run_at - automation.period
                if status == "paused" and self.options.null_next_run_on_pause:
                    automation.next_run_at = None
            self._automations[automation.id] = automation
            return automation.to_json()

    def automation(self, automation_id: str) -> dict[str, Any]:
        """The automation's JSON as the API would show it now (archived ones too)."""
        with self._lock:
            automation = self._automations[automation_id]
            automation.refresh(self.clock.now(), self.options)
            return automation.to_json()

    def find(self, name: str, *, program_id: str = SANDBOX_PROGRAM_ID) -> dict[str, Any]:
        """The automation with exactly this name in the program (for tests)."""
        with self._lock:
            for automation in self._automations.values():
                if automation.program_id == program_id and automation.name == name:
                    return self.automation(automation.id)
        raise KeyError(name)

    def automations(self, program_id: str = SANDBOX_PROGRAM_ID) -> list[dict[str, Any]]:
        """Every automation of the program, newest first, archived included."""
        with self._lock:
            now = self.clock.now()
            items = self._sorted(
                a for a in self._automations.values() if a.program_id == program_id
            )
            for automation in items:
                automation.refresh(now, self.options)
            return [a.to_json() for a in items]

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": rfc3339(self.clock.now()),
                "organisations": [
                    {"id": o.id, "name": o.name, "api_keys": len(o.api_keys)}
                    for o in self._orgs.values()
                ],
                "programs": [p.to_json() for p in self._programs.values()],
                "automations": [a for pid in self._programs for a in self.automations(pid)],
            }

    @staticmethod
    def _sorted(items: Any) -> list[Automation]:
        return sorted(items, key=lambda a: (a.created_at, a.id), reverse=True)

    # ============================================================ control API
    async def _control(self, request: Request) -> Response:
        rest = request.path_params["rest"].strip("/")
        method = request.method
        try:
            body = await self._json_body(request) if method == "POST" else {}
            if (rest, method) == ("knobs", "GET"):
                return JSONResponse(self.knobs.settings.model_dump())
            if (rest, method) == ("knobs", "POST"):
                return JSONResponse(self._set_knobs(body))
            if (rest, method) == ("options", "GET"):
                return JSONResponse(self.options.model_dump())
            if (rest, method) == ("options", "POST"):
                merged = {**self.options.model_dump(), **body}
                try:
                    self.options = EmulatorOptions.model_validate(merged)
                except ValidationError as exc:
                    raise ApiError(400, "validation_error", str(exc)) from exc
                return JSONResponse(self.options.model_dump())
            if (rest, method) == ("clock/advance", "POST"):
                seconds = body.get("seconds")
                if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                    raise ApiError(400, "validation_error", "seconds must be a number")
                now = self.clock.advance(float(seconds))
                return JSONResponse({"now": rfc3339(now)})
            if (rest, method) == ("state", "GET"):
                return JSONResponse(self.state())
            if (rest, method) == ("reset", "POST"):
                self.reset()
                return JSONResponse({"ok": True})
            if (rest, method) == ("calls", "GET"):
                return JSONResponse([asdict(c) for c in self.calls])
            raise ApiError(404, "not_found", f"no control route {method} /_sandbox/{rest}")
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    def _set_knobs(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - set(KnobSettings.model_fields))
        if unknown:
            raise ApiError(400, "validation_error", f"unknown knobs: {', '.join(unknown)}")
        try:
            KnobSettings.model_validate({**self.knobs.settings.model_dump(), **body})
        except ValidationError as exc:
            raise ApiError(400, "validation_error", str(exc)) from exc
        return self.knobs.set(**body).model_dump()

    # ================================================================ the API
    def wait_idle(self, timeout: float) -> bool:
        """Block until no API request is being answered (a slow answer's client may have
        given up on it); whether that happened within ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    async def _api(self, request: Request) -> Response:
        with self._idle:
            self._in_flight += 1
        try:
            return await self._api_answer(request)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    async def _api_answer(self, request: Request) -> Response:
        path = request.url.path
        if self.knobs.latency_s > 0 and self.knobs.applies(path):
            await asyncio.sleep(self.knobs.latency_s)
        raw = await request.body()
        with self._lock:
            status, payload, headers = self._answer(request, path, raw)
            body = json.dumps(payload).encode()
            if self.knobs.take("malformed_next", path):
                body = MALFORMED_BODY
            self._calls.append(
                Call(
                    method=request.method,
                    path=path,
                    query=request.url.query,
                    status=status,
                    at=rfc3339(self.clock.now()) or "",
                )
            )
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    def _answer(self, request: Request, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        now = self.clock.now()
        org = self._authenticate(request)
        bucket = self._bucket(org.id if org else _ANONYMOUS, now)
        if self.knobs.take("rate_limit_next", path):
            reading = bucket.peek(now)
            retry_after = self.knobs.settings.retry_after_s
            headers = reading.headers(forced_empty=True) | {"Retry-After": str(retry_after)}
            return 429, self._too_many().body(), headers
        reading = bucket.take(now)
        headers = reading.headers()
        if not reading.allowed:
            headers["Retry-After"] = str(reading.retry_after)
            return 429, self._too_many().body(), headers
        try:
            if org is None:
                raise ApiError(401, "unauthorized", "invalid or revoked API key")
            if self.knobs.roll_5xx(path):
                raise ApiError(500, "internal_error", "internal server error")
            status, payload = self._route(request.method, path, request, raw, org, now)
        except ApiError as exc:
            headers.update(exc.headers)
            return exc.status, exc.body(), headers
        return status, payload, headers

    @staticmethod
    def _too_many() -> ApiError:
        return ApiError(429, "too_many_requests", "rate limit exceeded, retry later")

    def _authenticate(self, request: Request) -> Organisation | None:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization")
        if key is None and auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer":
                key = token.strip()
        if not key or not key.startswith("sk_"):
            return None
        org_id = self._keys.get(key)
        return self._orgs.get(org_id) if org_id else None

    def _bucket(self, name: str, now: datetime) -> TokenBucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = TokenBucket(rate=self.options.rate_per_s, burst=self.options.burst, now=now)
            self._buckets[name] = bucket
        return bucket

    # ---------------------------------------------------------------- routing
    def _route(
        self,
        method: str,
        path: str,
        request: Request,
        raw: bytes,
        org: Organisation,
        now: datetime,
    ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or parts[0] != "v1" or parts[1] != "programs":
            raise ApiError(404, "not_found", "route not found")
        rest = parts[2:]
        query = request.query_params
        handlers: dict[tuple[int, str], Callable[[], tuple[int, Any]]]
        if not rest:
            handlers = {(0, "GET"): lambda: self._list_programs(org, query)}
            return self._dispatch(handlers, 0, method)
        program = self._program(org, rest[0])
        for automation in self._automations.values():
            if automation.program_id == program.id:
                automation.refresh(now, self.options)
        if len(rest) == 1:
            return self._dispatch({(1, "GET"): lambda: (200, program.to_json())}, 1, method)
        if rest[1] != "automations":
            raise ApiError(404, "not_found", "route not found")
        if len(rest) == 2:
            handlers = {
                (2, "GET"): lambda: self._list_automations(program, query),
                (2, "POST"): lambda: self._create(program, self._parse(raw), now),
            }
            return self._dispatch(handlers, 2, method)
        automation = self._automation(program, rest[2])
        if len(rest) == 3:
            handlers = {
                (3, "GET"): lambda: (200, automation.to_json()),
                (3, "PATCH"): lambda: self._patch(automation, self._parse(raw), now),
                (3, "DELETE"): lambda: self._archive(automation, now),
            }
            return self._dispatch(handlers, 3, method)
        if len(rest) == 4:
            action = rest[3]
            actions: dict[str, tuple[str, Callable[[], tuple[int, Any]]]] = {
                "trigger": ("POST", lambda: self._trigger(automation, now)),
                "cancel": ("POST", lambda: self._cancel(automation, now)),
                "refresh-subscriptions": ("POST", lambda: self._refresh_subs(automation)),
                "subscriptions": ("GET", lambda: self._subscriptions(query)),
            }
            if action in actions:
                verb, handler = actions[action]
                return self._dispatch({(4, verb): handler}, 4, method)
        raise ApiError(404, "not_found", "route not found")

    @staticmethod
    def _dispatch(
        handlers: Mapping[tuple[int, str], Callable[[], tuple[int, Any]]], depth: int, method: str
    ) -> tuple[int, Any]:
        handler = handlers.get((depth, method))
        if handler is None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on this route")
        return handler()

    def _program(self, org: Organisation, program_id: str) -> Program:
        self._check_uuid("programId", program_id)
        program = self._programs.get(program_id)
        if program is None or program.org_id != org.id:
            raise ApiError(404, "not_found", "program not found")
        return program

    def _automation(self, program: Program, automation_id: str) -> Automation:
        self._check_uuid("automationId", automation_id)
        automation = self._automations.get(automation_id)
        if automation is None or automation.program_id != program.id:
            raise ApiError(404, "not_found", "automation not found")
        return automation

    def _check_uuid(self, field: str, value: str) -> None:
        if is_uuid(value):
            return
        if self.options.malformed_id_status == 404:
            raise ApiError(404, "not_found", f"{field.removesuffix('Id')} not found")
        raise _validation(
            f"{field} must be a UUID",
            field=field,
            reason="invalid_format",
            expected="uuid",
            received=value,
        )

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        return ScripEmulator._parse(raw)

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "validation_error", "request body must be valid JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "request body must be a JSON object")
        return body

    # ------------------------------------------------------------- pagination
    @staticmethod
    def _limit(query: Mapping[str, str]) -> int:
        raw = query.get("limit")
        if raw is None:
            return 50
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 200:
            raise _validation(
                "limit must be between 1 and 200",
                field="limit",
                reason="out_of_range",
                expected="1..200",
                received=raw,
            )
        return limit

    @staticmethod
    def encode_cursor(created_at: datetime, item_id: str) -> str:
        raw = f"{created_at.isoformat()}|{item_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str) -> tuple[datetime, str]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            stamp, _, item_id = raw.partition("|")
            created_at = datetime.fromisoformat(stamp)
            if created_at.tzinfo is None or not is_uuid(item_id):
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_cursor", "cursor is invalid or expired") from exc
        return created_at, item_id

    def _page(self, items: list[Any], query: Mapping[str, str]) -> tuple[int, Any]:
        """One page of ``items`` (already filtered), newest first, after the cursor."""
        limit = self._limit(query)
        ordered = sorted(items, key=lambda a: (a.created_at, a.id), reverse=True)
        cursor = query.get("cursor")
        if cursor:
            after = self._decode_cursor(cursor)
            ordered = [a for a in ordered if (a.created_at, a.id) < after]
        page = ordered[:limit]
        has_more = len(ordered) > limit
        next_cursor = self.encode_cursor(page[-1].created_at, page[-1].id) if has_more else None
        return 200, {
            "data": [a.to_json() for a in page],
            "pagination": {"has_more": has_more, "next_cursor": next_cursor},
        }

    @staticmethod
    def _enum(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
        value = query.get(name)
        if value is None or value == "":
            return None
        if value not in allowed:
            raise _validation(
                f"{name} must be one of {', '.join(allowed)}",
                field=name,
                reason="invalid_enum",
                expected="|".join(allowed),
                received=value,
            )
        return value

    def _list_programs(self, org: Organisation, query: Mapping[str, str]) -> tuple[int, Any]:
        include_archived = query.get("include_archived", "false").lower() == "true"
        search = (query.get("search") or "").casefold()
        items = [
            p
            for p in self._programs.values()
            if p.org_id == org.id
            and (include_archived or p.status != "ARCHIVED")
            and search in p.name.casefold()
        ]
        return self._page(items, query)

    def _list_automations(self, program: Program, query: Mapping[str, str]) -> tuple[int, Any]:
        status = self._enum(query, "status", STATUSES)
        trigger_type = self._enum(query, "trigger_type", TRIGGER_TYPES)
        scope = self._enum(query, "scope", SCOPES)
        source = self._enum(query, "source", SOURCES)
        include_archived = query.get("include_archived", "false").lower() == "true"
        search = (query.get("search") or "").casefold()
        self._limit(query)
        items = [
            a
            for a in self._automations.values()
            if a.program_id == program.id
            and (status is None or a.status == status)
            and (status is not None or include_archived or a.status != "archived")
            and (trigger_type is None or a.trigger_type == trigger_type)
            and (scope is None or a.scope == scope)
            and (source is None or a.source == source)
            and search in a.name.casefold()
        ]
        return self._page(items, query)

    # --------------------------------------------------------------- mutation
    def _create(self, program: Program, body: dict[str, Any], now: datetime) -> tuple[int, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise _validation(
                "name is required (1-255 characters)",
                field="name",
                reason="required",
                expected="string(1..255)",
                received=name,
            )
        event_name = body.get("event_name")
        if not isinstance(event_name, str) or not 1 <= len(event_name) <= 255:
            raise _validation(
                "event_name is required (1-255 characters)",
                field="event_name",
                reason="required",
                expected="string(1..255)",
                received=event_name,
            )
        trigger = body.get("trigger")
        trigger_type = trigger.get("type") if isinstance(trigger, dict) else None
        if trigger_type not in TRIGGER_TYPES:
            raise _validation(
                "trigger.type is required",
                field="trigger.type",
                reason="invalid_enum",
                expected="|".join(TRIGGER_TYPES),
                received=trigger_type,
            )
        assert isinstance(trigger, dict)
        scope = body.get("scope")
        if scope not in SCOPES:
            raise _validation(
                "scope is required",
                field="scope",
                reason="invalid_enum",
                expected="|".join(SCOPES),
                received=scope,
            )
        if trigger_type in ("immediate", "participant_state") and scope != "participants":
            raise _validation(
                f"{trigger_type} automations require scope participants",
                field="scope",
                reason="invalid_combination",
                expected="participants",
                received=scope,
            )
        if trigger_type == "cron" and not isinstance(trigger.get("cron_expression"), str):
            raise _validation(
                "trigger.cron_expression is required for cron automations",
                field="trigger.cron_expression",
                reason="required",
                expected="cron expression",
                received=None,
            )
        trigger_at: datetime | None = None
        if trigger_type == "one_time":
            trigger_at = self._timestamp("trigger.trigger_at", trigger.get("trigger_at"))
        for existing in self._automations.values():
            if existing.program_id == program.id and existing.name == name:
                raise ApiError(
                    409, "conflict", "an automation with this name already exists in the program"
                )
        fields: dict[str, Any] = {
            key: body[key]
            for key in (
                "description",
                "guard_condition",
                "participant_filter",
                "participant_id",
                "payload",
                "filter_hints",
            )
            if key in body
        }
        if trigger_type == "participant_state":
            fields["schedule_type"] = trigger.get("schedule_type")
            fields["schedule_config"] = trigger.get("schedule_config")
        if trigger_type == "cron":
            fields["cron_expression"] = trigger["cron_expression"]
        if trigger.get("timezone"):
            fields["timezone"] = trigger["timezone"]
        if trigger_at is not None:
            fields["trigger_at"] = trigger_at
        created = self.add_automation(
            name=name,
            program_id=program.id,
            trigger_type=trigger_type,
            scope=scope,
            event_name=event_name,
            created_at=now,
            **fields,
        )
        automation = self._automations[created["id"]]
        if trigger_type == "immediate":
            automation.start_execution(now, self.options)
        return 201, automation.to_json()

    @staticmethod
    def _timestamp(field: str, value: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise _validation(
                f"{field} must be an RFC 3339 timestamp",
                field=field,
                reason="invalid_format",
                expected="RFC 3339 date-time",
                received=value,
            )
        return parsed

    def _patch(
        self, automation: Automation, body: dict[str, Any], now: datetime
    ) -> tuple[int, Any]:
        for key in body:
            if key not in _PATCHABLE_FIELDS:
                raise _validation(
                    f"{key} cannot be updated",
                    field=key,
                    reason="read_only" if key in automation.to_json() else "unknown_field",
                    expected="one of " + ", ".join(_PATCHABLE_FIELDS),
                    received=key,
                )
            types = _PATCHABLE_FIELDS[key]
            if types is not None and automation.trigger_type not in types:
                raise _validation(
                    f"{key} applies only to {', '.join(types)} automations",
                    field=key,
                    reason="not_applicable",
                    expected=f"trigger_type {'|'.join(types)}",
                    received=automation.trigger_type,
                )
        if "participant_filter" in body and automation.scope != "participants":
            raise _validation(
                "participant_filter applies only to participants scope",
                field="participant_filter",
                reason="not_applicable",
                expected="scope participants",
                received=automation.scope,
            )
        if "status" in body and body["status"] not in PATCHABLE_STATUSES:
            raise _validation(
                "status must be active or paused",
                field="status",
                reason="invalid_enum",
                expected="active|paused",
                received=body["status"],
                status=self.options.invalid_enum_status,
            )
        if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
            raise _validation(
                "name must be a non-empty string",
                field="name",
                reason="invalid_type",
                expected="string(1..255)",
                received=body["name"],
            )
        updates = dict(body)
        if "trigger_at" in updates:
            updates["trigger_at"] = self._timestamp("trigger_at", updates["trigger_at"])
        if automation.status == "archived" or (
            "status" in body and automation.status in FINAL_STATUSES
        ):
            raise ApiError(
                self.options.invalid_transition_status,
                "invalid_state_transition",
                f"automation is {automation.status} and cannot be changed"
                if automation.status == "archived"
                else f"automation is {automation.status}; its status cannot be changed",
                details={
                    "field": "status",
                    "reason": "invalid_state_transition",
                    "expected": "|".join(PATCHABLE_STATUSES),
                    "received": automation.status,
                    "current_status": automation.status,
                    "message": "archived automations cannot be re-activated"
                    if automation.status == "archived"
                    else f"{automation.status} automations cannot change status",
                },
            )
        changed = {k: v for k, v in updates.items() if getattr(automation, k) != v}
        if not changed:
            return 200, automation.to_json()  # idempotent no-op: updated_at untouched
        old_status = automation.status
        for key, value in changed.items():
            setattr(automation, key, value)
        if "cron_expression" in changed:
            automation.period = cron_interval(automation.cron_expression)
            automation.schedule_anchor = cron_anchor(automation.cron_expression, now)
            automation.next_run_at = automation.next_scheduled_after(now)
        if automation.trigger_type == "cron" and old_status != automation.status:
            if automation.status == "paused" and self.options.null_next_run_on_pause:
                automation.next_run_at = None
            elif automation.status == "active" and (
                automation.next_run_at is None or automation.next_run_at <= now
            ):
                automation.next_run_at = automation.next_scheduled_after(now)
        automation.updated_at = now
        return 200, automation.to_json()

    def _archive(self, automation: Automation, now: datetime) -> tuple[int, Any]:
        if automation.status == "archived":
            if self.options.delete_archived_status == 404:
                raise ApiError(404, "not_found", "automation not found")
            return 200, automation.to_json()
        automation.status = "archived"
        automation.next_run_at = None
        automation.updated_at = now
        return 200, automation.to_json()

    def _trigger(self, automation: Automation, now: datetime) -> tuple[int, Any]:
        if automation.status != "active":
            raise self._refusal(TRIGGER_REFUSED, "status", "active", automation.status)
        combination = f"{automation.trigger_type}+{automation.scope}"
        if automation.trigger_type == "participant_state" or combination == "one_time+program":
            raise self._refusal(
                TRIGGER_REFUSED,
                "trigger_type",
                "cron+program, or cron/one_time/immediate with scope participants",
                combination,
            )
        if automation.participant_scoped:
            strict = self.options.trigger_requires_strict_idle
            busy = automation.execution_status != "idle" if strict else automation.running
            if busy:
                raise self._refusal(
                    TRIGGER_REFUSED, "execution_status", "idle", automation.execution_status
                )
            automation.start_execution(now, self.options)
            if automation.trigger_type == "cron":
                automation.last_run_at = now
        else:
            automation.next_run_at = now  # the scheduler fires it at once (docs)
        automation.updated_at = now
        return 200, automation.to_json()

    def _cancel(self, automation: Automation, now: datetime) -> tuple[int, Any]:
        if automation.execution_status not in RUNNING_EXECUTIONS:
            raise ApiError(
                self.options.cancel_idle_status,
                "invalid_state",
                CANCEL_REFUSED,
                details={
                    "field": "execution_status",
                    "reason": "invalid_state",
                    "expected": "|".join(RUNNING_EXECUTIONS),
                    "received": automation.execution_status or "none",
                    "current_status": automation.status,
                },
            )
        automation.cancel_execution(now)
        automation.updated_at = now
        return 200, automation.to_json()

    @staticmethod
    def _refusal(message: str, field: str, expected: str, received: str | None) -> ApiError:
        return ApiError(
            400,
            "invalid_state",
            message,
            details={
                "field": field,
                "reason": "invalid_state",
                "expected": expected,
                "received": received or "none",
            },
        )

    def _refresh_subs(self, automation: Automation) -> tuple[int, Any]:
        if automation.trigger_type != "participant_state":
            raise ApiError(
                400, "invalid_state", "refresh applies only to participant_state automations"
            )
        if automation.status != "active":
            raise self._refusal(
                "Automation must be active to refresh subscriptions",
                "status",
                "active",
                automation.status,
            )
        automation.last_evaluated_at = self.clock.now()
        return 202, {}

    def _subscriptions(self, query: Mapping[str, str]) -> tuple[int, Any]:
        self._enum(query, "status", ("active", "completed", "failed"))
        self._limit(query)
        return 200, {"data": [], "pagination": {"has_more": False, "next_cursor": None}}


__all__ = ["CANCEL_REFUSED", "TRIGGER_REFUSED", "ApiError", "Call", "ScripEmulator"]
