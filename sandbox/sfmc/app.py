"""The SFMC emulator: one Starlette app serving auth, SOAP, Journey and Automation REST.

Every provider request goes through the same steps, in this order:

1. route on the raw path (:mod:`sandbox.sfmc.routing`); a decoded ``.``/``..`` is a 404;
2. knobs: latency, then rate limit, then expire-token, then 5xx, then malformed body.
   Rate limit, 5xx and malformed answer at once and change no state; expire-token expires
   the presented token for good, so the handler answers "Token Expired" / 401;
3. the handler (token check, lazy clock effects via ``Tenant.tick``, the operation);
4. the call is recorded in :attr:`SfmcEmulator.calls`;
5. a held answer (:meth:`SfmcEmulator.hold_answers`) waits for its release: the call has
   acted, its caller is still waiting (a call in flight when the caller is killed).

``/_sandbox/...`` (the control API) skips knobs and recording.
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from sandbox.clock import Clock
from sandbox.knobs import Knobs, KnobSettings
from sandbox.sfmc.auth import AuthService
from sandbox.sfmc.rest import RestService
from sandbox.sfmc.routing import Ctx, Route, Router, not_found, raw_path, rest_error, split_path
from sandbox.sfmc.schedule import Schedule
from sandbox.sfmc.seed import seed as seed_tenant
from sandbox.sfmc.settings import EmulatorSettings
from sandbox.sfmc.soap import SoapService
from sandbox.sfmc.soap_xml import soap_fault
from sandbox.sfmc.state import (
    AWAITING_TRIGGER,
    JOURNEY_STATUSES,
    READY,
    RUNNING,
    SCHEDULED,
    Account,
    Automation,
    JourneyPause,
    JourneyVersion,
    Tenant,
)

_IDS = uuid.UUID("5f3c1a2e-8d4b-4c6a-9e1f-0b7a2c3d4e5f")  # namespace for stable demo ids
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
#: A held answer is given after this many seconds at the latest (a test that failed
#: before its release must not hold the server for good).
HOLD_LIMIT_S = 60.0
_FUELOAUTH_RE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?fueloauth\b[^>]*>\s*([^<\s]+)\s*<")


@dataclass
class CallRecord:
    """One provider call as the emulator saw it."""

    at: datetime
    method: str
    path: str  # raw, percent-encoded
    query: str
    soap_action: str | None
    mid: int | None
    status: int
    knob: str | None  # which knob answered or altered it

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def _soap_action(request: Request) -> str | None:
    raw = request.headers.get("soapaction")
    if raw is None:
        return None
    return raw.strip().strip('"').rstrip("/").rsplit("/", 1)[-1] or None


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


class SfmcEmulator:
    """A stateful SFMC tenant behind one base URL (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        knobs: Knobs | None = None,
        seed: bool = True,
        page_size: int = 2500,
        run_duration_s: float = 60,
    ) -> None:
        self.clock = clock or Clock()
        self.knobs = knobs or Knobs()
        self.settings = EmulatorSettings(page_size=page_size, run_duration_s=run_duration_s)
        self.calls: list[CallRecord] = []
        #: Calls in flight per MID now, and the most ever served at once (tests read it).
        self.in_flight: Counter[int] = Counter()
        self.peak_in_flight: Counter[int] = Counter()
        #: The most calls served at once over every MID together.
        self.peak_in_flight_all = 0
        self._flight_lock = threading.Lock()
        self._hold: tuple[str | None, str | None] | None = None
        self._released = threading.Event()
        self.tenant = Tenant()
        self._seed = seed
        self._auth = AuthService(self.tenant)
        self._soap = SoapService(self.tenant, self._auth, self.settings)
        self._rest = RestService(self.tenant, self._auth)
        self._router = self._provider_routes()
        self._control = self._control_routes()
        self.app = Starlette(
            routes=[StarletteRoute("/{path:path}", self._dispatch, methods=_METHODS)]
        )
        if seed:
            seed_tenant(self)

    # --- Python API -----------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Every request that reached ``POST /v2/token`` (failed ones included)."""
        return self.tenant.token_requests

    @property
    def tokens_issued(self) -> int:
        return self.tenant.tokens_issued

    def expire_all_tokens(self) -> None:
        with self.tenant.lock:
            self.tenant.expire_all_tokens()

    def add_account(self, client_id: str, client_secret: str, mids: list[int]) -> Account:
        account = Account(client_id, client_secret, list(mids))
        with self.tenant.lock:
            self.tenant.accounts[client_id] = account
        return account

    def add_business_unit(self, mid: int, client_id: str | None = None) -> None:
        """Let an installed package (default: every one) use one more business unit
        (``mid``); its automations and journeys are added with ``add_automation`` and
        ``add_journey``."""
        with self.tenant.lock:
            for account in self.tenant.accounts.values():
                if client_id in (None, account.client_id) and mid not in account.mids:
                    account.mids.append(mid)

    def add_automation(
        self,
        mid: int,
        *,
        key: str,
        name: str,
        status: int = SCHEDULED,
        description: str = "",
        automation_type: str = "scheduled",
        schedule: Schedule | None = None,
        object_id: str | None = None,
        last_run_time: datetime | None = None,
    ) -> Automation:
        """Add an automation; a Running (3) one finishes after ``run_duration_s``."""
        now = self.clock.now()
        a = Automation(
            mid=mid,
            object_id=(object_id or str(uuid.uuid5(_IDS, f"{mid}:automation:{key}"))).lower(),
            key=key,
            name=name,
            status=status,
            description=description,
            automation_type=automation_type,
            schedule=schedule,
            created=now - timedelta(days=120),
            modified=now - timedelta(days=3),
            last_run_time=last_run_time,
        )
        if status == RUNNING:
            a.last_run_time = a.last_run_time or now
            a.run_ends_at = now + timedelta(seconds=self.settings.run_duration_s)
            triggered = automation_type == "triggered"
            a.status_after_run = AWAITING_TRIGGER if triggered else SCHEDULED if schedule else READY
        with self.tenant.lock:
            if self.tenant.automation_by_key(mid, key) is not None:
                raise ValueError(f"automation {key!r} already exists in MID {mid}")
            self.tenant.automations.append(a)
            return copy.deepcopy(a)

    def add_journey(
        self,
        mid: int,
        *,
        key: str,
        name: str,
        versions: tuple[str, ...] | list[str] = ("Published",),
        description: str = "",
        entry_mode: str = "MultipleEntries",
        population: int = 0,
        paused_days: int = 14,
        guardrail_action: str = "none",
        paused_at: datetime | None = None,
    ) -> list[JourneyVersion]:
        """Add a journey with one version per status (version 1 first).

        Paused versions get a pause of ``paused_days`` from ``paused_at`` (default now).
        """
        unknown = [s for s in versions if s not in JOURNEY_STATUSES]
        if unknown or not versions:
            raise ValueError(f"unknown journey statuses {unknown} (use {sorted(JOURNEY_STATUSES)})")
        now = self.clock.now()
        definition_id = str(uuid.uuid5(_IDS, f"{mid}:journey:{key}"))
        created: list[JourneyVersion] = []
        for number, status in enumerate(versions, start=1):
            age = timedelta(days=30 * (len(versions) - number) + 5)
            live = status in ("Published", "Paused", "Unpublished")
            v = JourneyVersion(
                mid=mid,
                key=key,
                name=name,
                version=number,
                status=status,
                id=str(uuid.uuid5(_IDS, f"{mid}:journey:{key}:v{number}")),
                definition_id=definition_id,
                description=description,
                entry_mode=entry_mode,
                created=now - age - timedelta(days=10),
                modified=now - age,
                last_published=now - age if status != "Draft" else None,
                current_population=(population if number == len(versions) else population // 10)
                if live
                else 0,
                cumulative_population=population * 3,
            )
            if status == "Paused":
                v.pause = JourneyPause(paused_at or now, paused_days, guardrail_action)
            created.append(v)
        with self.tenant.lock:
            if self.tenant.journey_by_key(mid, key):
                raise ValueError(f"journey {key!r} already exists in MID {mid}")
            self.tenant.journeys.extend(created)
            return copy.deepcopy(created)

    def automation(self, mid: int, key: str) -> Automation:
        """A copy of the automation as it is now (KeyError when missing)."""
        with self.tenant.lock:
            self.tenant.tick(self.clock.now())
            a = self.tenant.automation_by_key(mid, key)
            if a is None:
                raise KeyError(f"no automation {key!r} in MID {mid}")
            return copy.deepcopy(a)

    def journey_versions(self, mid: int, key: str) -> list[JourneyVersion]:
        with self.tenant.lock:
            self.tenant.tick(self.clock.now())
            versions = self.tenant.journey_by_key(mid, key)
            if not versions:
                raise KeyError(f"no journey {key!r} in MID {mid}")
            return copy.deepcopy(versions)

    def journey(self, mid: int, key: str, version: int | None = None) -> JourneyVersion:
        """A copy of one version (default: the latest) as it is now (KeyError when missing)."""
        versions = self.journey_versions(mid, key)
        found = [v for v in versions if version is None or v.version == version]
        if not found:
            raise KeyError(f"journey {key!r} in MID {mid} has no version {version}")
        return found[-1]

    def clear_calls(self) -> None:
        self.calls.clear()
        with self._flight_lock:
            self.peak_in_flight.clear()
            self.peak_in_flight_all = 0

    def hold_answers(self, *, soap_action: str | None = None, path: str | None = None) -> None:
        """From now on, calls with this SOAP action (and/or whose path contains ``path``)
        act and are recorded as usual, but their answer waits for :meth:`release_answers`."""
        self._released.clear()
        self._hold = (soap_action, path)

    def release_answers(self) -> None:
        """Answer the held calls (and stop holding)."""
        self._hold = None
        self._released.set()

    def _held(self, soap_action: str | None, path: str) -> bool:
        hold = self._hold
        if hold is None:
            return False
        action, part = hold
        return (action is None or action == soap_action) and (part is None or part in path)

    def reset(self) -> None:
        """Back to the seed (or empty): state, tokens, counters, knobs and calls. Time goes on."""
        with self.tenant.lock:
            self.tenant.reset()
        self.knobs.reset()
        self.release_answers()
        self.calls.clear()
        if self._seed:
            seed_tenant(self)

    def state(self) -> dict[str, Any]:
        """Everything, with the journeys' internal pause ends (the API never shows them)."""
        now = self.clock.now()
        with self.tenant.lock:
            self.tenant.tick(now)
            t = self.tenant
            return {
                "now": now.isoformat(),
                "token_requests": t.token_requests,
                "tokens_issued": t.tokens_issued,
                "tokens": [
                    {
                        "client_id": k.client_id,
                        "mid": k.mid,
                        "issued_at": _iso(k.issued_at),
                        "expires_at": _iso(k.expires_at),
                        "expired": k.expired(now),
                    }
                    for k in t.tokens.values()
                ],
                "accounts": [
                    {"client_id": a.client_id, "mids": a.mids} for a in t.accounts.values()
                ],
                "automations": [_automation_state(a) for a in t.automations],
                "journeys": [_journey_state(v) for v in t.journeys],
            }

    # --- dispatch ---------------------------------------------------------------------------

    def _provider_routes(self) -> Router:
        r = Router()
        rest, soap = self._rest, self._soap
        r.add("POST", "/v2/token", self._auth.token, flavor="token", authenticated=False)
        r.add("POST", "/Service.asmx", soap.handle, flavor="soap")
        base = "/interaction/v1/interactions"
        r.add("GET", base, rest.list_journeys)
        r.add("GET", f"{base}/key:{{key}}", rest.get_journey)
        r.add("GET", f"{base}/{{id}}", rest.get_journey)
        for verb, handler in (("pause", rest.pause_journey), ("resume", rest.resume_journey)):
            r.add("POST", f"{base}/{verb}/key:{{key}}", handler)
            r.add("POST", f"{base}/{verb}/{{id}}", handler)
        r.add("POST", f"{base}/stop/{{id}}", rest.stop_journey)
        r.add("GET", "/automation/v1/automations", rest.list_automations)
        r.add("GET", "/automation/v1/automations/{id}", rest.get_automation)
        return r

    async def _dispatch(self, request: Request) -> Response:
        path = raw_path(request)
        segments = split_path(path)
        if segments is None:
            return not_found()
        if segments[0] == "_sandbox":
            route, params, other = self._control.match(request.method, segments)
            if route is None:
                return rest_error(405, 405, "Method Not Allowed") if other else not_found()
            return await route.handler(Ctx(request, path, params, self.clock.now(), "rest"))
        route, params, other = self._router.match(request.method, segments)
        ctx = Ctx(request, path, params, self.clock.now(), route.flavor if route else "rest")
        ctx.soap_action = _soap_action(request) if ctx.flavor == "soap" else None
        mid = await self._presented_mid(request, ctx.flavor) if route is not None else None
        too_many = mid is not None and self._take_flight(mid)
        ctx.mid = mid
        try:
            return await self._serve(request, path, ctx, route, other, too_many=too_many)
        finally:
            if mid is not None:
                with self._flight_lock:
                    self.in_flight[mid] -= 1

    async def _presented_mid(self, request: Request, flavor: str) -> int | None:
        """The business unit of the token a call presents (None: no known token)."""
        value: str | None = None
        if flavor == "soap":
            found = _FUELOAUTH_RE.search(await request.body())
            value = found.group(1).decode("utf-8", "replace") if found else None
        else:
            scheme, _, rest = request.headers.get("authorization", "").partition(" ")
            value = rest.strip() if scheme.lower() == "bearer" else None
        if not value:
            return None
        with self.tenant.lock:
            token = self.tenant.tokens.get(value)
            return None if token is None else token.mid

    def _take_flight(self, mid: int) -> bool:
        """Count one more call in flight for ``mid``; True when that is over the limit."""
        limit = self.settings.max_concurrent_calls_per_mid
        with self._flight_lock:
            self.in_flight[mid] += 1
            now = self.in_flight[mid]
            if limit is not None and now > limit:
                return True
            self.peak_in_flight[mid] = max(self.peak_in_flight[mid], now)
            everywhere = sum(self.in_flight.values())
            self.peak_in_flight_all = max(self.peak_in_flight_all, everywhere)
        return False

    async def _serve(
        self,
        request: Request,
        path: str,
        ctx: Ctx,
        route: Route | None,
        other: bool,
        *,
        too_many: bool,
    ) -> Response:
        knob: str | None = None
        response: Response
        if too_many and route is not None:
            knob, response = "concurrency", self._throttled(ctx)
        elif route is None:
            response = rest_error(405, 405, "Method Not Allowed") if other else not_found()
        else:
            knob, early = await self._apply_knobs(ctx, route)
            ctx.now = self.clock.now()
            response = early if early is not None else await route.handler(ctx)
        self.calls.append(
            CallRecord(
                at=ctx.now,
                method=request.method,
                path=path,
                query=request.url.query,
                soap_action=ctx.soap_action,
                mid=ctx.mid,
                status=response.status_code,
                knob=knob,
            )
        )
        if self._held(ctx.soap_action, path):
            await asyncio.to_thread(self._released.wait, HOLD_LIMIT_S)
        return response

    async def _apply_knobs(self, ctx: Ctx, route: Route) -> tuple[str | None, Response | None]:
        k, path = self.knobs, ctx.path
        if k.latency_s > 0 and k.applies(path):
            await asyncio.sleep(k.latency_s)
        if k.take("rate_limit_next", path):
            return "rate_limit", self._throttled(ctx)
        knob = None
        if route.authenticated and k.take("expire_tokens_next", path):
            ctx.force_expire, knob = True, "expire_token"
        if k.roll_5xx(path):
            return "5xx", self._server_error(ctx)
        if k.take("malformed_next", path):
            if ctx.flavor == "soap":
                return "malformed", Response(
                    b"<soap:Envelope><soap:Body><RetrieveRes\x00ponseMsg", media_type="text/xml"
                )
            return "malformed", Response(b'{"status": "Acc', media_type="application/json")
        return knob, None

    def _throttled(self, ctx: Ctx) -> Response:
        if ctx.flavor == "soap":
            return soap_fault(
                "Server", "Rate Limited", actor=self._soap.actor(ctx), apifault=(17, "Rate Limited")
            )
        seconds = self.knobs.settings.retry_after_s
        if self.settings.rest_rate_limit_errorcode == 50200:
            return rest_error(429, 50200, "Too Many Requests. This client is temporarily blocked.")
        return rest_error(
            429,
            50100,
            "Too Many Requests",
            headers={"Retry-After": str(seconds)},
            retryAfter=seconds,
        )

    def _server_error(self, ctx: Ctx) -> Response:
        if ctx.flavor == "soap":
            return soap_fault(
                "Server",
                "An unexpected error has occurred.",
                actor=self._soap.actor(ctx),
                apifault=(2, "UnexpectedError"),
            )
        if self.settings.rest_5xx_status == 503:
            seconds = self.knobs.settings.retry_after_s
            return rest_error(
                503,
                50300,
                "Service Unavailable",
                headers={"Retry-After": str(seconds)},
                retryAfter=seconds,
            )
        return rest_error(500, 500, "Internal Server Error", documentation="")

    # --- control API ------------------------------------------------------------------------

    def _control_routes(self) -> Router:
        r = Router()
        routes = {
            ("GET", "/_sandbox/knobs"): self._get_knobs,
            ("POST", "/_sandbox/knobs"): self._set_knobs,
            ("DELETE", "/_sandbox/knobs"): self._reset_knobs,
            ("GET", "/_sandbox/settings"): self._get_settings,
            ("POST", "/_sandbox/settings"): self._set_settings,
            ("GET", "/_sandbox/clock"): self._get_clock,
            ("POST", "/_sandbox/clock/advance"): self._advance_clock,
            ("GET", "/_sandbox/state"): self._get_state,
            ("POST", "/_sandbox/reset"): self._reset,
            ("GET", "/_sandbox/calls"): self._get_calls,
            ("DELETE", "/_sandbox/calls"): self._clear_calls,
            ("POST", "/_sandbox/tokens/expire"): self._expire_tokens,
        }
        for (method, path), handler in routes.items():
            r.add(method, path, handler, authenticated=False)
        return r

    async def _json_body(self, ctx: Ctx) -> dict[str, Any] | Response:
        try:
            body = await ctx.request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        return body

    async def _get_knobs(self, ctx: Ctx) -> Response:
        return JSONResponse(self.knobs.settings.model_dump())

    async def _set_knobs(self, ctx: Ctx) -> Response:
        body = await self._json_body(ctx)
        if isinstance(body, Response):
            return body
        try:
            merged = KnobSettings.model_validate({**self.knobs.settings.model_dump(), **body})
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        unknown = sorted(set(body) - set(KnobSettings.model_fields))
        if unknown:
            return JSONResponse({"error": f"unknown knobs: {unknown}"}, status_code=400)
        return JSONResponse(self.knobs.set(**merged.model_dump()).model_dump())

    async def _reset_knobs(self, ctx: Ctx) -> Response:
        self.knobs.reset()
        return JSONResponse(self.knobs.settings.model_dump())

    async def _get_settings(self, ctx: Ctx) -> Response:
        return JSONResponse(self.settings.model_dump())

    async def _set_settings(self, ctx: Ctx) -> Response:
        body = await self._json_body(ctx)
        if isinstance(body, Response):
            return body
        try:
            merged = EmulatorSettings.model_validate({**self.settings.model_dump(), **body})
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for name, value in merged.model_dump().items():
            setattr(self.settings, name, value)
        return JSONResponse(self.settings.model_dump())

    async def _get_clock(self, ctx: Ctx) -> Response:
        return JSONResponse({"now": self.clock.now().isoformat()})

    async def _advance_clock(self, ctx: Ctx) -> Response:
        body = await self._json_body(ctx)
        if isinstance(body, Response):
            return body
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return JSONResponse({"error": "seconds must be a number >= 0"}, status_code=400)
        return JSONResponse({"now": self.clock.advance(float(seconds)).isoformat()})

    async def _get_state(self, ctx: Ctx) -> Response:
        return JSONResponse(self.state())

    async def _reset(self, ctx: Ctx) -> Response:
        self.reset()
        return JSONResponse({"reset": True, "now": self.clock.now().isoformat()})

    async def _get_calls(self, ctx: Ctx) -> Response:
        return JSONResponse({"calls": [c.to_json() for c in list(self.calls)]})

    async def _clear_calls(self, ctx: Ctx) -> Response:
        self.clear_calls()
        return JSONResponse({"calls": []})

    async def _expire_tokens(self, ctx: Ctx) -> Response:
        self.expire_all_tokens()
        return JSONResponse({"expired": True})


def _automation_state(a: Automation) -> dict[str, Any]:
    return {
        "mid": a.mid,
        "object_id": a.object_id,
        "key": a.key,
        "name": a.name,
        "status": a.status,
        "status_name": a.status_name,
        "type": a.automation_type,
        "schedule": a.schedule.rest_json(a.schedule_status) if a.schedule else None,
        "last_run_time": _iso(a.last_run_time),
        "run_ends_at": _iso(a.run_ends_at),
    }


def _journey_state(v: JourneyVersion) -> dict[str, Any]:
    p = v.pause
    pause = None
    if p is not None:
        pause = {
            "paused_at": _iso(p.paused_at),
            "paused_days": p.paused_days,
            "ends_at": _iso(p.ends_at),
            "guardrail_action": p.guardrail_action,
            "extend_wait_end_dates": p.extend_wait_end_dates,
            "retain_contact_injection": p.retain_contact_injection,
            "guardrail_reached": p.guardrail_reached,
            "ended_at": _iso(p.ended_at),
            "end_reason": p.end_reason,
        }
    return {
        "mid": v.mid,
        "key": v.key,
        "name": v.name,
        "version": v.version,
        "id": v.id,
        "definition_id": v.definition_id,
        "status": v.status,
        "current_population": v.current_population,
        "pause": pause,
    }
