"""Timed pauses end to end: the service, the scheduler and the emulators on one clock."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, config_from_mapping
from bot.console import ConsoleNotifier
from bot.defaults import sandbox_config
from bot.domain.commands import PauseCommand, ResumeCommand, TargetRef
from bot.domain.events import Event
from bot.domain.jobs import JobKind, job_key
from bot.domain.models import PauseOptions, TargetKind, ThenAction
from bot.domain.requests import OperationRequest, Via
from bot.runtime import Runtime, build_runtime, build_scheduler
from bot.slack.messages import notice_text, pause_outcome_text
from bot.store import Store, upgrade
from sandbox.clock import Clock
from sandbox.scrip import ScripEmulator
from sandbox.server import ServerThread
from sandbox.sfmc import STAGING_MID, SfmcEmulator
from tests.db import DATABASE_PARAMS, isolated_database
from tests.processes import reap, sigkill

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class World:
    clock: Clock
    sfmc: SfmcEmulator
    scrip: ScripEmulator
    runtime: Runtime
    out: list[str]
    announced: list[str]

    async def tick(self, delta: timedelta) -> int:
        """Move every clock on and run the due timers once."""
        self.clock.advance(delta)
        scheduler = build_scheduler(self.runtime, owner="test", clock=self.clock.now)
        return await scheduler.run_once()

    def thread(self) -> str:
        return "\n".join(self.out)

    async def pause(self, kind: TargetKind, name: str, **options: object) -> OperationRequest:
        command = PauseCommand(
            target=TargetRef(kind=kind, name=name), options=PauseOptions.model_validate(options)
        )
        return await self.runtime.requests.submit(
            command, requester="U0ALICE", via=Via.COMMAND, channel="C0OPS"
        )


class NoticesToo(ConsoleNotifier):
    """The console's thread, and the notices Slack's notify channel would post."""

    def __init__(self, write: Callable[[str], None], notices: list[str]) -> None:
        super().__init__(write)
        self._notices = notices

    async def publish(self, request: OperationRequest, event: Event) -> None:
        await super().publish(request, event)
        text = notice_text(event)
        if text is not None:
            self._notices.append(f"{request.spec.key}: {text}")


@pytest.fixture
def servers() -> Iterator[tuple[Clock, SfmcEmulator, ScripEmulator, str, str]]:
    clock = Clock(frozen_at=T0)
    sfmc, scrip = SfmcEmulator(clock=clock), ScripEmulator(clock=clock)
    with ServerThread(sfmc.app) as a, ServerThread(scrip.app) as b:
        yield clock, sfmc, scrip, a.url, b.url


@pytest.fixture(params=DATABASE_PARAMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture
async def world(
    servers: tuple[Clock, SfmcEmulator, ScripEmulator, str, str], database_url: str
) -> AsyncIterator[World]:
    clock, sfmc, scrip, sfmc_url, scrip_url = servers
    url = database_url
    mapping = sandbox_config(sfmc_url=sfmc_url, scrip_url=scrip_url, database_url=url)
    mapping["environments"]["staging"]["notify_channel"] = "C0NOTICES"
    config = config_from_mapping(mapping)
    out: list[str] = []
    announced: list[str] = []

    store = Store.from_url(url, clock=clock.now)
    runtime = build_runtime(
        config,
        store=store,
        notifier=NoticesToo(out.append, announced),
        clock=clock.now,
    )
    try:
        yield World(clock, sfmc, scrip, runtime, out, announced)
    finally:
        await runtime.aclose()


async def test_automation_pause_then_resume_ends_on_time(world: World) -> None:
    request = await world.pause(
        TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(days=2)
    )
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    store = world.runtime.store
    pause = await store.pause_for_request(request.id)
    assert pause is not None
    end = await store.job(job_key(JobKind.PAUSE_END, pause.id))
    assert end is not None
    assert end.due_at == T0 + timedelta(days=2)

    await world.tick(timedelta(hours=23))
    assert "Reminder" not in world.thread()  # the 24 h reminder is not due yet
    await world.tick(timedelta(hours=1, minutes=1))
    assert "Reminder: the pause of daily-welcome-send ends in 23h" in world.thread()
    await world.tick(timedelta(hours=23))
    assert "ends in 59m" in world.thread()

    await world.tick(timedelta(hours=1))
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert "Resumed: it is now active (6 Scheduled) (verified" in world.thread()
    assert "Late by" not in world.thread()
    assert world.announced == ["daily-welcome-send: pause ended: active (6 Scheduled)"]
    closed = await store.get_pause(pause.id)
    assert closed is not None
    assert not closed.active
    done = await store.job(job_key(JobKind.PAUSE_END, pause.id))
    assert done is not None
    assert done.done_at is not None
    assert done.last_error is None  # completed by its own run, not cancelled under it
    # nothing more happens: every timer of that pause is done
    assert await world.tick(timedelta(days=3)) == 0


async def test_then_keep_stays_paused_and_says_so(world: World) -> None:
    request = await world.pause(
        TargetKind.AUTOMATION, "hourly-lead-sync", duration=timedelta(hours=3), then=ThenAction.KEEP
    )
    await world.tick(timedelta(hours=3))
    assert world.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4
    assert "stays paused as asked" in world.thread()
    pause = await world.runtime.store.pause_for_request(request.id)
    assert pause is not None
    assert pause.active
    assert pause.ends_at is None


async def test_scrip_pause_ends_active(world: World) -> None:
    await world.pause(TargetKind.SCRIP, "Weekly Tier Recalculation", duration=timedelta(hours=12))
    await world.tick(timedelta(hours=12))
    assert "Resumed: it is now active" in world.thread()


async def test_journey_guardrail_resume_is_observed(world: World) -> None:
    await world.pause(TargetKind.JOURNEY, "cart-abandonment", duration=timedelta(days=1))
    assert world.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Paused"
    await world.tick(timedelta(days=1, minutes=11))
    assert "Journey Builder resumed it" in world.thread()
    assert world.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Published"


async def test_journey_guardrail_stop_is_observed(world: World) -> None:
    await world.pause(
        TargetKind.JOURNEY, "cart-abandonment", duration=timedelta(days=1), then=ThenAction.STOP
    )
    await world.tick(timedelta(days=1, minutes=11))
    assert "Journey Builder stopped it" in world.thread()


async def test_journey_whose_guardrail_did_not_act_is_flagged(world: World) -> None:
    await world.pause(TargetKind.JOURNEY, "cart-abandonment", duration=timedelta(days=1))
    with world.sfmc.tenant.lock:
        for version in world.sfmc.tenant.journeys:
            if version.key == "cart-abandonment" and version.pause is not None:
                version.pause.guardrail_action = "none"
    await world.tick(timedelta(days=1, minutes=11))
    for _ in range(6):
        await world.tick(timedelta(minutes=5))
    assert "Unexpected: the pause should have ended (resume)" in world.thread()
    assert any("did not end as expected" in a for a in world.announced)


async def test_drift_closes_the_record(world: World) -> None:
    request = await world.pause(
        TargetKind.AUTOMATION, "hourly-lead-sync", duration=timedelta(days=5)
    )
    other = ResumeCommand(target=TargetRef(kind=TargetKind.AUTOMATION, name="hourly-lead-sync"))
    # resumed outside the bot: straight on the provider
    before = await world.runtime.operations.check(other)
    await world.runtime.operations.perform(other, before)
    await world.tick(timedelta(minutes=31))
    assert "changed outside the bot" in world.thread()
    pause = await world.runtime.store.pause_for_request(request.id)
    assert pause is not None
    assert not pause.active
    assert await world.tick(timedelta(days=6)) == 0  # its end was cancelled


async def test_end_missed_while_down_is_handled_late_and_says_by_how_much(world: World) -> None:
    await world.pause(TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(hours=2))
    await world.tick(timedelta(days=1, hours=2))
    assert "Late by 1d" in world.thread()
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6


async def test_resume_by_the_bot_cancels_the_timers(world: World) -> None:
    await world.pause(TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(days=1))
    await world.runtime.requests.submit(
        ResumeCommand(target=TargetRef(kind=TargetKind.AUTOMATION, name="daily-welcome-send")),
        requester="U0BOB",
        via=Via.COMMAND,
        channel="C0OPS",
    )
    assert await world.runtime.store.pending_jobs() == 0


async def test_pausing_again_extends_the_pause_the_bot_watches(world: World) -> None:
    first = await world.pause(
        TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(days=1)
    )
    again = await world.pause(
        TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(days=3)
    )
    assert again.spec.extend
    assert again.status.value == "succeeded"
    pause = await world.runtime.store.pause_for_request(first.id)
    assert pause is not None
    assert pause.ends_at == T0 + timedelta(days=3)
    assert "extended this pause" in world.thread()
    await world.tick(timedelta(days=1, minutes=1))
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4  # not yet
    await world.tick(timedelta(days=2))
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6


async def test_journeys_cannot_be_extended(world: World) -> None:
    from bot.domain.errors import BadInput

    await world.pause(TargetKind.JOURNEY, "cart-abandonment", duration=timedelta(days=1))
    with pytest.raises(BadInput, match="cannot lengthen"):
        await world.pause(TargetKind.JOURNEY, "cart-abandonment", duration=timedelta(days=3))


async def test_an_end_interrupted_after_the_provider_call_is_not_sent_twice(world: World) -> None:
    """A process died right after resuming (before recording it): the retry does not resume
    again, it sees the target active and closes the record."""
    request = await world.pause(
        TargetKind.AUTOMATION, "daily-welcome-send", duration=timedelta(hours=1)
    )
    command = ResumeCommand(target=TargetRef(kind=TargetKind.AUTOMATION, name="daily-welcome-send"))
    before = await world.runtime.operations.check(command)
    await world.runtime.operations.perform(command, before)  # the "dead" process's call
    starts_before = len([c for c in world.sfmc.calls if c.soap_action == "Schedule"])
    await world.tick(timedelta(hours=1))
    starts_after = len([c for c in world.sfmc.calls if c.soap_action == "Schedule"])
    assert starts_after == starts_before  # no second resume
    pause = await world.runtime.store.pause_for_request(request.id)
    assert pause is not None
    assert not pause.active
    assert "Nothing to resume" in world.thread()


async def test_drift_is_announced(world: World) -> None:
    await world.pause(TargetKind.AUTOMATION, "hourly-lead-sync", duration=timedelta(days=5))
    other = ResumeCommand(target=TargetRef(kind=TargetKind.AUTOMATION, name="hourly-lead-sync"))
    await world.runtime.operations.perform(other, await world.runtime.operations.check(other))
    await world.tick(timedelta(minutes=31))
    assert any("changed outside the bot" in a for a in world.announced)


# -- ends handled together ------------------------------------------------------------------

BATCH = ("daily-welcome-send", "daily-welcome-resend", "hourly-lead-sync")


def _soap(world: World, action: str) -> int:
    return len([c for c in world.sfmc.calls if c.soap_action == action])


def _rest_reads(world: World) -> int:
    return len([c for c in world.sfmc.calls if "/automation/v1/automations/" in c.path])


async def test_automation_ends_due_together_read_once_resume_each_and_verify_once(
    world: World,
) -> None:
    requests = [
        await world.pause(TargetKind.AUTOMATION, key, duration=timedelta(hours=2)) for key in BATCH
    ]
    await world.tick(timedelta(hours=1, minutes=59))  # reminders and drift checks
    world.sfmc.clear_calls()
    assert await world.tick(timedelta(minutes=1)) == len(BATCH)
    for key in BATCH:
        assert world.sfmc.automation(STAGING_MID, key).status == 6
    # one Retrieve (CustomerKey IN ...) before, one to verify; one Schedule start each; the
    # schedules come from the snapshots the pauses kept in the database: no REST read
    assert _soap(world, "Retrieve") == 2
    assert _soap(world, "Schedule") == len(BATCH)
    assert _rest_reads(world) == 0
    assert world.thread().count("Resumed: it is now active (6 Scheduled) (verified") == 3
    assert sorted(world.announced) == sorted(
        f"{key}: pause ended: active (6 Scheduled)" for key in BATCH
    )
    store = world.runtime.store
    for request in requests:
        stored = await store.get_request(request.id)
        assert stored is not None
        assert stored.pause_outcome is not None
        ended = stored.pause_outcome.event
        assert ended is not None
        assert (ended.how, ended.state, ended.verified) == ("resumed", "active (6 Scheduled)", True)
        assert (
            pause_outcome_text(stored.pause_outcome) == "resumed: active (6 Scheduled) (verified)"
        )
        assert not stored.pause_outcome.still_paused
        pause = await store.pause_for_request(request.id)
        assert pause is not None
        assert not pause.active
        for kind in (JobKind.DRIFT_CHECK, JobKind.PAUSE_END):
            job = await store.job(job_key(kind, pause.id))
            assert job is not None
            assert job.done_at is not None
    events = [e.action for e in await store.audit_since(None)]
    assert events.count("pause_ended") == 3
    assert await world.tick(timedelta(days=2)) == 0  # every timer of those pauses is done


async def test_a_batch_with_one_automation_resumed_outside_the_bot(world: World) -> None:
    await world.pause(TargetKind.AUTOMATION, BATCH[0], duration=timedelta(hours=2))
    await world.pause(TargetKind.AUTOMATION, BATCH[1], duration=timedelta(hours=2))
    other = ResumeCommand(target=TargetRef(kind=TargetKind.AUTOMATION, name=BATCH[1]))
    await world.runtime.operations.perform(other, await world.runtime.operations.check(other))
    await world.tick(timedelta(minutes=20))
    world.sfmc.clear_calls()
    await world.tick(timedelta(hours=1, minutes=40))
    assert _soap(world, "Schedule") == 1  # only the one still paused
    assert "Nothing to resume" in world.thread()
    assert world.thread().count("Resumed: it is now active") == 1
    assert any(a.startswith(f"{BATCH[1]}: pause ended: it had already") for a in world.announced)


async def test_a_failed_resume_in_a_batch_is_retried_alone(world: World) -> None:
    requests = [
        await world.pause(TargetKind.AUTOMATION, key, duration=timedelta(hours=2))
        for key in BATCH[:2]
    ]
    # Once the batch has read the automations, the next SOAP call (one of the two
    # Schedule start calls) answers 500: that end is retried later; the other succeeds.
    store = world.runtime.store
    calls: list[str] = []

    provider = world.runtime.registry.environment("staging").provider(TargetKind.AUTOMATION)
    resume_many = provider.resume_many  # type: ignore[attr-defined]

    async def failing_first(states: list[object]) -> list[object]:
        calls.append("resume_many")
        if len(calls) == 1:
            world.sfmc.knobs.set(fail_next_5xx=1, path_filter="Service.asmx")
        result: list[object] = await resume_many(states)
        return result

    provider.resume_many = failing_first  # type: ignore[attr-defined]
    await world.tick(timedelta(hours=2))
    states = sorted(world.sfmc.automation(STAGING_MID, k).status for k in BATCH[:2])
    assert states == [4, 6]  # one resumed, one failed
    assert "but could not resume daily-welcome-" in world.thread()
    assert world.thread().count("Resumed: it is now active") == 1
    pending = [
        await store.job(job_key(JobKind.PAUSE_END, p.id))
        for p in [await store.pause_for_request(r.id) for r in requests]
        if p is not None and p.active
    ]
    assert len(pending) == 1
    assert pending[0] is not None
    assert pending[0].done_at is None
    assert pending[0].last_error is not None
    assert "500" in pending[0].last_error or "SFMC" in pending[0].last_error
    # the retry (after its backoff) resumes the other one, alone
    await world.tick(timedelta(minutes=5))
    assert [world.sfmc.automation(STAGING_MID, k).status for k in BATCH[:2]] == [6, 6]
    assert world.thread().count("Resumed: it is now active") == 2


async def test_two_bot_processes_end_each_pause_once(world: World) -> None:
    """Two runtimes (each its own store engine, scheduler and provider clients) on one
    database run their schedulers at the same moment: every end is carried out once."""
    for key in BATCH:
        await world.pause(TargetKind.AUTOMATION, key, duration=timedelta(hours=2))
    await world.tick(timedelta(hours=1, minutes=59))
    other_out: list[str] = []
    other = build_runtime(
        world.runtime.config,
        store=Store.from_url(
            world.runtime.store.engine.url.render_as_string(hide_password=False),
            clock=world.clock.now,
        ),
        notifier=ConsoleNotifier(other_out.append),
        clock=world.clock.now,
    )
    try:
        world.sfmc.clear_calls()
        world.clock.advance(timedelta(minutes=1))
        first = build_scheduler(world.runtime, owner="one", clock=world.clock.now, batch=1)
        second = build_scheduler(other, owner="two", clock=world.clock.now)
        claimed = await asyncio.gather(first.run_once(), second.run_once())
    finally:
        await other.aclose()
    assert sum(claimed) == len(BATCH)
    assert _soap(world, "Schedule") == len(BATCH)  # one resume each, whoever ran it
    # the schedules came from the snapshots in the database, also for the other process
    assert _rest_reads(world) == 0
    said = "\n".join(world.out + other_out)
    assert said.count("Resumed: it is now active") == len(BATCH)
    assert "\n".join(other_out).count("Resumed: it is now active") >= 2  # it did its share
    for key in BATCH:
        assert world.sfmc.automation(STAGING_MID, key).status == 6


async def test_an_end_that_keeps_failing_says_so_twice_then_gives_up(world: World) -> None:
    """First failure and the give-up are posted; the tries in between are not."""
    from bot.domain.errors import ProviderError
    from bot.domain.jobs import MAX_ATTEMPTS

    request = await world.pause(TargetKind.AUTOMATION, BATCH[0], duration=timedelta(hours=2))
    provider = world.runtime.registry.environment("staging").provider(TargetKind.AUTOMATION)

    async def refused(states: list[object]) -> list[object]:
        return [
            ProviderError("SFMC Schedule failed: Program not found", provider="SFMC", code="2")
            for _ in states
        ]

    provider.resume_many = refused  # type: ignore[attr-defined]
    await world.tick(timedelta(hours=2))
    assert world.thread().count("could not resume daily-welcome-send") == 1
    assert f"up to {MAX_ATTEMPTS} times" in world.thread()
    for _ in range(MAX_ATTEMPTS + 2):
        await world.tick(timedelta(hours=2))
    assert world.thread().count("could not resume daily-welcome-send") == 1
    assert world.thread().count("Gave up resuming daily-welcome-send after 10 tries") == 1
    assert "(code 2)" in world.thread() or "Program not found" in world.thread()
    assert any("the bot could not resume it" in a for a in world.announced)
    store = world.runtime.store
    pause = await store.pause_for_request(request.id)
    assert pause is not None
    assert pause.active  # still paused and still watched
    job = await store.job(job_key(JobKind.PAUSE_END, pause.id))
    assert job is not None
    assert job.done_at is not None
    assert job.attempts == MAX_ATTEMPTS


# -- a process killed between the pause and its end -----------------------------------------


def pausing_process(config: BotConfig, url: str, now: str, ready: Any) -> None:
    """Run in another process: pause an automation for two days with the scheduler running
    (as `automation-bot serve` does), say so, then wait to be killed."""

    async def go() -> None:
        at = datetime.fromisoformat(now)
        store = Store.from_url(url, clock=lambda: at)
        runtime = build_runtime(
            config, store=store, notifier=ConsoleNotifier(print), clock=lambda: at
        )
        scheduler = build_scheduler(runtime, owner="victim", clock=lambda: at)
        stop = asyncio.Event()
        running = asyncio.create_task(scheduler.run_forever(stop))
        command = PauseCommand(
            target=TargetRef(kind=TargetKind.AUTOMATION, name="daily-welcome-send"),
            options=PauseOptions(duration=timedelta(days=2)),
        )
        await runtime.requests.submit(
            command, requester="U0ALICE", via=Via.COMMAND, channel="C0OPS"
        )
        await asyncio.sleep(0.5)  # its scheduler polls meanwhile (nothing is due)
        ready.set()
        await asyncio.sleep(3600)
        await running

    asyncio.run(go())


async def test_a_process_killed_between_the_pause_and_its_end(world: World) -> None:
    """SIGKILL after the pause: the restarted bot (another process) reminds and ends it
    on time, once, from what the dead one left in the database."""
    url = world.runtime.store.engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    victim = ctx.Process(
        target=pausing_process,
        args=(world.runtime.config, url, world.clock.now().isoformat(), ready),
    )
    victim.start()
    try:
        assert await asyncio.to_thread(ready.wait, 60), "the victim never paused"
        await sigkill(victim)
    finally:
        reap(victim)
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    store = world.runtime.store
    pause = await store.active_pause_for_target(
        environment="staging", kind=TargetKind.AUTOMATION, key="daily-welcome-send"
    )
    assert pause is not None
    assert pause.ends_at == T0 + timedelta(days=2)
    world.sfmc.clear_calls()

    await world.tick(timedelta(days=1, minutes=1))  # the restarted bot's scheduler
    assert "ends in 23h59m" in world.thread()
    await world.tick(timedelta(hours=22, minutes=59))  # exactly an hour before the end
    assert "ends in 1h, then resume" in world.thread()
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    await world.tick(timedelta(hours=1))
    assert world.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert _soap(world, "Schedule") == 1
    assert world.thread().count("Resumed: it is now active") == 1
    assert "Late by" not in world.thread()
    end = await store.job(job_key(JobKind.PAUSE_END, pause.id))
    assert end is not None
    assert end.done_at == T0 + timedelta(days=2)
    assert end.attempts == 1
    assert await world.tick(timedelta(days=3)) == 0
    assert _soap(world, "Schedule") == 1
