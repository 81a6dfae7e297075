"""``automation-bot exec`` on a migrated database: the same request path as the console
(request, audit via cli, pause and its timers), ended later by a running bot's scheduler."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.domain.jobs import JobKind, job_key
from bot.domain.requests import AuditEvent, OperationRequest, PauseRecord, RequestStatus, Via
from bot.render import ran_text
from bot.runtime import build_runtime, build_scheduler
from bot.service.notify import NullNotifier
from bot.store import Store, upgrade
from sandbox.sfmc import STAGING_MID
from tests.conftest import Sandbox

runner = CliRunner()
_REQUEST_ID = re.compile(r"request id: ([0-9a-f]{32}) ")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def config_file(sandbox: Sandbox, tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(dict(sandbox.mapping, database_url=db_url)), encoding="utf-8")
    return path


def _exec(config: Path, text: str, *extra: str) -> Any:
    return runner.invoke(app, ["exec", text, "--config", str(config), *extra])


def _recorded(
    url: str, request_id: str
) -> tuple[OperationRequest | None, list[AuditEvent], PauseRecord | None]:
    async def read() -> tuple[OperationRequest | None, list[AuditEvent], PauseRecord | None]:
        store = Store.from_url(url)
        try:
            return (
                await store.get_request(request_id),
                await store.request_events(request_id),
                await store.pause_for_request(request_id),
            )
        finally:
            await store.close()

    return asyncio.run(read())


async def _scheduler_pass(sandbox: Sandbox, url: str, at: datetime) -> int:
    """One pass of a running bot's scheduler over ``url``, with its clock at ``at``."""
    cfg = sandbox.config.model_copy(update={"database_url": url})
    store = Store.from_url(url, clock=lambda: at)
    runtime = build_runtime(cfg, store=store, notifier=NullNotifier(), clock=lambda: at)
    try:
        return await build_scheduler(runtime, owner="serve", clock=lambda: at).run_once()
    finally:
        await runtime.aclose()


def test_exec_timed_pause_is_recorded_and_a_running_bot_ends_it(
    sandbox: Sandbox, config_file: Path, db_url: str
) -> None:
    result = _exec(config_file, "pause automation:hourly-lead-sync for 3d", "--user", "U0ALICE")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = result.stdout
    found = _REQUEST_ID.search(out)
    assert found, out
    request_id = found.group(1)
    assert "provider request id: " in out
    assert re.search(
        r"ends \d{4}-\d\d-\d\d \d\d:\d\d UTC, then resume: a running bot "
        r"\(automation-bot serve, or console, on this database\) carries out the resume",
        out,
    ), out
    assert sandbox.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4

    request, events, pause = _recorded(db_url, request_id)
    assert request is not None
    assert request.status is RequestStatus.SUCCEEDED
    assert (request.requested_by, request.via) == ("U0ALICE", Via.CLI)
    assert request.provider_request_id
    assert request.provider_request_id in out
    assert request.pause_ends_at is not None
    assert [(e.action, e.via) for e in events] == [
        ("requested", Via.CLI),
        ("executing", Via.CLI),
        ("verified", Via.CLI),
    ]
    assert pause is not None
    assert pause.active
    assert pause.ends_at == request.pause_ends_at

    async def end() -> None:
        store = Store.from_url(db_url)
        try:
            job = await store.job(job_key(JobKind.PAUSE_END, pause.id))
        finally:
            await store.close()
        assert job is not None
        assert job.due_at == request.pause_ends_at
        later = request.pause_ends_at + timedelta(minutes=1)
        assert await _scheduler_pass(sandbox, db_url, later) >= 1

    asyncio.run(end())
    assert sandbox.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6
    ended, _, closed = _recorded(db_url, request_id)
    assert closed is not None
    assert not closed.active
    assert ended is not None
    assert ended.pause_outcome is not None
    assert ended.pause_outcome.event is not None
    assert ended.pause_outcome.event.how == "resumed"
    assert ended.pause_outcome.event.verified


def test_exec_history_and_list_paused_read_the_database(config_file: Path) -> None:
    paused = _exec(config_file, "pause automation:hourly-lead-sync for 1d", "--user", "U0BOB")
    assert paused.exit_code == 0, paused.stderr
    result = _exec(config_file, "history hourly-lead-sync")
    assert result.exit_code == 0, result.stderr
    assert "History of staging/automation:hourly-lead-sync" in result.stdout
    assert re.search(r"requested\s+U0BOB via cli", result.stdout), result.stdout

    result = _exec(config_file, "list paused")
    assert result.exit_code == 0, result.stderr
    line = next(
        line for line in result.stdout.splitlines() if "automation:hourly-lead-sync" in line
    )
    assert "paused by the bot for U0BOB, ends " in line
    assert "then resume" in line
    assert "prod/automation:weekly-newsletter" in result.stdout  # every environment


def test_exec_history_without_a_database_says_how_to_get_one(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "bot.yaml"
    url = f"sqlite:///{tmp_path / 'none.db'}"
    path.write_text(yaml.safe_dump(dict(sandbox.mapping, database_url=url)), encoding="utf-8")
    result = _exec(path, "history hourly-lead-sync")
    assert result.exit_code == 2
    assert "automation-bot db upgrade" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_exec_run_of_a_scrip_automation_says_what_ran(config_file: Path) -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    result = _exec(config_file, "run scrip:'Weekly Tier Recalculation'")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    head = result.stdout.splitlines()[0]
    started = re.search(r"a run started (\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(read back\)", head)
    assert started, head
    assert datetime.strptime(started.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC) >= before
    assert "active -> active" not in result.stdout
    assert _REQUEST_ID.search(result.stdout)


def test_exec_without_a_database_says_nothing_watches_the_end(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sandbox mapping keeps its database in memory: nothing can be recorded.
    path = tmp_path / "memory.yaml"
    path.write_text(yaml.safe_dump(sandbox.mapping), encoding="utf-8")
    result = _exec(path, "pause automation:hourly-lead-sync for 3d")
    assert result.exit_code == 0, result.stderr
    assert "NOT watched" in result.stdout
    assert "so no bot will resume it" in result.stdout
    assert "not recorded" in result.stdout
    assert "provider request id: " in result.stdout
    assert not _REQUEST_ID.search(result.stdout)
    result = _exec(path, "run scrip:'Weekly Tier Recalculation'")
    assert result.exit_code == 0, result.stderr
    assert "a run started" in result.stdout
    assert "active -> active" not in result.stdout


def test_a_run_not_yet_seen_in_the_read_back_says_so() -> None:
    # scrip.dev moves a cron automation's next run to now; the run itself may show later.
    text = ran_text(
        {
            "last_run_before": "2026-11-30T06:00:00+00:00",
            "last_run": "2026-11-30T06:00:00+00:00",
            "next_run": "2026-12-05T03:00:00+00:00",
        }
    )
    assert text == (
        "the read-back shows no new run yet "
        "(last run 2026-11-30 06:00 UTC; next run 2026-12-05 03:00 UTC)"
    )
