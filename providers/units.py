"""Several business units (accounts) of one provider in one environment, as one provider.

An environment may name several SFMC business units; each has its own adapters, token and
call limit. :class:`BusinessUnits` puts the adapters of one kind together behind the
Provider port: a target's key is qualified by its unit's name (``emea/welcome-send``), so
everything that stores a key (requests, pauses, timers, batches, history) remembers which
unit the target lives in and a later call (a timed resume) goes back to that unit. A key
without its unit (as typed, or stored before the environment had several) is looked up in
every unit: one match is used, several are ambiguous (the error names each qualified key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from bot.domain.errors import AmbiguousTarget, BotError, NotFound
from bot.domain.models import (
    ActionReceipt,
    PauseOptions,
    TargetState,
    TargetSummary,
    VersionSelector,
)
from bot.service.ports import BatchResumes, Provider

#: Between a unit's name and the key inside it: ``emea/welcome-send``.
SEPARATOR = "/"


def qualify(unit: str, key: str) -> str:
    return f"{unit}{SEPARATOR}{key}"


def _state_in(unit: str, state: TargetState) -> TargetState:
    target = state.target.model_copy(update={"key": qualify(unit, state.target.key)})
    return state.model_copy(update={"target": target})


def _state_inside(key: str, state: TargetState) -> TargetState:
    return state.model_copy(update={"target": state.target.model_copy(update={"key": key})})


def _summary_in(unit: str, summary: TargetSummary) -> TargetSummary:
    return summary.model_copy(update={"key": qualify(unit, summary.key)})


class BusinessUnits:
    """One kind of target over several units (``units``: name -> that unit's adapter)."""

    def __init__(self, environment: str, units: Mapping[str, Provider]) -> None:
        if len(units) < 2:
            raise ValueError("BusinessUnits puts two or more units together")
        first = next(iter(units.values()))
        self.environment = environment
        self.kind = first.kind
        self.traits = first.traits
        self.units: dict[str, Provider] = dict(units)

    def split(self, key: str) -> tuple[str, Provider, str] | None:
        """``(unit, its adapter, the key inside it)`` for a qualified key, else None."""
        unit, sep, inner = key.partition(SEPARATOR)
        provider = self.units.get(unit) if sep and inner else None
        return None if provider is None else (unit, provider, inner)

    def lane(self, key: str) -> Provider:
        """What a bulk request limits its targets in flight by: the target's unit (each has
        its own call limit), or this provider for a key without its unit."""
        found = self.split(key)
        return self if found is None else found[1]

    # ------------------------------------------------------------------ reads

    async def get(self, key: str, *, version: int | None = None) -> TargetState:
        found = self.split(key)
        if found is not None:
            unit, provider, inner = found
            return _state_in(unit, await provider.get(inner, version=version))
        hits = await self._everywhere(key, version)
        if len(hits) == 1:
            return hits[0]
        names = ", ".join(self.units)
        if not hits:
            raise NotFound(
                f"No {self.traits.noun} with key {key!r} in the business units of "
                f"{self.environment} ({names})."
            )
        units = ", ".join(h.target.key.partition(SEPARATOR)[0] for h in hits)
        raise AmbiguousTarget(
            f"{key!r} is a key in {len(hits)} business units of {self.environment} "
            f"({units}): put the business unit before it.",
            candidates=[h.target.label() for h in hits],
            environment=self.environment,
            query=key,
            matches=[h.summary() for h in hits],
        )

    async def _everywhere(self, key: str, version: int | None) -> list[TargetState]:
        async def one(unit: str, provider: Provider) -> TargetState | None:
            try:
                return _state_in(unit, await provider.get(key, version=version))
            except NotFound:
                return None

        found = await asyncio.gather(*(one(u, p) for u, p in self.units.items()))
        return [state for state in found if state is not None]

    async def find_by_name(self, name: str) -> list[TargetSummary]:
        found = self.split(name)
        if found is not None:
            unit, provider, inner = found
            return [_summary_in(unit, s) for s in await provider.find_by_name(inner)]
        every = await asyncio.gather(*(p.find_by_name(name) for p in self.units.values()))
        return [_summary_in(u, s) for u, hits in zip(self.units, every, strict=True) for s in hits]

    async def search(self, text: str, *, limit: int = 20) -> list[TargetSummary]:
        unit, sep, inner = text.partition(SEPARATOR)
        if sep and unit in self.units:  # 'emea/' or 'emea/welc': that unit's targets
            found = await self.units[unit].search(inner, limit=limit)
            return [_summary_in(unit, s) for s in found]
        every = await asyncio.gather(*(p.search(text, limit=limit) for p in self.units.values()))
        hits = [_summary_in(u, s) for u, hits in zip(self.units, every, strict=True) for s in hits]
        return hits[:limit]

    async def list_states(self, *, paused_only: bool = False) -> list[TargetState]:
        every = await asyncio.gather(
            *(p.list_states(paused_only=paused_only) for p in self.units.values())
        )
        return [
            _state_in(u, s) for u, states in zip(self.units, every, strict=True) for s in states
        ]

    # ------------------------------------------------------------------ actions

    def _inside(self, state: TargetState) -> tuple[Provider, TargetState]:
        found = self.split(state.target.key)
        if found is None:
            raise NotFound(
                f"{state.target.key!r} names no business unit of {self.environment} "
                f"({', '.join(self.units)})."
            )
        _, provider, inner = found
        return provider, _state_inside(inner, state)

    async def pause(
        self, state: TargetState, *, options: PauseOptions, versions: VersionSelector
    ) -> ActionReceipt:
        provider, inner = self._inside(state)
        return await provider.pause(inner, options=options, versions=versions)

    async def resume(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        provider, inner = self._inside(state)
        return await provider.resume(inner, versions=versions)

    async def stop(self, state: TargetState, *, versions: VersionSelector) -> ActionReceipt:
        provider, inner = self._inside(state)
        return await provider.stop(inner, versions=versions)

    async def run(self, state: TargetState) -> ActionReceipt:
        provider, inner = self._inside(state)
        return await provider.run(inner)

    async def aclose(self) -> None:
        for provider in self.units.values():
            await provider.aclose()


class BatchBusinessUnits(BusinessUnits):
    """:class:`BusinessUnits` whose units read and resume many targets at once
    (:class:`BatchResumes`): the keys are grouped by unit, one batch call per unit."""

    async def get_many(self, keys: Sequence[str]) -> dict[str, TargetState]:
        by_unit: dict[str, list[tuple[str, str]]] = {}
        loose: list[str] = []
        for key in keys:
            found = self.split(key)
            if found is None:
                loose.append(key)
            else:
                by_unit.setdefault(found[0], []).append((key, found[2]))

        async def unit_many(unit: str, pairs: list[tuple[str, str]]) -> dict[str, TargetState]:
            provider = self.units[unit]
            assert isinstance(provider, BatchResumes)
            read = await provider.get_many([inner for _, inner in pairs])
            return {key: _state_in(unit, read[inner]) for key, inner in pairs if inner in read}

        async def one(key: str) -> dict[str, TargetState]:
            try:  # a key stored without its unit: looked up in every unit
                return {key: await self.get(key)}
            except (NotFound, AmbiguousTarget):
                return {}

        answers = await asyncio.gather(
            *(unit_many(u, pairs) for u, pairs in by_unit.items()), *(one(k) for k in loose)
        )
        return {key: state for answer in answers for key, state in answer.items()}

    async def resume_many(self, states: Sequence[TargetState]) -> list[ActionReceipt | BotError]:
        results: list[ActionReceipt | BotError | None] = [None] * len(states)
        by_unit: dict[str, list[tuple[int, TargetState]]] = {}
        for i, state in enumerate(states):
            found = self.split(state.target.key)
            if found is None:
                results[i] = NotFound(
                    f"{state.target.key!r} names no business unit of {self.environment}."
                )
            else:
                by_unit.setdefault(found[0], []).append((i, _state_inside(found[2], state)))

        async def unit_many(unit: str, items: list[tuple[int, TargetState]]) -> None:
            provider = self.units[unit]
            assert isinstance(provider, BatchResumes)
            answers = await provider.resume_many([s for _, s in items])
            for (i, _), answer in zip(items, answers, strict=True):
                results[i] = answer

        await asyncio.gather(*(unit_many(u, items) for u, items in by_unit.items()))
        return [r if r is not None else NotFound("not resumed") for r in results]


def business_units(environment: str, units: Mapping[str, Provider]) -> Provider:
    """The units' adapters of one kind as one provider (batch reads and resumes when every
    unit's adapter has them)."""
    if all(isinstance(p, BatchResumes) for p in units.values()):
        return BatchBusinessUnits(environment, units)
    return BusinessUnits(environment, units)
