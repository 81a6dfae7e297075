"""Run one command against the providers and verify the result by reading it back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from bot.domain import rules
from bot.domain.commands import (
    ListCommand,
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import (
    AmbiguousTarget,
    BadInput,
    BotError,
    NotFound,
    ProductionRefused,
)
from bot.domain.help import USAGE
from bot.domain.models import (
    ActionReceipt,
    OperationResult,
    TargetKind,
    TargetState,
    TargetSummary,
    ThenAction,
    Verb,
    VersionSelector,
)
from bot.domain.names import normalize, rank, same_name, suggestion_text
from bot.service.ports import Environment as Environment
from bot.service.ports import Provider

MutatingCommand = PauseCommand | ResumeCommand | StopCommand | RunCommand

#: Waits between read-backs while a provider catches up with an accepted action.
DEFAULT_READBACK_DELAYS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
#: Targets read per provider to match names as people type them and to suggest some.
CATALOGUE_MAX = 500


EnvironmentLookup = Callable[[str | None], Environment]
#: Told ``(attempt, attempts)`` before each read-back after the first one.
Progress = Callable[[int, int], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _candidate(environment: str, summary: TargetSummary) -> str:
    """A qualified target to pick among same-named ones (a scrip id with its name)."""
    typed = f"{environment}/{summary.kind.value}:{summary.key}"
    if summary.kind.keyed_by_id and summary.name.strip():
        return f'{typed} ("{summary.name}")'
    return typed


class OperationService:
    """The use cases shared by the CLI, the console and Slack."""

    def __init__(
        self,
        *,
        environments: EnvironmentLookup,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        readback_delays: Sequence[float] = DEFAULT_READBACK_DELAYS,
    ) -> None:
        self._environments = environments
        self._clock = clock
        self._sleep = sleep
        self._readback_delays = tuple(readback_delays) or (0.0,)

    @property
    def readback_delays(self) -> tuple[float, ...]:
        """Seconds to wait before each read-back of a verb (the first is usually 0)."""
        return self._readback_delays

    async def sleep(self, seconds: float) -> None:
        """Wait between read-backs (injected: tests do not wait)."""
        await self._sleep(seconds)

    def environment(self, name: str | None) -> Environment:
        """The named (or default) environment; ConfigError for an unknown one."""
        return self._environments(name)

    # -- resolution -------------------------------------------------------------------

    async def resolve(self, ref: TargetRef, *, version: int | None = None) -> TargetState:
        """Find the one target ``ref`` names: by key first, then by exact name."""
        env = self._environments(ref.environment)
        kinds = [ref.kind] if ref.kind else list(env.providers)
        providers = [(kind, env.provider(kind)) for kind in kinds]

        by_key = await asyncio.gather(
            *(self._get_or_none(p, ref.name, version) for _, p in providers)
        )
        hits = [state for state in by_key if state is not None]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise AmbiguousTarget(
                f"{ref.name!r} is a key in several providers of {env.name}.",
                candidates=[h.target.label() for h in hits],
                environment=env.name,
                query=ref.name,
                matches=[h.summary() for h in hits],
            )

        by_name = await asyncio.gather(*(p.find_by_name(ref.name) for _, p in providers))
        named: list[tuple[Provider, TargetSummary]] = [
            (p, s) for (_, p), found in zip(providers, by_name, strict=True) for s in found
        ]
        catalogue: list[TargetSummary] | None = None
        if not named:  # as people type names: case, extra spaces, '-', '_' or ' '
            catalogue = await self._catalogue([p for _, p in providers])
            provider_of = dict(providers)
            named = [
                (provider_of[s.kind], s)
                for s in catalogue
                if s.kind in provider_of
                and (same_name(ref.name, s.name) or same_name(ref.name, s.key))
            ]
        if len(named) == 1:
            provider, summary = named[0]
            return await provider.get(summary.key, version=version)
        if len(named) > 1:
            raise AmbiguousTarget(
                f"Several targets in {env.name} are named {ref.name!r}.",
                candidates=[_candidate(env.name, s) for _, s in named],
                environment=env.name,
                query=ref.name,
                matches=[s for _, s in named],
            )
        if catalogue is None:
            catalogue = await self._catalogue([p for _, p in providers])
        suggestions = [
            suggestion_text(s, environment=ref.environment, others=catalogue)
            for s in rank(ref.name, catalogue)
        ]
        where = f"{ref.kind.value} targets" if ref.kind else "any provider"
        raise NotFound(
            f"No target {ref.name!r} in {where} of environment {env.name}.",
            suggestions=suggestions,
        )

    @staticmethod
    async def _get_or_none(provider: Provider, key: str, version: int | None) -> TargetState | None:
        try:
            return await provider.get(key, version=version)
        except NotFound:
            return None

    @staticmethod
    async def _catalogue(providers: Sequence[Provider]) -> list[TargetSummary]:
        """Every target of ``providers`` (names and keys, for matching and suggestions)."""
        found = await asyncio.gather(*(p.search("", limit=CATALOGUE_MAX) for p in providers))
        unique: dict[tuple[TargetKind, str], TargetSummary] = {}
        for summaries in found:
            for s in summaries:
                unique.setdefault((s.kind, s.key), s)
        return list(unique.values())

    # -- reads ------------------------------------------------------------------------

    async def search(
        self, environment: str | None, text: str, *, limit: int = 50, within: float = 2.0
    ) -> list[TargetSummary]:
        """Targets of every provider whose key or name contains ``text``; when none does,
        those whose name or key contains it the way people type names (case, spaces, '-'
        or '_'), else the closest ones, best first.

        Providers that do not answer within ``within`` seconds (in all) are left out (a
        picker must answer inside Slack's 3 seconds).
        """
        env = self._environments(environment)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within

        async def one(provider: Provider, needle: str, most: int) -> list[TargetSummary]:
            try:
                left = max(0.0, deadline - loop.time())
                return await asyncio.wait_for(provider.search(needle, limit=most), left)
            except (TimeoutError, BotError):
                return []

        async def every(needle: str, most: int) -> list[TargetSummary]:
            found = await asyncio.gather(*(one(p, needle, most) for p in env.providers.values()))
            return [s for summaries in found for s in summaries]

        hits = await every(text, limit)
        wanted = normalize(text)
        if hits or not wanted:
            return hits[:limit]
        catalogue = await every("", CATALOGUE_MAX)
        close = [s for s in catalogue if wanted in normalize(s.name) or wanted in normalize(s.key)]
        return close[:limit] or rank(text, catalogue, limit=limit)

    async def status(self, ref: TargetRef, *, version: int | None = None) -> TargetState:
        return await self.resolve(ref, version=version)

    async def list_targets(self, command: ListCommand) -> list[TargetState]:
        env = self._environments(command.environment)
        kinds = [command.kind] if command.kind else list(env.providers)
        paused_only = command.scope.value == "paused"
        results = await asyncio.gather(
            *(env.provider(k).list_states(paused_only=paused_only) for k in kinds)
        )
        needle = normalize(command.filter or "")
        return [
            state
            for states in results
            for state in states
            if needle in normalize(state.target.name) or needle in normalize(state.target.key)
        ]

    # -- actions ----------------------------------------------------------------------

    async def check(
        self, command: MutatingCommand, *, allow_production: bool = False
    ) -> TargetState:
        """Resolve the target and apply every rule; return the state it starts from.

        Production environments need ``allow_production`` (an approval).
        """
        env = self._environments(command.target.environment)
        if env.production and not allow_production:
            raise ProductionRefused(
                f"{env.name} is a production environment: changes there need an approval "
                "in Slack. Nothing was changed."
            )
        versions = self._versions(command)
        before = await self.resolve(command.target, version=versions.version)
        kind = before.target.kind
        traits = env.provider(kind).traits
        if (
            isinstance(command, PauseCommand)
            and command.options.then is ThenAction.STOP
            and not traits.ends_pause_natively
        ):
            raise BadInput(
                f"'then stop' only applies to journeys; {before.target.label()} is a "
                f"{kind.value}. Use 'then resume' or 'then keep'."
            )
        if versions.all_versions and not traits.versions:
            raise BadInput("--all-versions only applies to journeys.")
        if isinstance(command, PauseCommand):
            too_long = rules.pause_too_long(traits, command.options, self._clock())
            if too_long is not None:
                # a bare name that turned out to be a journey: refused before anything is
                # recorded, like a 'journey:' target refused by the grammar
                raise BadInput(f"{too_long}.", usage=USAGE[Verb.PAUSE])
        rules.check_allowed(traits, Verb(command.verb), before, versions)
        return before

    async def perform(
        self,
        command: MutatingCommand,
        before: TargetState,
        *,
        progress: Progress | None = None,
    ) -> OperationResult:
        """Act on a checked target and read it back (``progress`` hears about slow read-backs)."""
        env = self._environments(before.target.environment)
        provider = env.provider(before.target.kind)
        verb = Verb(command.verb)
        versions = self._versions(command)
        receipt = await self._act(provider, command, before, versions)
        after = await self._read_back(provider, verb, before, versions, progress)
        verified = rules.is_verified(provider.traits, verb, before, after, versions)
        return OperationResult(
            verb=verb,
            target=after.target,
            before=before,
            after=after,
            expected=rules.expected_after(provider.traits, verb),
            verified=verified,
            request_id=receipt.request_id,
            provider_message=receipt.message,
            note=None
            if verified
            else "The provider accepted the request but the read-back does not show the "
            "expected state yet; check again with status.",
        )

    async def execute(
        self, command: MutatingCommand, *, allow_production: bool = False
    ) -> OperationResult:
        """Check, act, read back."""
        before = await self.check(command, allow_production=allow_production)
        return await self.perform(command, before)

    @staticmethod
    def _versions(command: MutatingCommand) -> VersionSelector:
        return VersionSelector() if isinstance(command, RunCommand) else command.versions

    @staticmethod
    async def _act(
        provider: Provider,
        command: MutatingCommand,
        before: TargetState,
        versions: VersionSelector,
    ) -> ActionReceipt:
        match command:
            case PauseCommand():
                return await provider.pause(before, options=command.options, versions=versions)
            case ResumeCommand():
                return await provider.resume(before, versions=versions)
            case StopCommand():
                return await provider.stop(before, versions=versions)
            case RunCommand():
                return await provider.run(before)

    async def _read_back(
        self,
        provider: Provider,
        verb: Verb,
        before: TargetState,
        versions: VersionSelector,
        progress: Progress | None = None,
    ) -> TargetState:
        after = before
        total = len(self._readback_delays)
        for attempt, delay in enumerate(self._readback_delays, start=1):
            if delay:
                if progress is not None:
                    await progress(attempt, total)
                await self._sleep(delay)
            after = await provider.get(before.target.key, version=before.target.version)
            if rules.is_verified(provider.traits, verb, before, after, versions):
                break
        return after
