"""SFMC Journey Builder over REST: status, pause (with options), resume, stop.

Facts (reference sfmc.md §3): pause and resume answer HTTP 202 for success
(``{"status":"Accepted"}``) *and* for failure (``{"message","errorcode",...}``);
pause takes ``versionNumber`` or ``allVersions`` and ``PausedDays`` of at most 14;
stop works by id only and answers HTTP 200 with no body. Auth, retries and error
mapping live in :mod:`providers.sfmc.rest`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.domain.errors import BadInput, InvalidState, NotFound, ProviderError, Unsupported
from bot.domain.models import (
    MAX_JOURNEY_PAUSED_DAYS,
    ActionReceipt,
    NormalState,
    PauseOptions,
    Target,
    TargetKind,
    TargetState,
    TargetSummary,
    ThenAction,
    Verb,
    VersionSelector,
    VersionState,
)
from bot.domain.traits import ProviderTraits
from providers.http import CallLimit
from providers.sfmc.auth import TokenProvider
from providers.sfmc.rest import PROVIDER, Params, RestResponse, SfmcRestClient, segment

INTERACTIONS = "interaction/v1/interactions"
#: The list endpoint's maximum (and default) page size [SF-Swagger].
PAGE_SIZE = 50

#: Journey ``status`` -> provider-neutral state (compared case-insensitively).
STATUS_MAP: dict[str, NormalState] = {
    "published": NormalState.ACTIVE,
    "paused": NormalState.PAUSED,
    "stopped": NormalState.STOPPED,
    "draft": NormalState.DRAFT,
    "unpublished": NormalState.FINISHING,  # the UI's "Finishing"
    "scheduledtopublish": NormalState.WAITING,
    "scheduledtosend": NormalState.WAITING,  # single-send journeys
    "sent": NormalState.INACTIVE,  # single-send journeys, done
    "deleted": NormalState.ARCHIVED,
}

#: Versions that stop can act on (what mcdev's ``key/*`` stops).
STOPPABLE = frozenset({NormalState.ACTIVE, NormalState.PAUSED, NormalState.FINISHING})

GUARDRAIL: dict[ThenAction, str] = {
    ThenAction.RESUME: "resume",
    ThenAction.STOP: "stop",
    ThenAction.KEEP: "none",
}

PAUSE_USAGE = (
    "pause <journey> [for <N>d (1-14) | until <date-time within 14 days>] "
    "[then resume|stop|keep] [--version N | --all-versions]"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def normal_state(status: str) -> NormalState:
    return STATUS_MAP.get(status.strip().lower(), NormalState.UNKNOWN)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _items(page: Any, *, what: str) -> list[dict[str, Any]]:
    if not isinstance(page, dict) or not isinstance(page.get("items", []), list):
        raise ProviderError(
            f"Could not {what}: SFMC's answer had no item list",
            provider=PROVIDER,
            provider_message="unexpected response shape",
        )
    return [item for item in page.get("items", []) if isinstance(item, dict)]


S = NormalState

#: What journeys can do (reference sfmc.md): versions, and Journey Builder ends a timed
#: pause by itself (``PausedDays``, whole days, at most 14).
JOURNEY_TRAITS = ProviderTraits(
    product="Journey Builder",
    noun="journey",
    allowed_from={
        Verb.PAUSE: frozenset({S.ACTIVE}),
        Verb.RESUME: frozenset({S.PAUSED}),
        Verb.STOP: frozenset({S.ACTIVE, S.PAUSED, S.FINISHING}),
    },
    expected_after={
        Verb.PAUSE: frozenset({S.PAUSED}),
        Verb.RESUME: frozenset({S.ACTIVE}),
        Verb.STOP: frozenset({S.STOPPED}),
    },
    unsupported={Verb.RUN: "Journeys cannot be run once: they are published, not run."},
    versions=True,
    ends_pause_natively=True,
    extends_running_pause=False,
    max_pause_days=MAX_JOURNEY_PAUSED_DAYS,
    # a bulk request's targets in flight: as many as a business unit's 20 concurrent calls,
    # so one kind alone (or the one left when the other is done) keeps all 20 busy; the
    # pooled call limit holds automations and journeys together to 20
    parallel_targets=20,
)


class SfmcJourneyProvider:
    """Journeys of one SFMC business unit in one environment."""

    kind: TargetKind = TargetKind.JOURNEY
    traits: ProviderTraits = JOURNEY_TRAITS

    def __init__(
        self,
        *,
        environment: str,
        tokens: TokenProvider,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        limit: CallLimit | None = None,
    ) -> None:
        self.environment = environment
        self._clock = clock
        self._rest = SfmcRestClient(
            tokens=tokens,
            http=http,
            sleep=sleep,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            limit=limit,
        )

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client belongs to the caller."""

    # -- reads ------------------------------------------------------------------------

    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        """One journey version (the latest when ``version`` is None) with all its versions."""
        label = f"journey '{key}'" + (f" version {version}" if version is not None else "")
        not_found = f"No {label} in SFMC ({self.environment})"
        doc = await self._get_by_key(key, version=version, what=f"read {label}", nf=not_found)
        versions = await self._versions(doc, key=key)
        if version is None and versions:
            latest = max(versions, key=lambda v: v.version)
            if latest.version != _int(doc.get("version")):
                doc = await self._get_by_key(
                    key, version=latest.version, what=f"read {label}", nf=not_found
                )
        return self._state(doc, versions=versions)

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        wanted = name.strip().casefold()
        if not wanted:
            return []
        found: list[TargetSummary] = []
        async for item in self._list(
            {"nameOrDescription": name.strip(), "mostRecentVersionOnly": True},
            what=f"look up journeys named '{name}'",
        ):
            if str(item.get("name", "")).strip().casefold() == wanted:
                found.append(self._summary(item))
        return found

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        """Journeys whose name or description contains ``text``, plus an exact key match."""
        if limit <= 0:
            return []
        text = text.strip()
        found: list[TargetSummary] = []
        if text:
            try:
                state = await self.get(text)
            except NotFound:
                pass
            else:
                t = state.target
                found.append(
                    TargetSummary(
                        kind=self.kind, key=t.key, name=t.name, id=t.id, raw_status=state.raw_status
                    )
                )
        params: dict[str, str | int | bool] = {"mostRecentVersionOnly": True}
        if text:
            params["nameOrDescription"] = text
        async for item in self._list(
            params, what="search journeys", page_size=min(PAGE_SIZE, max(limit, 1))
        ):
            if len(found) >= limit:
                break
            summary = self._summary(item)
            if all(s.key != summary.key for s in found):
                found.append(summary)
        return found[:limit]

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        """Every journey's latest version; with ``paused_only``, every paused *version*.

        A paused old version matters even when a newer version exists, so the paused
        listing asks for all versions with ``status=Paused`` (one state per version).
        """
        params: dict[str, str | int | bool] = (
            {"status": "Paused", "mostRecentVersionOnly": False}
            if paused_only
            else {"mostRecentVersionOnly": True}
        )
        states = [
            self._state(item, versions=())
            async for item in self._list(params, what="list journeys")
        ]
        if paused_only:
            states = [s for s in states if s.state is NormalState.PAUSED]
        return states

    # -- mutations --------------------------------------------------------------------

    async def pause(
        self, state: TargetState, *, options: PauseOptions, versions: VersionSelector
    ) -> ActionReceipt:
        days = options.journey_paused_days(self._clock())
        if not 1 <= days <= MAX_JOURNEY_PAUSED_DAYS:
            raise BadInput(
                f"Journey Builder pauses a journey for at most {MAX_JOURNEY_PAUSED_DAYS} days, "
                f"and this pause would last {days} days. Pause for {MAX_JOURNEY_PAUSED_DAYS}d "
                "or less and pause again later; 'then keep' does not make a journey pause "
                "last longer.",
                usage=PAUSE_USAGE,
            )
        body = {
            "PausedDays": days,
            "GuardrailAction": GUARDRAIL[options.then],
            "ExtendWaitEndDates": options.extend_waits,
            "RetainContactInjectionWhileJourneyPaused": options.queue_entries,
        }
        params = await self._version_params(state, versions)
        return await self._action("pause", state.target.key, params=params, body=body, state=state)

    async def resume(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        params = await self._version_params(state, versions)
        return await self._action("resume", state.target.key, params=params, body={}, state=state)

    async def stop(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        """Stop one version (or every stoppable version) by id, as the API requires."""
        if versions.all_versions:
            chosen = [v for v in await self._all_versions(state) if v.state in STOPPABLE]
            if not chosen:
                raise InvalidState(
                    f"Cannot stop {state.target.label()} (all versions): no version is "
                    "published, paused or finishing.",
                    current_state=state.raw_status,
                )
        else:
            chosen = [await self._one_version(state, versions.version)]
        receipts = []
        done: list[int] = []
        for v in sorted(chosen, key=lambda v: v.version):
            try:
                receipts.append(await self._stop_version(state, v))
            except ProviderError as exc:
                if done:
                    exc.message += f" (already stopped: {', '.join(f'v{n}' for n in done)})"
                    exc.args = (exc.message,)
                raise
            done.append(v.version)
        ids = [r.request_id for r in receipts if r.request_id]
        messages = [r.message for r in receipts if r.message]
        return ActionReceipt(
            request_id=", ".join(ids) or None,
            message="; ".join(messages) or None,
        )

    async def run(self, state: TargetState) -> ActionReceipt:
        raise Unsupported("Journeys cannot be run once: they are published, not run.")

    # -- internals --------------------------------------------------------------------

    async def _get_by_key(
        self, key: str, *, version: int | None, what: str, nf: str
    ) -> dict[str, Any]:
        params: dict[str, str | int | bool] = {"extras": "stats"}
        if version is not None:
            params["versionNumber"] = version
        doc = await self._rest.get_json(
            f"{INTERACTIONS}/key:{segment(key)}", params=params, what=what, not_found=nf
        )
        if not isinstance(doc, dict) or not doc.get("id"):
            raise ProviderError(
                f"Could not {what}: SFMC's answer had no journey id",
                provider=PROVIDER,
                provider_message="unexpected response shape",
            )
        if version is not None and _int(doc.get("version")) not in (None, version):
            raise NotFound(nf)
        return doc

    async def _versions(self, doc: dict[str, Any], *, key: str) -> tuple[VersionState, ...]:
        """Every version of the journey ``doc`` belongs to, oldest first."""
        ident = str(doc.get("definitionId") or doc["id"])
        found: dict[int, VersionState] = {}
        async for item in self._list(
            {"id": ident, "mostRecentVersionOnly": False},
            what=f"list the versions of journey '{key}'",
        ):
            if str(item.get("key", key)) != key:
                continue
            vs = self._version_state(item)
            if vs is not None:
                found[vs.version] = vs
        own = self._version_state(doc)
        if own is not None:
            found.setdefault(own.version, own)
        return tuple(found[n] for n in sorted(found))

    async def _list(
        self, params: Params, *, what: str, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[dict[str, Any]]:
        page = 1
        seen = 0
        while True:
            data = await self._rest.get_json(
                INTERACTIONS,
                params={**params, "$page": page, "$pageSize": page_size},
                what=what,
            )
            items = _items(data, what=what)
            for item in items:
                yield item
            seen += len(items)
            count = _int(data.get("count"))
            if not items or len(items) < page_size or (count is not None and seen >= count):
                return
            page += 1

    def _version_state(self, item: dict[str, Any]) -> VersionState | None:
        number = _int(item.get("version"))
        if number is None:
            return None
        status = str(item.get("status") or "")
        return VersionState(
            version=number, id=str(item.get("id", "")), status=status, state=normal_state(status)
        )

    def _state(self, doc: dict[str, Any], *, versions: tuple[VersionState, ...]) -> TargetState:
        status = str(doc.get("status") or "")
        stats = doc.get("stats")
        population = _int(stats.get("currentPopulation")) if isinstance(stats, dict) else None
        details = {
            name: doc[name]
            for name in (
                "definitionId",
                "definitionType",
                "entryMode",
                "scheduledStatus",
                "modifiedDate",
                "lastPublishedDate",
                "description",
            )
            if doc.get(name) is not None
        }
        return TargetState(
            target=Target(
                environment=self.environment,
                kind=self.kind,
                key=str(doc.get("key", "")),
                name=str(doc.get("name") or doc.get("key", "")),
                id=str(doc.get("id", "")),
                version=_int(doc.get("version")),
            ),
            state=normal_state(status),
            raw_status=status or "unknown",
            versions=versions,
            population=population,
            details=details,
        )

    def _summary(self, item: dict[str, Any]) -> TargetSummary:
        return TargetSummary(
            kind=self.kind,
            key=str(item.get("key", "")),
            name=str(item.get("name") or item.get("key", "")),
            id=str(item.get("id", "")),
            raw_status=str(item["status"]) if item.get("status") else None,
        )

    async def _version_params(
        self, state: TargetState, versions: VersionSelector
    ) -> dict[str, str | int | bool]:
        if versions.all_versions:
            return {"allVersions": True}
        number = versions.version or state.target.version
        if number is None:  # a state built without a version: ask for the latest
            number = (await self.get(state.target.key)).target.version
        if number is None:
            raise ProviderError(
                f"SFMC did not say which version journey '{state.target.key}' is at",
                provider=PROVIDER,
            )
        return {"versionNumber": number}

    async def _action(
        self,
        verb: str,
        key: str,
        *,
        params: Params,
        body: dict[str, Any],
        state: TargetState | None = None,
    ) -> ActionReceipt:
        """``POST /interactions/{verb}/key:{key}``; a 202 body with ``errorcode`` is a failure."""
        if params.get("allVersions"):
            which = "all versions"
        elif params.get("versionNumber") is not None:
            which = f"v{params['versionNumber']}"
        else:
            which = "no version"
        what = f"{verb} journey '{key}' ({which})"
        try:
            response = await self._rest.post(
                f"{INTERACTIONS}/{verb}/key:{segment(key)}",
                params=params,
                json=body,
                what=what,
                not_found=f"No journey '{key}' ({which}) in SFMC ({self.environment}) to {verb}",
            )
        except InvalidState as exc:
            current = state.raw_status if state is not None else exc.current_state
            raise InvalidState(exc.message, current_state=current) from exc
        return self._receipt(response, what=what)

    async def _all_versions(self, state: TargetState) -> tuple[VersionState, ...]:
        if state.versions:
            return state.versions
        return (await self.get(state.target.key)).versions

    async def _one_version(self, state: TargetState, number: int | None) -> VersionState:
        t = state.target
        number = number or t.version
        if number is None or number == t.version:
            if t.id and t.version is not None:
                return VersionState(
                    version=t.version, id=t.id, status=state.raw_status, state=state.state
                )
            fresh = await self.get(t.key)
        else:
            for v in state.versions:
                if v.version == number and v.id:
                    return v
            fresh = await self.get(t.key, version=number)
        ft = fresh.target
        assert ft.version is not None
        return VersionState(
            version=ft.version, id=ft.id, status=fresh.raw_status, state=fresh.state
        )

    async def _stop_version(self, state: TargetState, version: VersionState) -> ActionReceipt:
        key = state.target.key
        what = f"stop journey '{key}' (v{version.version})"
        try:
            response = await self._rest.post(
                f"{INTERACTIONS}/stop/{segment(version.id)}",
                params={"versionNumber": version.version},
                what=what,
                not_found=f"No journey '{key}' v{version.version} in SFMC "
                f"({self.environment}) to stop.",
            )
        except InvalidState as exc:
            raise InvalidState(exc.message, current_state=version.status) from exc
        except ProviderError as exc:
            if exc.http_status != 500:
                raise
            # Stop's only documented error is a bare HTTP 500: most often the version is
            # not running (already stopped, draft). Retrying blindly will not help.
            raise ProviderError(
                f"SFMC could not {what}; it answers HTTP 500 when that version is not "
                "running, so check its status first",
                provider=PROVIDER,
                code=exc.code,
                provider_message=exc.provider_message,
                http_status=exc.http_status,
            ) from exc
        return self._receipt(response, what=what)

    def _receipt(self, response: RestResponse, *, what: str) -> ActionReceipt:
        if response.malformed:
            raise ProviderError(
                f"Could not tell whether SFMC did {what}: its answer was not JSON; "
                "check the journey's status",
                provider=PROVIDER,
                provider_message="the body was not JSON",
                http_status=response.status,
            )
        message: str | None = None
        if isinstance(response.body, dict):
            raw = response.body.get("status") or response.body.get("message")
            message = str(raw) if raw else None
        return ActionReceipt(request_id=response.request_id, message=message)
