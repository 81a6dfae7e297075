"""Bulk requests against the emulators over real HTTP: preview, confirmation, execution
within the providers' limits, retries and failures with their codes, read-back, ``resume
batch``, the timed end as one batch, and one approval on production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import render
from bot.domain.approvals import Decision
from bot.domain.bulk import Batch, BatchStatus, Progress, TargetStatus
from bot.domain.errors import InvalidState, NotFound
from bot.domain.grammar import parse_command
from bot.domain.jobs import JobKind, job_key
from bot.domain.models import TargetKind
from bot.domain.requests import Via
from bot.render_bulk import skip_text
from bot.runtime import Runtime, build_runtime, build_scheduler
from bot.service.bulk import PREVIEW_TTL, BatchPreview
from bot.service.commands import Outcome
from bot.service.notify import NullNotifier
from bot.store import Store, upgrade
from sandbox.campaign import Campaign, add_campaign
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox

A, J, S = TargetKind.AUTOMATION, TargetKind.JOURNEY, TargetKind.SCRIP
ALICE, ADMIN = "U0ALICE", "U0ADMIN"


@pytest.fixture
async def runtime(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    rt = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=NullNotifier(),
    )
    rt.bulk.retry_wait = 0.01  # quick retries (the waits themselves are tenacity's)
    try:
        yield rt
    finally:
        await rt.aclose()


async def _handle(runtime: Runtime, text: str, actor: str = ALICE) -> Outcome:
    command = parse_command(text, now=datetime.now(UTC))
    return await runtime.commands.handle(command, actor=actor, via=Via.CONSOLE, channel="C0OPS")


async def _preview(runtime: Runtime, text: str, actor: str = ALICE) -> BatchPreview:
    outcome = await _handle(runtime, text, actor)
    assert isinstance(outcome, BatchPreview)
    return outcome


def _statuses(batch: Batch) -> dict[str, TargetStatus]:
    return {t.key: t.status for t in batch.targets}


def _staging_campaign(sandbox: Sandbox) -> Campaign:
    # 14 automations + 8 journeys in staging's business unit, 8 scrip automations: 30
    return add_campaign(
        sandbox.sfmc,
        sandbox.scrip,
        mids=(STAGING_MID,),
        automations=14,
        journeys=8,
        scrip_automations=8,
    )


async def test_a_bulk_pause_of_thirty_targets_over_three_kinds(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    campaign = _staging_campaign(sandbox)
    failing = campaign.scrip[3]
    preview = await _preview(runtime, "pause staging/*:bf25-* for 2d")
    assert preview.production is False
    assert len(preview.plan.acting) == 30
    assert {k: c.act for k, c in preview.plan.counts.items()} == {A: 14, J: 8, S: 8}
    assert preview.batch.status is BatchStatus.PREVIEWED
    assert sandbox.sfmc.automation(STAGING_MID, "bf25-send-001").status == 6  # nothing yet

    # every call about one scrip automation is throttled, with a wait too long to sit out
    sandbox.scrip.knobs.set(rate_limit_next=3, retry_after_s=120, path_filter=failing)
    sandbox.sfmc.knobs.set(latency_ms=40)  # calls overlap: the concurrency limit matters
    sandbox.sfmc.clear_calls()
    seen: list[Progress] = []

    async def progress(batch: Batch, counts: Progress) -> None:
        seen.append(counts)

    done = await runtime.commands.confirm_batch(
        preview.batch.id, actor=ALICE, via=Via.CONSOLE, progress=progress
    )
    batch = done.batch
    assert batch.status is BatchStatus.DONE
    assert batch.progress() == Progress(done=29, failed=1, left=0, skipped=0)
    statuses = _statuses(batch)
    assert statuses.pop(failing) is TargetStatus.FAILED
    assert set(statuses.values()) == {TargetStatus.DONE}
    failed = next(t for t in batch.targets if t.key == failing)
    assert failed.attempts == 3  # tried again, then reported
    assert failed.error_code == "too_many_requests"
    assert "scrip" in (failed.error or "")
    assert not failed.holds_pause
    # verified by read-back: the emulators show every other target paused
    for key in campaign.automations[STAGING_MID]:
        assert sandbox.sfmc.automation(STAGING_MID, key).status == 4
    for key in campaign.journeys[STAGING_MID]:
        assert sandbox.sfmc.journey(STAGING_MID, key).status == "Paused"
    assert all(
        (t.state_after or "").startswith("paused") for t in batch.targets if t.key != failing
    )
    # within SFMC's limit of 20 concurrent calls per business unit, and none refused
    assert 1 < sandbox.sfmc.peak_in_flight[STAGING_MID] <= 20
    assert not [c for c in sandbox.sfmc.calls if c.knob == "concurrency"]
    # progress was told after each target, ending at the final counts
    assert len(seen) == 30
    assert seen[-1] == Progress(done=29, failed=1, left=0)
    # each target's history tells what the batch did to it
    history = await runtime.store.history(environment="staging", kind=S, target_key=failing)
    assert [(e.action, e.detail["code"], e.detail["batch"]) for e in history] == [
        ("bulk_failed", "too_many_requests", batch.id)
    ]
    history = await runtime.store.history(environment="staging", kind=A, target_key="bf25-send-001")
    assert [(e.action, e.actor, e.detail["after"]) for e in history] == [
        ("bulk_verified", ALICE, "paused (4 Paused)")
    ]
    # one job ends the whole batch; no per-target timers
    store = runtime.store
    assert await store.pending_jobs(JobKind.BATCH_END) == 1
    assert await store.pending_jobs(JobKind.PAUSE_END) == 0


async def test_confirming_twice_executes_once(sandbox: Sandbox, runtime: Runtime) -> None:
    add_campaign(sandbox.sfmc, None, mids=(STAGING_MID,), automations=3, journeys=0)
    preview = await _preview(runtime, "pause staging/automation:bf25-*")
    first = await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    assert first.batch.status is BatchStatus.DONE
    with pytest.raises(InvalidState, match="cannot be confirmed"):
        await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)


async def test_a_set_that_changed_since_the_preview_is_a_new_request(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    add_campaign(sandbox.sfmc, None, mids=(STAGING_MID,), automations=3, journeys=0)
    preview = await _preview(runtime, "pause staging/automation:bf25-*")
    add_campaign(sandbox.sfmc, None, prefix="bf25-late", mids=(STAGING_MID,), journeys=0)
    with pytest.raises(InvalidState, match="changed since the preview"):
        await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    cancelled = await runtime.bulk.batches.get(preview.batch.id)
    assert cancelled is not None
    assert cancelled.status is BatchStatus.CANCELLED
    assert sandbox.sfmc.automation(STAGING_MID, "bf25-send-001").status == 6


async def test_resume_batch_puts_back_exactly_what_the_batch_paused(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    add_campaign(sandbox.sfmc, sandbox.scrip, mids=(STAGING_MID,), automations=4, journeys=2)
    # paused before the batch: the batch skips it, and resume batch leaves it paused
    assert not isinstance(await _handle(runtime, "pause automation:bf25-send-001"), BatchPreview)
    preview = await _preview(runtime, "pause staging/*:bf25-*")
    assert {t.key: skip_text(t.skip_reason) or None for t in preview.plan.skipped} == {
        "bf25-send-001": "already paused"
    }
    paused = (
        await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    ).batch
    assert paused.progress().done == 10
    # put back by hand meanwhile: no longer paused, so skipped
    assert not isinstance(await _handle(runtime, "resume automation:bf25-send-002"), BatchPreview)
    # put back by hand, then paused again by a newer batch: that batch holds it now
    assert not isinstance(await _handle(runtime, "resume journey:bf25-journey-001"), BatchPreview)
    newer = await _preview(runtime, "pause staging/journey:bf25-journey-00?")
    assert [t.key for t in newer.plan.acting] == ["bf25-journey-001"]
    await runtime.commands.confirm_batch(newer.batch.id, actor=ALICE, via=Via.CLI)

    again = await _preview(runtime, f"resume batch {paused.id}")
    assert again.batch.source_batch_id == paused.id
    assert {t.key for t in again.plan.targets} == {
        t.key
        for t in paused.targets
        if t.status is TargetStatus.DONE and t.key != "bf25-journey-001"
    }
    assert {t.key: skip_text(t.skip_reason) or None for t in again.plan.skipped} == {
        "bf25-send-002": "not paused (active (6 Scheduled))"
    }
    resumed = (await runtime.commands.confirm_batch(again.batch.id, actor=ALICE, via=Via.CLI)).batch
    assert resumed.progress() == Progress(done=8, failed=0, left=0, skipped=1)
    assert sandbox.sfmc.automation(STAGING_MID, "bf25-send-001").status == 4  # still paused
    assert sandbox.sfmc.journey(STAGING_MID, "bf25-journey-001").status == "Paused"
    for n in (3, 4):
        assert sandbox.sfmc.automation(STAGING_MID, f"bf25-send-00{n}").status == 6
    assert sandbox.sfmc.journey(STAGING_MID, "bf25-journey-002").status == "Published"
    # nothing is held any more: a second resume batch has nothing to put back
    with pytest.raises(InvalidState, match="holds no pause"):
        await _handle(runtime, f"resume batch {paused.id}")
    with pytest.raises(NotFound):
        await _handle(runtime, "resume batch nosuchbatch")


async def test_a_timed_bulk_pause_ends_as_one_batch(sandbox: Sandbox, runtime: Runtime) -> None:
    add_campaign(sandbox.sfmc, sandbox.scrip, mids=(STAGING_MID,), automations=3, journeys=2)
    preview = await _preview(runtime, "pause staging/*:bf25-* for 1h then resume")
    paused = (
        await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    ).batch
    assert paused.progress().done == 10
    assert paused.ends_at is not None
    job = await runtime.store.job(job_key(JobKind.BATCH_END, paused.id))
    assert job is not None
    assert job.due_at == paused.ends_at

    told: list[tuple[str, str | None]] = []

    async def on_end(ending: Batch, source: Batch) -> None:
        told.append((source.id, ending.source_batch_id))

    runtime.bulk.on_end = on_end
    later = paused.ends_at + timedelta(seconds=1)
    scheduler = build_scheduler(runtime, owner="test", clock=lambda: later)
    assert await scheduler.run_once() >= 1
    ends = await runtime.bulk.batches.by_source(paused.id)
    assert len(ends) == 1  # one batch for the whole end
    end = ends[0]
    assert end.via is Via.SCHEDULER
    assert end.status is BatchStatus.DONE
    assert end.progress() == Progress(done=10, failed=0, left=0)
    for n in (1, 2, 3):
        assert sandbox.sfmc.automation(STAGING_MID, f"bf25-send-00{n}").status == 6
    assert await runtime.store.pending_jobs(JobKind.BATCH_END) == 0
    # the end runs once, even if its job ran again
    assert job is not None
    await runtime.bulk.end_job(job)
    assert len(await runtime.bulk.batches.by_source(paused.id)) == 1
    assert told == [(paused.id, paused.id)]  # one note for the whole end


async def test_on_production_one_approval_covers_exactly_the_frozen_set(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    add_campaign(sandbox.sfmc, None, mids=(PROD_MID,), automations=5, journeys=3)
    preview = await _preview(runtime, "pause prod/*:bf25-* for 2d")
    assert preview.production is True
    waiting = await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    assert waiting.batch.status is BatchStatus.AWAITING_APPROVAL
    assert waiting.batch.expires_at is not None
    assert sandbox.sfmc.automation(PROD_MID, "bf25-send-001").status == 6  # nothing yet

    stranger = await runtime.commands.vote_batch(
        batch_id=preview.batch.id, voter="U0NOBODY", decision=Decision.APPROVE, via=Via.BUTTON
    )
    assert not stranger.counted
    assert stranger.refused is not None
    assert stranger.refused.why == "not_an_approver"
    assert "Only approvers" in render.vote_refused_text(stranger.refused)
    approved = await runtime.commands.vote_batch(
        batch_id=preview.batch.id, voter=ADMIN, decision=Decision.APPROVE, via=Via.BUTTON
    )
    assert approved.counted
    assert approved.batch.status is BatchStatus.DONE
    assert approved.batch.progress() == Progress(done=8, failed=0, left=0)
    assert [v.voter for v in approved.batch.votes] == [ADMIN]
    for n in range(1, 6):
        assert sandbox.sfmc.automation(PROD_MID, f"bf25-send-00{n}").status == 4
    late = await runtime.commands.vote_batch(
        batch_id=preview.batch.id, voter=ADMIN, decision=Decision.APPROVE, via=Via.BUTTON
    )
    assert not late.counted
    assert late.refused is not None
    assert (late.refused.why, late.refused.status) == ("already_decided", "done")


async def test_a_denied_batch_changes_nothing(sandbox: Sandbox, runtime: Runtime) -> None:
    add_campaign(sandbox.sfmc, None, mids=(PROD_MID,), automations=2, journeys=0)
    preview = await _preview(runtime, "pause prod/automation:bf25-*")
    await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    denied = await runtime.commands.vote_batch(
        batch_id=preview.batch.id, voter=ADMIN, decision=Decision.DENY, via=Via.BUTTON
    )
    assert denied.batch.status is BatchStatus.DENIED
    assert sandbox.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


async def test_no_match_and_unknown_environment_are_clear(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="No target in staging matches staging/journey:zz-\\*"):
        await _handle(runtime, "pause staging/journey:zz-*")
    with pytest.raises(Exception, match="nowhere"):
        await _handle(runtime, "pause nowhere/automation:bf-*")


async def test_a_batch_left_executing_by_a_stopped_process_is_carried_on(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    add_campaign(sandbox.sfmc, None, mids=(STAGING_MID,), automations=4, journeys=0)
    preview = await _preview(runtime, "pause staging/automation:bf25-*")
    batches = runtime.bulk.batches
    past = datetime.now(UTC) - timedelta(seconds=1)
    # a process took it, paused one target and stopped before recording it (the pause
    # made here first: while the batch runs, a single request on its targets is refused)
    assert not isinstance(await _handle(runtime, "pause automation:bf25-send-002"), BatchPreview)
    taken = await batches.transition(
        preview.batch.id, to=BatchStatus.EXECUTING, owner="gone:1", lease_until=past
    )
    assert taken is not None

    recovered = await runtime.bulk.recover()
    assert [b.id for b in recovered] == [preview.batch.id]
    batch = recovered[0]
    assert batch.status is BatchStatus.DONE
    assert batch.progress() == Progress(done=4, failed=0, left=0)
    assert all(t.holds_pause for t in batch.targets)  # the one paused before counts too
    for n in range(1, 5):
        assert sandbox.sfmc.automation(STAGING_MID, f"bf25-send-00{n}").status == 4
    assert await runtime.bulk.recover() == []  # once


async def test_an_unanswered_production_batch_expires(sandbox: Sandbox, runtime: Runtime) -> None:
    add_campaign(sandbox.sfmc, None, mids=(PROD_MID,), automations=2, journeys=0)
    preview = await _preview(runtime, "pause prod/automation:bf25-*")
    past = datetime.now(UTC) - timedelta(seconds=1)
    waiting = await runtime.bulk.batches.transition(
        preview.batch.id, to=BatchStatus.AWAITING_APPROVAL, expires_at=past
    )
    assert waiting is not None
    told: list[BatchStatus] = []

    async def on_change(batch: Batch) -> None:
        told.append(batch.status)

    runtime.bulk.on_change = on_change
    assert [b.status for b in await runtime.bulk.recover()] == [BatchStatus.EXPIRED]
    assert told == [BatchStatus.EXPIRED]  # the card follows
    late = await runtime.commands.vote_batch(
        batch_id=preview.batch.id, voter=ADMIN, decision=Decision.APPROVE, via=Via.BUTTON
    )
    assert not late.counted
    assert sandbox.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


async def test_a_preview_nobody_confirms_expires(sandbox: Sandbox, runtime: Runtime) -> None:
    add_campaign(sandbox.sfmc, None, mids=(STAGING_MID,), automations=2, journeys=0)
    preview = await _preview(runtime, "pause staging/automation:bf25-*")
    assert await runtime.bulk.recover() == []  # young: left alone
    later = datetime.now(UTC) + PREVIEW_TTL + timedelta(minutes=1)
    assert [(b.id, b.status) for b in await runtime.bulk.recover(now=later)] == [
        (preview.batch.id, BatchStatus.EXPIRED)
    ]
    with pytest.raises(InvalidState, match="expired: it cannot be confirmed"):
        await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CLI)
    assert sandbox.sfmc.automation(STAGING_MID, "bf25-send-001").status == 6


async def test_a_bulk_pause_of_automations_alone_uses_the_whole_call_limit(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    # Automations and journeys share their business unit's 20 calls in flight; a batch of
    # one kind alone may take all 20 (the pooled call limit holds both kinds to 20).
    add_campaign(sandbox.sfmc, None, mids=(STAGING_MID,), automations=30, journeys=0)
    preview = await _preview(runtime, "pause staging/automation:bf25-*")
    assert len(preview.plan.acting) == 30
    sandbox.sfmc.knobs.set(latency_ms=300)  # calls overlap
    sandbox.sfmc.clear_calls()
    sandbox.sfmc.peak_in_flight.clear()

    done = await runtime.commands.confirm_batch(preview.batch.id, actor=ALICE, via=Via.CONSOLE)

    assert done.batch.progress() == Progress(done=30, failed=0, left=0)
    # more than one kind's old half (10) at once, never more than the business unit's 20
    # (exactly 20 needs all of them on the wire together, which a busy machine may not do)
    assert 10 < sandbox.sfmc.peak_in_flight[STAGING_MID] <= 20
    assert not [c for c in sandbox.sfmc.calls if c.knob == "concurrency"]
