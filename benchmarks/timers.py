"""Pause timers at scale: many pause ends in one minute, their thread notes, the due query.

``python -m benchmarks.timers [--quick]`` measures, in one run:

* **ends**: N SFMC automation pauses (10,000) ending within one minute. The scheduler the
  bot runs (:func:`bot.runtime.build_scheduler`: 200 jobs a pass, four passes) hands the due ends to
  :meth:`bot.service.pauses.PauseService.end_pauses`, with at most 20 SFMC calls in
  flight, against the SFMC emulator answering every call in 50 ms. Wall time from the
  first end being due to the last job done (each end is read back: resumed and
  verified), the calls made per end, and the floor ``N x calls per end x latency /
  concurrency``.
* **notes**: the same with the notifier pointed at the Slack emulator (Slack's rate limits
  on: every method's tier budget, ``chat.postMessage`` 1 message/s per channel after 3 and
  a workspace-wide cap), the ends spread over 100 channels: time until every thread has
  its outcome note, against the pacing floor (the busiest channel's message count at one
  per second); and time until Slack has answered every call, against the larger of the
  provider floor and the Slack floor (:func:`slack_floor`: per method, the calls past its
  tier's burst at its tier's rate). Slack calls are counted per method (and their 429s).
* **due query**: the scheduler's claim (``claim_statement``: ``UPDATE jobs ... WHERE id IN
  (due select) RETURNING``, rolled back) with 1k, 100k and 1M pending jobs on PostgreSQL
  and SQLite; median of many runs, and the peak memory of the process.

Processes: this one runs the emulators (uvicorn on 127.0.0.1 through
``sandbox.server.ServerThread``) and counts what they saw; a child runs the bot (store,
runtime, scheduler) and writes what it measured; another child runs the due-query timing.
Everything is bounded in time and stays on loopback. The figures are printed and written to
the "## Pause timers" section of ``docs/benchmarks.md`` (the rest of the file is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import report as shared
from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Pause timers"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_PREFIX = "bench-"
CHANNEL_PREFIX = "C0BENCH"
NOTIFY_CHANNEL = "C0NOTICES"
#: Seconds the notifier may take to post what is still queued once every end is done.
DRAIN_S = 120.0
#: What every outcome note says (after "The pause time is up." and any "(Late by ...)").
OUTCOME_PREFIX = "Resumed: it is now"
TARGET_RATIO = 1.25
QUERY_TARGET = 2.0
ISSUE_CALLS_PER_END = 2
#: Seconds kept for the due-query part, for a setup, and for the profiled run (budget).
QUERY_RESERVE_S = 90.0
SETUP_ALLOWANCE_S = 160.0
PROFILE_ALLOWANCE_S = 90.0


# =============================================================================== helpers


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def peak_rss_mb() -> float:
    """This process's peak resident set size. ``VmHWM`` where there is one: ``ru_maxrss``
    keeps the parent's peak across fork and exec, so a child would report its parent's."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def automation_key(i: int) -> str:
    return f"{BENCH_PREFIX}{i:05d}"


def channel_id(c: int) -> str:
    return f"{CHANNEL_PREFIX}{c:03d}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A new schema on the server at ``url``; yields a URL whose connections use it
    (``search_path``); drops the schema and everything in it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bot.store.db import sync_url

    schema = f"bench_timers_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield scoped.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def postgres_reachable(url: str) -> str | None:
    """The server's version string, or None when it cannot be reached."""
    from sqlalchemy import create_engine, text

    from bot.store.db import sync_url

    engine = create_engine(sync_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception:
        return None
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(kind: str, postgres_url: str, work: Path, name: str) -> Iterator[str]:
    """An empty database: a fresh SQLite file in ``work``, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        path = work / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{path}"
    else:
        with postgres_schema(postgres_url) as url:
            yield url


# ====================================================================== child: the bot


class Meter:
    """A count and a total of durations (seconds)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds

    def to_json(self) -> dict[str, float]:
        return {"count": self.count, "total_s": self.total}


class RecordingNotifier:
    """The Notifier port, in memory: what each end would tell its thread."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str]] = []

    async def post_card(self, request: Any, approval: Any = None) -> None:
        return None

    async def update_card(self, request: Any, approval: Any = None) -> None:
        return None

    async def publish(self, request: Any, event: Any) -> None:
        from bot.slack.messages import render

        self.replies.append((request.spec.key, render(event, request).text))


async def _setup_pauses(runtime: Any, plan: dict[str, Any], far: datetime) -> list[int]:
    """Requests, pause records and timers through the Store and the PauseService, as a
    verified pause leaves them; every end at ``far`` for now. The pause ids, in order."""
    from bot.domain.models import PauseOptions, TargetKind, ThenAction, Verb
    from bot.domain.requests import RequestSpec, RequestStatus, Via

    store = runtime.store
    cards: list[list[str]] | None = plan.get("cards")
    ids: list[int] = [0] * plan["n"]
    semaphore = asyncio.Semaphore(plan["setup_concurrency"])
    # A pause snapshots the automation's schedule (in the store) before it pauses it; all
    # of them here have the same daily schedule, read once over REST as a pause reads it.
    provider = runtime.registry.environment("staging").provider(TargetKind.AUTOMATION)
    schedule = (await provider.get(automation_key(0))).schedule
    if schedule is None or not schedule.ical_recur:
        raise RuntimeError("the REST read of the benchmark's automation gave no schedule")
    account_id = runtime.config.environments["staging"].sfmc.account_id

    async def one(i: int) -> None:
        async with semaphore:
            key = automation_key(i)
            spec = RequestSpec(
                verb=Verb.PAUSE,
                environment="staging",
                kind=TargetKind.AUTOMATION,
                key=key,
                name=f"Bench automation {i:05d}",
                target_id=plan["object_ids"][i],
                pause=PauseOptions(duration=timedelta(days=2), then=ThenAction.RESUME),
            )
            channel = cards[i][0] if cards else "C0OPS"
            request = await store.create_request(
                spec=spec,
                requested_by="U0ALICE",
                via=Via.COMMAND,
                reason=None,
                channel=channel,
                status=RequestStatus.EXECUTING,
            )
            if cards:
                await store.set_card(request.id, channel=channel, card_ts=cards[i][1])
            await store.put_snapshot(account_id, plan["object_ids"][i], schedule)
            done = await store.transition(
                request.id,
                to=RequestStatus.SUCCEEDED,
                pause_ends_at=far,
                state_before="6 Scheduled",
                state_after="4 Paused",
            )
            assert done is not None
            pause = await store.open_pause(request=done, started_at=store.now(), ends_at=far)
            await runtime.pauses.schedule(pause)
            ids[i] = pause.id

    await asyncio.gather(*(one(i) for i in range(plan["n"])))
    return ids


async def _move_ends(store: Any, pause_ids: list[int], t0: datetime, spread_s: float) -> None:
    """Move every end (pause record and its PAUSE_END job) to ``t0 + i * spread / n``."""
    from sqlalchemy import bindparam, update

    from bot.domain.jobs import JobKind, job_key
    from bot.store.models import JobRow, PauseRow

    n = len(pause_ids)
    ends = [t0 + timedelta(seconds=spread_s * i / n) for i in range(n)]
    move_job = (
        update(JobRow).where(JobRow.key == bindparam("b_key")).values(due_at=bindparam("b_at"))
    )
    move_pause = (
        update(PauseRow).where(PauseRow.id == bindparam("b_id")).values(ends_at=bindparam("b_at"))
    )
    async with store.engine.begin() as conn:
        await conn.execute(
            move_job,
            [
                {"b_key": job_key(JobKind.PAUSE_END, pid), "b_at": at}
                for pid, at in zip(pause_ids, ends, strict=True)
            ],
        )
        await conn.execute(
            move_pause, [{"b_id": pid, "b_at": at} for pid, at in zip(pause_ids, ends, strict=True)]
        )


def _instrument(runtime: Any, meters: dict[str, Meter]) -> None:
    """Time the provider HTTP calls, the store's transactions and the thread notes (by
    wrapping them on these instances; the bot's code is not changed)."""

    def timed(send: Callable[..., Any]) -> Callable[..., Any]:
        async def timed_send(request: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await send(request, **kwargs)
            finally:
                meters["sfmc_http"].add(time.perf_counter() - started)

        return timed_send

    for http in runtime.registry.clients():
        setattr(http, "send", timed(http.send))  # noqa: B010 - instance attribute on purpose

    store = runtime.store
    tx = store._tx

    @contextlib.asynccontextmanager
    async def timed_tx() -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async with tx() as session:
                yield session
        finally:
            meters["db_tx"].add(time.perf_counter() - started)

    setattr(store, "_tx", timed_tx)  # noqa: B010

    publish = runtime.requests.publish

    async def timed_publish(request: Any, event: Any) -> None:
        started = time.perf_counter()
        try:
            await publish(request, event)
        finally:
            meters["notes"].add(time.perf_counter() - started)

    setattr(runtime.requests, "publish", timed_publish)  # noqa: B010


async def _bot(plan: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import case, func, select

    from bot.config import config_from_mapping
    from bot.defaults import sandbox_config
    from bot.domain.commands import TargetRef
    from bot.domain.jobs import Job, JobKind
    from bot.domain.models import TargetKind
    from bot.runtime import build_runtime, build_scheduler
    from bot.store import Store, upgrade
    from bot.store.models import JobRow

    upgrade(plan["database_url"])
    mapping = sandbox_config(
        sfmc_url=plan["sfmc_url"],
        scrip_url="http://127.0.0.1:9",  # never called: no scrip targets here
        database_url=plan["database_url"],
    )
    if plan.get("notify_channel"):
        mapping["environments"]["staging"]["notify_channel"] = plan["notify_channel"]
    # SFMC's guidance: at most `concurrency` calls in flight to the business unit.
    mapping["environments"]["staging"]["sfmc"]["max_concurrent_calls"] = plan["concurrency"]
    config = config_from_mapping(mapping, source="benchmark")
    store = Store.from_url(plan["database_url"])
    slack_client = None
    recorder = RecordingNotifier()
    notifier: Any = recorder
    if plan.get("slack_api_url"):
        from bot.slack.app import create_web_client
        from bot.slack.notifier import SlackNotifier

        # As `automation-bot serve` builds it (bot/serve.py): paced, in the background, with
        # the notify channel's notices coalesced.
        slack_client = create_web_client(token=plan["bot_token"], base_url=plan["slack_api_url"])
        notifier = SlackNotifier(
            client=slack_client,
            store=store,
            background=True,
            limits=config.slack_limits,
            notify_channels={
                name: env.notify_channel
                for name, env in config.environments.items()
                if env.notify_channel
            },
        )
        notifier.start()  # the outbox sender, as `serve` runs it

    runtime = build_runtime(config, store=store, notifier=notifier)
    meters = {
        name: Meter() for name in ("sfmc_http", "db_tx", "notes", "handler", "batch_jobs", "claims")
    }
    try:
        started = time.perf_counter()
        far = datetime.now(UTC) + timedelta(days=2)
        pause_ids = await _setup_pauses(runtime, plan, far)
        setup_s = time.perf_counter() - started
        # Warm up: token, WSDL, connections (the calls happen before t0 and are not counted).
        await runtime.operations.resolve(
            TargetRef(environment="staging", kind=TargetKind.AUTOMATION, name="daily-welcome-send")
        )
        if slack_client is not None:
            await slack_client.auth_test()
        t0 = datetime.now(UTC) + timedelta(seconds=plan["lead_s"])
        await _move_ends(store, pause_ids, t0, plan["spread_s"])
        # the parent starts its CPU clock at t0
        await asyncio.to_thread(Path(plan["t0_path"]).write_text, t0.isoformat())
        _instrument(runtime, meters)

        end_pauses = runtime.pauses.end_pauses

        async def timed_batch(jobs: Sequence[Job]) -> Mapping[int, BaseException | None]:
            began = time.perf_counter()
            try:
                return await end_pauses(jobs)
            finally:
                meters["handler"].add(time.perf_counter() - began)
                meters["batch_jobs"].add(float(len(jobs)))

        # As `automation-bot serve` builds it (bot.runtime.build_scheduler), with the ends'
        # batch handler timed.
        scheduler = build_scheduler(
            runtime,
            owner=f"bench-{os.getpid()}",
            batch=plan["batch"],
            workers=plan["workers"],
            concurrency=plan["concurrency"],
        )
        scheduler.batch_handlers[JobKind.PAUSE_END] = timed_batch
        claim_due = store.claim_due

        async def timed_claim(**kwargs: Any) -> list[Job]:
            began = time.perf_counter()
            try:
                jobs: list[Job] = await claim_due(**kwargs)
                return jobs
            finally:
                meters["claims"].add(time.perf_counter() - began)

        setattr(store, "claim_due", timed_claim)  # noqa: B010

        stop = asyncio.Event()
        await asyncio.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds()))
        profiler = cProfile.Profile(time.process_time) if plan.get("profile") else None
        if profiler is not None:
            profiler.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        runner = asyncio.create_task(scheduler.run_forever(stop))
        capped = False
        while True:
            await asyncio.sleep(0.5)
            if await store.pending_jobs(JobKind.PAUSE_END) == 0:
                break
            if time.perf_counter() - wall0 > plan["time_cap_s"]:
                capped = True
                break
        stop.set()
        await asyncio.wait_for(runner, timeout=120)
        drained = True
        if slack_client is not None:  # queued notes and notices go out (as at shutdown)
            left = plan["time_cap_s"] + plan["drain_s"] - (time.perf_counter() - wall0)
            drained = await notifier.drain(within=max(left, 1.0))
            await notifier.aclose()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(plan["profile"])

        kind = JobKind.PAUSE_END.value
        cancelled = case((JobRow.last_error == "cancelled", 1))
        async with store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.min(JobRow.due_at),
                        func.max(JobRow.done_at),
                        func.count(JobRow.done_at),
                        func.count(JobRow.last_error) - func.count(cancelled),
                        func.sum(JobRow.attempts),
                        func.count(cancelled),
                    ).where(JobRow.kind == kind)
                )
            ).one()
            pairs = (
                await conn.execute(
                    select(JobRow.due_at, JobRow.done_at).where(
                        JobRow.kind == kind, JobRow.done_at.is_not(None)
                    )
                )
            ).all()
        from bot.store.models import as_utc

        first_due = as_utc(row[0]) if row[0] is not None else t0
        last_done = as_utc(row[1]) if row[1] is not None else None
        lateness = sorted(
            (as_utc(b) - as_utc(a)).total_seconds() for a, b in pairs if b is not None
        )
        texts = [text for _, text in recorder.replies]
        return {
            "n": plan["n"],
            "setup_s": setup_s,
            "t0": t0.isoformat(),
            "first_due": first_due.isoformat(),
            "last_done": last_done.isoformat() if last_done else None,
            "done": int(row[2]),
            "with_error": int(row[3]),
            "attempts": int(row[4] or 0),
            "cancelled": int(row[5]),
            "capped": capped,
            "drained": drained,
            "window_wall_s": wall,
            "cpu_s": cpu,
            "lateness_p50_s": percentile(lateness, 50),
            "lateness_p95_s": percentile(lateness, 95),
            "lateness_max_s": lateness[-1] if lateness else math.nan,
            "late_notes": sum("(Late by" in t for t in texts),
            "verified_notes": sum(OUTCOME_PREFIX in t for t in texts),
            "unverified_notes": sum("read-back still shows" in t for t in texts),
            "failed_notes": sum("could not resume" in t or "Nothing to resume" in t for t in texts),
            "notes_recorded": len(texts),
            "meters": {k: m.to_json() for k, m in meters.items()},
            "peak_rss_mb": peak_rss_mb(),
        }
    finally:
        await runtime.aclose()
        if slack_client is not None:
            with contextlib.suppress(Exception):
                await slack_client.session.close()  # type: ignore[union-attr]


def bot_child(plan_path: Path, out_path: Path) -> None:
    from bot.logging import configure_logging

    configure_logging()
    plan = json.loads(plan_path.read_text())
    out_path.write_text(json.dumps(asyncio.run(_bot(plan))))


def _package(filename: str, function: str) -> str:
    """What a profiled function belongs to: a third-party package, the bot, the stdlib."""
    if filename == "~":  # C functions: name them by their type's module
        for name in ("lxml", "psycopg", "sqlite3", "_json", "pydantic_core", "select", "_ssl"):
            if name in function:
                return name
        return "C builtins"
    marker = "site-packages/"
    if marker in filename:
        return filename.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
    for part in ("bot", "providers", "benchmarks", "sandbox"):
        if f"{ROOT}/{part}/" in filename:
            return f"{part} (this repo)"
    if "/asyncio/" in filename:
        return "asyncio"
    if "importlib" in filename:
        return "importlib"
    return "stdlib (other)"


def profile_shares(path: Path, top: int = 12) -> list[tuple[str, float]]:
    """The share of the profiled CPU time (own time) per package, largest first."""
    stats = pstats.Stats(str(path))
    totals: Counter[str] = Counter()
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in raw.items():
        totals[_package(filename, function)] += own
    whole = sum(totals.values()) or 1.0
    return [(name, value / whole) for name, value in totals.most_common(top)]


# ================================================================ child: the due query


def _job_rows(start: int, stop: int, now: datetime, due: int) -> Iterator[dict[str, Any]]:
    """Pending jobs ``start``..``stop``: the first ``due`` ones due a minute ago, every other
    one due between one day and (about) a year ahead."""
    from bot.domain.jobs import JobKind

    kinds = [
        JobKind.PAUSE_END.value,
        JobKind.PAUSE_REMINDER.value,
        JobKind.DRIFT_CHECK.value,
        JobKind.JOURNEY_CHECK.value,
    ]
    for i in range(start, stop):
        at = now - timedelta(minutes=1) if i < due else now + timedelta(days=1, seconds=i * 31)
        yield {
            "kind": kinds[i % len(kinds)],
            "key": f"bench:{i}",
            "due_at": at,
            "payload": {"pause_id": i},
            "attempts": 0,
            "created_at": now,
        }


def _insert_postgres(url: str, rows: Iterator[dict[str, Any]]) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with (
        psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            dbname=u.database,
            options=str(u.query.get("options", "")),
        ) as conn,
        conn.cursor() as cur,
        cur.copy("COPY jobs (kind, key, due_at, payload, attempts, created_at) FROM STDIN") as copy,
    ):
        for r in rows:
            copy.write_row(
                (r["kind"], r["key"], r["due_at"], json.dumps(r["payload"]), 0, r["created_at"])
            )


def _insert_sqlite(url: str, rows: Iterator[dict[str, Any]], chunk: int = 10_000) -> None:
    from sqlalchemy import insert as sql_insert

    from bot.store.db import create_sync_engine_for
    from bot.store.models import JobRow

    engine = create_sync_engine_for(url)
    insert = sql_insert(JobRow)
    try:
        batch: list[dict[str, Any]] = []
        for r in rows:
            batch.append(r)
            if len(batch) >= chunk:
                with engine.begin() as conn:
                    conn.execute(insert, batch)
                batch = []
        if batch:
            with engine.begin() as conn:
                conn.execute(insert, batch)
    finally:
        engine.dispose()


async def _time_claims(url: str, now: datetime, runs: int, limit: int) -> dict[str, Any]:
    """The scheduler's claim statement, run and rolled back ``runs`` times."""
    from sqlalchemy import text

    from bot.domain.jobs import JobKind
    from bot.store.db import create_engine_for
    from bot.store.repository import claim_statement, due_select

    kinds = [JobKind.PAUSE_END, JobKind.PAUSE_REMINDER, JobKind.DRIFT_CHECK, JobKind.JOURNEY_CHECK]
    engine = create_engine_for(url)
    dialect = engine.dialect.name
    try:
        async with engine.connect() as conn:
            if dialect == "postgresql":
                await conn.execute(text("ANALYZE jobs"))
            else:
                await conn.execute(text("ANALYZE"))
            await conn.commit()

        async def once() -> tuple[float, int]:
            stmt = claim_statement(
                dialect=dialect,
                owner="bench",
                now=now,
                lease=timedelta(seconds=60),
                limit=limit,
                kinds=kinds,
            )
            async with engine.connect() as conn:
                await conn.begin()
                began = time.perf_counter()
                claimed = len((await conn.execute(stmt)).all())
                elapsed = time.perf_counter() - began
                await conn.rollback()
            return elapsed, claimed

        for _ in range(10):
            await once()
        samples: list[float] = []
        claimed = 0
        for _ in range(runs):
            elapsed, claimed = await once()
            samples.append(elapsed * 1000)
        tracemalloc.start()
        for _ in range(20):
            await once()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        select_stmt = due_select(dialect=dialect, now=now, limit=limit, kinds=kinds)
        compiled = select_stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
        async with engine.connect() as conn:
            plan_rows = (await conn.execute(text(f"{explain} {compiled}"))).all()
        nodes = [str(r[-1]) for r in plan_rows]
        if dialect == "postgresql":  # the plan's nodes, without costs and conditions
            nodes = [n for n in nodes if "->" in n or not n.startswith(" ")]
        plan = " / ".join(re.sub(r"\s*\(cost=[^)]*\)", "", n).strip() for n in nodes)
    finally:
        await engine.dispose()
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 95),
        "min_ms": samples[0],
        "claimed": claimed,
        "tracemalloc_peak_kb": traced_peak / 1024,
        "plan": plan,
    }


def query_child(plan_path: Path, out_path: Path) -> None:
    plan = json.loads(plan_path.read_text())
    from bot.store import upgrade

    url = plan["database_url"]
    upgrade(url)
    now = datetime.now(UTC)
    inserted = 0
    results = []
    for size in plan["sizes"]:
        began = time.perf_counter()
        rows = _job_rows(inserted, size, now, plan["due"])
        if url.startswith("sqlite"):
            _insert_sqlite(url, rows)
        else:
            _insert_postgres(url, rows)
        insert_s = time.perf_counter() - began
        inserted = size
        timing = asyncio.run(_time_claims(url, now, plan["runs"], plan["limit"]))
        results.append(
            {"pending": size, "insert_s": insert_s, **timing, "peak_rss_mb": peak_rss_mb()}
        )
        print(f"  {plan['backend']} {size:>9,} pending: {timing['median_ms']:.3f} ms", flush=True)
    out_path.write_text(json.dumps(results))


# ============================================================================ the parent


@dataclass
class EndsResult:
    mode: str  # "ends" or "notes"
    backend: str
    n: int
    channels: int
    concurrency: int
    batch: int
    workers: int
    latency_ms: float
    spread_s: float
    setup_s: float
    wall_s: float  # first end due -> last job done
    done: int
    with_error: int
    attempts: int
    cancelled: int  # done, but recorded "cancelled" (by the handler's own release)
    capped: bool  # the jobs were not all done by the time cap
    calls: dict[str, int]
    calls_per_end: float
    resumed: int  # automations the emulator shows Scheduled (6) at the end
    verified_notes: int
    unverified_notes: int
    failed_notes: int
    late_notes: int
    lateness_p50_s: float
    lateness_p95_s: float
    lateness_max_s: float
    bot_cpu_s: float
    bot_window_s: float
    emulator_cpu_s: float
    bot_peak_rss_mb: float
    meters: dict[str, dict[str, float]]
    # notes only
    notes_wall_s: float = math.nan  # first end due -> last outcome note stored
    threads_with_note: int = 0
    busiest_channel_messages: int = 0
    slack_posts: int = 0
    slack_429: int = 0
    slack_calls: dict[str, int] = field(default_factory=dict)
    notes_per_end: float = 0.0
    drained: bool = True  # the notifier posted everything queued within its drain time
    notify_messages: int = 0  # posted to the notify channel (coalesced notices)
    notify_last_s: float = math.nan  # t0 -> the last of them
    # Slack's rate limits (the emulator's tier budgets, on)
    slack_429_by_method: dict[str, int] = field(default_factory=dict)
    slack_done_s: float = math.nan  # t0 -> the last Slack call answered (not 429)
    slack_floor_s: float = 0.0
    slack_floor_by: str = ""  # what sets the Slack floor
    slack_limits: str = ""  # the budgets the emulator enforced, in words
    profile: list[tuple[str, float]] = field(default_factory=list)

    def floor_s(self, calls_per_end: float) -> float:
        """``N x calls per end x latency / concurrency``."""
        return self.n * calls_per_end * self.latency_ms / 1000 / self.concurrency

    @property
    def ended(self) -> int:
        """Ends carried out (per-end figures divide by this)."""
        return max(self.done, 1)

    @property
    def pacing_floor_s(self) -> float:
        """The busiest channel's bot messages at one per second (projected to every end
        when the run was capped)."""
        if not self.capped:
            return float(self.busiest_channel_messages)
        return self.notes_per_end * math.ceil(self.n / max(self.channels, 1))


def slack_floor(
    calls: Mapping[str, int], busiest_channel_messages: int, settings: Any
) -> tuple[float, str]:
    """The least time Slack's limits allow for ``calls`` (method -> calls answered), and
    what sets it: per method, the calls past its tier's burst at its tier's rate; for
    ``chat.postMessage`` also the busiest channel's messages past the per-channel burst at
    the per-channel rate. ``settings`` is the emulator's ``SlackSettings``."""
    from sandbox.slack.ratelimits import METHOD_TIERS, budget

    if not settings.rate_limits_enabled:
        return 0.0, "no limits"
    floors: dict[str, float] = {}
    for method, count in calls.items():
        tier = METHOD_TIERS.get(method)
        if tier is None:
            continue
        b = budget(settings, tier)
        floors[f"{method} ({tier.value}: {b.per_min:g}/min after {b.burst})"] = (
            max(0, count - b.burst) / b.per_s
        )
    per_channel = max(0, busiest_channel_messages - settings.post_message_burst)
    floors[
        f"chat.postMessage in the busiest channel ({busiest_channel_messages} at "
        f"{settings.post_message_per_s:g}/s after {settings.post_message_burst})"
    ] = per_channel / settings.post_message_per_s
    by, floor = max(floors.items(), key=lambda kv: kv[1])
    return floor, by


def slack_limits_text(settings: Any) -> str:
    if not settings.rate_limits_enabled:
        return "off"
    tiers = ", ".join(
        f"Tier {i} {getattr(settings, f'tier{i}_per_min'):g}/min after "
        f"{getattr(settings, f'tier{i}_burst')}"
        for i in range(1, 5)
    )
    return (
        f"{tiers}; chat.postMessage {settings.post_message_per_s:g}/s per channel after "
        f"{settings.post_message_burst} and {settings.post_message_workspace_per_min:g}/min "
        f"per workspace after {settings.post_message_workspace_burst}"
    )


def run_bot(plan_path: Path, out_path: Path, log_path: Path, *, timeout: float) -> float:
    """Run the bot's child to the end; the CPU seconds this process (the emulators) spent
    from the child's t0 (the first end due) until the child exited."""
    t0_path = Path(json.loads(plan_path.read_text())["t0_path"])
    t0_path.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    cpu0: float | None = None
    with log_path.open("wb") as log:
        child = subprocess.Popen(  # noqa: S603 - this very module, by the current interpreter
            [sys.executable, "-m", "benchmarks.timers", "_bot", str(plan_path), str(out_path)],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        try:
            while child.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the bot's child ran past {timeout:.0f} s")
                if cpu0 is None and t0_path.exists() and t0_path.read_text():
                    wait = (parse_time(t0_path.read_text()) - datetime.now(UTC)).total_seconds()
                    time.sleep(max(0.0, wait))
                    cpu0 = time.process_time()
                time.sleep(0.1)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if child.returncode:
        raise RuntimeError(f"the bot's child failed ({child.returncode}): see {log_path}")
    return time.process_time() - (cpu0 if cpu0 is not None else time.process_time())


def call_category(method: str, path: str, soap_action: str | None) -> str:
    if path.startswith("/v2/token"):
        return "token"
    if path.startswith("/Service.asmx"):
        return f"SOAP {soap_action or '?'}"
    if path.startswith("/automation/v1/automations/"):
        return "REST GET automation"
    return f"{method} {path}"


def run_ends(
    mode: str,
    *,
    backend: str,
    postgres_url: str,
    work: Path,
    args: argparse.Namespace,
    time_cap: float,
    n: int | None = None,
    profile: bool = False,
) -> EndsResult:
    from sandbox.server import ServerThread
    from sandbox.sfmc import STAGING_MID, SfmcEmulator
    from sandbox.sfmc.schedule import Schedule
    from sandbox.sfmc.state import PAUSED, SCHEDULED
    from sandbox.slack import SlackEmulator
    from sandbox.slack.model import SlackSettings

    n = n or args.ends
    channels = args.channels if mode == "notes" else 0
    tag = f"{mode}-profiled" if profile else mode
    print(f"[{tag}] {n} automations, {backend}, latency {args.latency_ms:g} ms", flush=True)
    sfmc = SfmcEmulator(run_duration_s=60)
    daily = Schedule("Daily", start=datetime(2024, 1, 8, 7), end=datetime(2079, 6, 6, 8))
    object_ids = [
        sfmc.add_automation(
            STAGING_MID,
            key=automation_key(i),
            name=f"Bench automation {i:05d}",
            status=PAUSED,
            schedule=Schedule(daily.recurrence_type, start=daily.start, end=daily.end),
        ).object_id
        for i in range(n)
    ]
    slack = SlackEmulator(settings=SlackSettings(rate_limits_enabled=True))
    cards: list[list[str]] | None = None
    if mode == "notes":
        for c in range(channels):
            slack.add_channel(channel_id(c), f"bench-{c:03d}")
        slack.add_channel(NOTIFY_CHANNEL, "automation-notices")
        cards = []
        for i in range(n):
            ch = channel_id(i % channels)
            card = slack.add_message(ch, user="U0ALICE", text=f"card {automation_key(i)}")
            cards.append([ch, card["ts"]])
    sfmc.knobs.set(latency_ms=args.latency_ms)
    slack.knobs.set(latency_ms=args.latency_ms)
    with (
        database(backend, postgres_url, work, tag) as url,
        ServerThread(sfmc.app) as sfmc_server,
        ServerThread(slack.app) as slack_server,
    ):
        plan = {
            "database_url": url,
            "sfmc_url": sfmc_server.url,
            "slack_api_url": slack_server.url + "/api/" if mode == "notes" else None,
            "bot_token": slack.bot_token,
            "n": n,
            "object_ids": object_ids,
            "cards": cards,
            "spread_s": args.spread,
            "lead_s": 3.0,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "workers": args.workers,
            "time_cap_s": time_cap,
            "setup_concurrency": 8 if backend == "postgresql" else 1,
            "notify_channel": NOTIFY_CHANNEL if mode == "notes" else None,
            "drain_s": args.drain,
            "profile": str(work / f"{tag}.prof") if profile else None,
            "t0_path": str(work / f"{tag}.t0"),
        }
        plan_path, out_path = work / f"{tag}.plan.json", work / f"{tag}.out.json"
        plan_path.write_text(json.dumps(plan))
        emulator_cpu = run_bot(
            plan_path,
            out_path,
            work / f"{tag}.log",
            timeout=args.setup_cap + time_cap + args.drain + 180,
        )
        raw = json.loads(out_path.read_text())
        t0 = parse_time(raw["t0"])
        calls = Counter(
            call_category(c.method, c.path, c.soap_action) for c in sfmc.calls if c.at >= t0
        )
        with sfmc.tenant.lock:
            resumed = sum(
                1
                for a in sfmc.tenant.automations
                if a.key.startswith(BENCH_PREFIX) and a.status == SCHEDULED
            )
    result = EndsResult(
        mode=mode,
        backend=backend,
        n=n,
        channels=channels,
        concurrency=args.concurrency,
        batch=args.batch,
        workers=args.workers,
        latency_ms=args.latency_ms,
        spread_s=args.spread,
        setup_s=raw["setup_s"],
        wall_s=(parse_time(raw["last_done"]) - parse_time(raw["first_due"])).total_seconds()
        if raw["last_done"]
        else math.nan,
        done=raw["done"],
        with_error=raw["with_error"],
        attempts=raw["attempts"],
        cancelled=raw["cancelled"],
        capped=raw["capped"],
        drained=raw.get("drained", True),
        calls=dict(calls.most_common()),
        calls_per_end=sum(calls.values()) / max(raw["done"], 1),
        resumed=resumed,
        verified_notes=raw["verified_notes"],
        unverified_notes=raw["unverified_notes"],
        failed_notes=raw["failed_notes"],
        late_notes=raw["late_notes"],
        lateness_p50_s=raw["lateness_p50_s"],
        lateness_p95_s=raw["lateness_p95_s"],
        lateness_max_s=raw["lateness_max_s"],
        bot_cpu_s=raw["cpu_s"],
        bot_window_s=raw["window_wall_s"],
        emulator_cpu_s=emulator_cpu,
        bot_peak_rss_mb=raw["peak_rss_mb"],
        meters=raw["meters"],
    )
    if mode == "notes" and cards is not None:
        _count_notes(result, slack, cards, t0)
    if profile:
        result.profile = profile_shares(work / f"{tag}.prof")
    return result


def _count_notes(result: EndsResult, slack: Any, cards: list[list[str]], t0: datetime) -> None:
    """Which threads got their outcome note, and when the last one was stored."""
    last = t0
    with_note = verified = unverified = late = 0
    for ch, ts in cards:
        notes = [m for m in slack.thread(ch, ts)[1:] if m.get("user") == slack.bot_user_id]
        texts = [str(m.get("text", "")) for m in notes]
        late += sum("(Late by" in t for t in texts)
        unverified += sum("read-back still shows" in t for t in texts)
        outcome = [m for m, t in zip(notes, texts, strict=True) if OUTCOME_PREFIX in t]
        if outcome:
            with_note += 1
            verified += "verified by reading it back" in str(outcome[-1].get("text", ""))
            last = max(last, datetime.fromtimestamp(float(outcome[-1]["ts"]), UTC))
    result.verified_notes, result.unverified_notes, result.late_notes = verified, unverified, late
    per_channel: Counter[str] = Counter()
    for ch in {c for c, _ in cards}:
        per_channel[ch] = sum(
            1
            for m in _channel_replies(slack, ch)
            if m.get("user") == slack.bot_user_id
            and datetime.fromtimestamp(float(m["ts"]), UTC) >= t0
        )
    posts = slack.calls("chat.postMessage")
    result.threads_with_note = with_note
    result.notes_wall_s = (last - t0).total_seconds() if with_note else math.nan
    result.busiest_channel_messages = max(per_channel.values(), default=0)
    result.notes_per_end = sum(per_channel.values()) / result.ended
    result.slack_posts = sum(1 for c in posts if c.at >= t0)
    result.slack_429 = sum(1 for c in posts if c.at >= t0 and c.status == 429)
    after = [c for c in slack.calls() if c.at >= t0]
    result.slack_calls = dict(Counter(c.method for c in after).most_common())
    answered = [c for c in after if c.status != 429]
    result.slack_429_by_method = dict(Counter(c.method for c in after if c.status == 429))
    if answered:
        result.slack_done_s = (max(c.at for c in answered) - t0).total_seconds()
    result.slack_floor_s, result.slack_floor_by = slack_floor(
        Counter(c.method for c in answered), result.busiest_channel_messages, slack.settings
    )
    result.slack_limits = slack_limits_text(slack.settings)
    notices = [
        m
        for m in _channel_replies(slack, NOTIFY_CHANNEL)
        if m.get("user") == slack.bot_user_id and datetime.fromtimestamp(float(m["ts"]), UTC) >= t0
    ]
    result.notify_messages = len(notices)
    if notices:
        last_notice = max(datetime.fromtimestamp(float(m["ts"]), UTC) for m in notices)
        result.notify_last_s = (last_notice - t0).total_seconds()


def _channel_replies(slack: Any, channel: str) -> list[dict[str, Any]]:
    with slack._lock:
        return list(slack._messages.get(channel, {}).values())


def run_queries(
    backend: str, postgres_url: str, work: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    print(f"[due query] {backend}: {', '.join(f'{s:,}' for s in args.sizes)}", flush=True)
    with database(backend, postgres_url, work, "query") as url:
        plan = {
            "backend": backend,
            "database_url": url,
            "sizes": args.sizes,
            "due": args.due,
            "runs": args.runs,
            "limit": 50,
        }
        plan_path, out_path = work / f"query-{backend}.plan.json", work / f"query-{backend}.json"
        plan_path.write_text(json.dumps(plan))
        subprocess.run(  # noqa: S603 - this very module, by the current interpreter
            [sys.executable, "-m", "benchmarks.timers", "_query", str(plan_path), str(out_path)],
            cwd=ROOT,
            check=True,
            timeout=args.query_cap,
        )
        results: list[dict[str, Any]] = json.loads(out_path.read_text())
    return results


# ============================================================================ the report


def machine(postgres_version: str | None) -> dict[str, str]:
    versions = shared.versions(("sqlalchemy", "psycopg", "aiosqlite", "httpx", "zeep", "slack_sdk"))
    import sqlite3

    versions += f", SQLite {sqlite3.sqlite_version}"
    if postgres_version:
        versions += f", PostgreSQL {postgres_version}"
    return {
        "nproc": str(shared.cpu_count()),
        "cpu": shared.cpu_name(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor > 0 and not math.isnan(value) else "n/a"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ends_lines(r: EndsResult) -> list[str]:
    issue_floor = r.floor_s(ISSUE_CALLS_PER_END)
    real_floor = r.floor_s(r.calls_per_end)
    m = r.meters
    per_end = {k: v["total_s"] / r.ended * 1000 for k, v in m.items()}
    http_calls = m["sfmc_http"]["count"] or 1
    batches = max(m["handler"]["count"], 1)
    calls = ", ".join(f"{k} {v / r.ended:.2f}" for k, v in r.calls.items())
    lines = [
        f"| ends due (spread over {r.spread_s:g} s) | {r.n:,} |",
        f'| jobs done / of which recorded "cancelled" / with an error / claims | {r.done:,} / '
        f"{r.cancelled:,} / {r.with_error} / {r.attempts:,} |",
        f"| automations the emulator shows resumed (6 Scheduled) | {r.resumed:,} |",
        f'| thread notes "Resumed ... verified by reading it back" | {r.verified_notes:,} '
        f"(unverified {r.unverified_notes}, failed {r.failed_notes}) |",
        f"| SFMC calls per end | **{r.calls_per_end:.2f}** ({calls}) |",
        f"| wall time, first end due -> last end done | **{r.wall_s:.1f} s** (the last end is "
        f"due at {r.spread_s:g} s) |",
        f"| issue's floor ({ISSUE_CALLS_PER_END} calls per end) | {issue_floor:.1f} s "
        f"(ratio **{r.wall_s / issue_floor:.2f}x**) |",
        f"| real floor ({r.calls_per_end:.2f} calls per end) | {real_floor:.1f} s "
        f"(ratio {r.wall_s / real_floor:.2f}x; the last end is due at {r.spread_s:g} s) |",
        f"| lateness (done - due) p50 / p95 / max | {r.lateness_p50_s:.1f} / "
        f"{r.lateness_p95_s:.1f} / {r.lateness_max_s:.1f} s ({r.late_notes:,} notes say "
        '"Late by") |',
        f"| per end: SFMC HTTP / store / notes | "
        f"{per_end['sfmc_http']:.0f} / {per_end['db_tx']:.0f} / {per_end['notes']:.1f} ms "
        f"(avg SFMC call {m['sfmc_http']['total_s'] / http_calls * 1000:.1f} ms, "
        f"{m['db_tx']['count'] / r.ended:.2f} store transactions per end) |",
        f"| batches handed to `end_pauses` / ends per batch / seconds per batch | "
        f"{batches:,} / {m['batch_jobs']['total_s'] / batches:.0f} / "
        f"{m['handler']['total_s'] / batches:.2f} |",
        f"| CPU over the {r.bot_window_s:.0f} s window: bot process / emulator process | "
        f"{r.bot_cpu_s / r.bot_window_s:.0%} / "
        f"{r.emulator_cpu_s / r.bot_window_s:.0%} of one core |",
        f"| bot peak RSS | {r.bot_peak_rss_mb:.0f} MB |",
        f"| setup (not timed: {r.n:,} pauses written through the Store) | {r.setup_s:.0f} s |",
    ]
    if r.mode == "notes":
        lines += [
            f"| threads with their outcome note | {r.threads_with_note:,} of {r.n:,} |",
            f"| time until every thread has its note | **{r.notes_wall_s:.1f} s** |",
            f"| pacing floor (busiest channel: {r.busiest_channel_messages} bot messages at "
            f"1/s) | {r.pacing_floor_s:.0f} s "
            f"(ratio **{r.notes_wall_s / r.pacing_floor_s:.2f}x**) |"
            if r.pacing_floor_s
            else "| pacing floor | n/a |",
            f"| chat.postMessage calls / answered 429 | {r.slack_posts:,} / {r.slack_429:,} |",
            f"| card edits (chat.update) | {r.slack_calls.get('chat.update', 0):,} |",
            f"| Slack limits in the emulator | {r.slack_limits or 'per-channel posts only'} |",
            "| Slack calls after t0 by method (of which answered 429) | "
            + ", ".join(
                f"{m} {n:,} ({r.slack_429_by_method.get(m, 0):,})" for m, n in r.slack_calls.items()
            )
            + " |",
            f"| time until Slack has answered every call (last answer not 429) | "
            f"**{r.slack_done_s:.1f} s** |",
            f"| provider floor (SFMC: {r.calls_per_end:.2f} calls per end x "
            f"{r.latency_ms:g} ms / {r.concurrency} in flight) | "
            f"{r.floor_s(r.calls_per_end):.1f} s |",
            f"| Slack floor (set by {r.slack_floor_by or 'n/a'}) | {r.slack_floor_s:.1f} s |",
            f"| time until Slack has everything / the larger floor | "
            f"**{_ratio(r.slack_done_s, max(r.slack_floor_s, r.floor_s(r.calls_per_end)))}** |",
            f"| notify channel: summary messages / last one after / chat.getPermalink calls "
            f"| {r.notify_messages:,} / {r.notify_last_s:.1f} s / "
            f"{r.slack_calls.get('chat.getPermalink', 0):,} |",
            f"| notifier drained (everything queued posted) by {r.bot_window_s:.0f} s | "
            f"{'yes' if r.drained else '**no**'} |",
        ]
    if r.capped:
        lines.append("| jobs stopped by the time cap | yes |")
    return lines


def render(
    ends: list[EndsResult],
    profiled: EndsResult | None,
    queries: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
    when: datetime,
    info: dict[str, str],
) -> str:
    quick = " --quick" if args.quick else ""
    lines = [
        SECTION,
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {info['nproc']} CPUs ({info['cpu']}), "
        f"Python {info['python']}, {info['os']}; {info['versions']}. Load average before "
        f"the run (1/5/15 min): {info.get('load', 'n/a')}.",
        "",
        f"`python -m benchmarks.timers{quick}` (ends {args.ends:,}, concurrency "
        f"{args.concurrency}, batch {args.batch}, workers {args.workers}, latency "
        f"{args.latency_ms:g} ms, "
        f"{args.channels} channels, store: {args.ends_db}).",
        "",
    ]
    for r in ends:
        title = (
            "### Ends: automation pauses ending within one minute"
            if r.mode == "ends"
            else f"### Notes: the same ends, thread notes over {r.channels} channels"
        )
        lines += [title, "", "| | |", "|---|---|", *_ends_lines(r), ""]
    if profiled is not None and profiled.profile:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in profiled.profile)
        lines += [
            f"Where the bot's CPU goes (a separate run of {profiled.n:,} ends under cProfile, "
            f"CPU clock, own time by package): {shares}. Unprofiled, the bot spends "
            + ", ".join(
                f"{r.bot_cpu_s / r.ended * 1000:.1f} ms of CPU per end ({r.mode})" for r in ends
            )
            + ".",
            "",
        ]
    if queries:
        lines += [
            "### Due query: the scheduler's claim with many pending jobs",
            "",
            "| store | pending jobs | median ms | p95 ms | claimed | query peak (tracemalloc) "
            "| process peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        verdicts = []
        for backend, rows in queries.items():
            for q in rows:
                lines.append(
                    f"| {backend} | {q['pending']:,} | {q['median_ms']:.3f} | {q['p95_ms']:.3f} "
                    f"| {q['claimed']} | {q['tracemalloc_peak_kb']:.0f} KB "
                    f"| {q['peak_rss_mb']:.0f} MB |"
                )
            spread = max(q["median_ms"] for q in rows) / min(q["median_ms"] for q in rows)
            verdicts.append(
                f"- {backend}: largest / smallest median **{spread:.2f}x**, "
                f"{rows[-1]['pending']:,} / {rows[0]['pending']:,} pending "
                f"{rows[-1]['median_ms'] / rows[0]['median_ms']:.2f}x (target flat within "
                f"{QUERY_TARGET:g}x: {_verdict(spread <= QUERY_TARGET)}); plan: "
                f"`{rows[-1]['plan']}`."
            )
        lines += ["", *verdicts, ""]
    lines += _findings(ends, queries)
    lines += _suggestions(ends, profiled)
    lines += _method(args)
    return "\n".join(lines) + "\n"


def _findings(ends: list[EndsResult], queries: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = ["Findings.", ""]
    for r in ends:
        real, issue = r.floor_s(r.calls_per_end), r.floor_s(ISSUE_CALLS_PER_END)
        if r.capped:
            out.append(
                f"- {r.mode.capitalize()}: stopped by the time cap after {r.bot_window_s:.0f} s "
                f"with {r.done:,} of {r.n:,} ends done"
                + (f" and {r.threads_with_note:,} threads noted" if r.mode == "notes" else "")
                + f": the full run takes longer (ratio > {r.bot_window_s / real:.2f}x the real "
                "floor"
                + (
                    f", > {r.bot_window_s / r.pacing_floor_s:.2f}x the pacing floor of "
                    f"{r.pacing_floor_s:.0f} s)."
                    if r.mode == "notes" and r.pacing_floor_s
                    else ")."
                )
            )
        elif r.mode == "ends":
            out.append(
                f"- Ends: {r.wall_s:.1f} s for {r.n:,} ends, every one verified: "
                f"{r.wall_s / issue:.2f}x the issue's floor of {issue:.0f} s (target "
                f"{TARGET_RATIO}x: {_verdict(r.wall_s <= TARGET_RATIO * issue)}). The ends are "
                f"due over {r.spread_s:g} s, so {max(issue, r.spread_s) / issue:.2f}x is the "
                f"best possible; the bot makes {r.calls_per_end:.2f} calls per end, not "
                f"{ISSUE_CALLS_PER_END} (its own floor: {real:.0f} s)."
            )
        else:
            ok = r.notes_wall_s <= TARGET_RATIO * r.pacing_floor_s
            out.append(
                f"- Notes: every thread had its note after {r.notes_wall_s:.1f} s, "
                f"{r.notes_wall_s / r.pacing_floor_s:.2f}x the pacing floor of "
                f"{r.pacing_floor_s:.0f} s (target {TARGET_RATIO}x: {_verdict(ok)}); "
                f"{r.threads_with_note:,} of {r.n:,} threads got it; "
                f"{r.slack_429:,} of {r.slack_posts:,} posts were answered 429. The ends "
                f"themselves were done after {r.wall_s:.0f} s ({r.wall_s / real:.2f}x the real "
                f"floor of {real:.0f} s): "
                + (
                    "the pacing sets the time."
                    if r.wall_s < r.pacing_floor_s
                    else "the bot's own pace sets the time, not the pacing."
                )
                + (
                    ""
                    if r.drained
                    else f" The notifier had not posted everything queued when the drain "
                    f"stopped at {r.bot_window_s:.0f} s."
                )
                if r.threads_with_note
                else "- Notes: no thread got its note."
            )
            if r.slack_floor_s > 0:
                larger = max(r.slack_floor_s, real)
                ok = r.slack_done_s <= TARGET_RATIO * larger
                out.append(
                    f"- Under Slack's limits ({r.slack_limits}): Slack had answered every "
                    f"call after {r.slack_done_s:.1f} s, {_ratio(r.slack_done_s, larger)} the "
                    f"larger floor (Slack {r.slack_floor_s:.0f} s, set by {r.slack_floor_by}; "
                    f"provider {real:.1f} s; target {TARGET_RATIO}x: {_verdict(ok)}); "
                    f"{sum(r.slack_429_by_method.values()):,} of "
                    f"{sum(r.slack_calls.values()):,} Slack calls were answered 429."
                )
    return [*out, ""]


def _suggestions(ends: list[EndsResult], profiled: EndsResult | None) -> list[str]:
    """How the bot handles the ends, where the time goes, and what is left to cut."""
    base = next((r for r in ends if r.mode == "ends"), None)
    if base is None:
        return []
    m = base.meters
    http = m["sfmc_http"]
    batches = max(m["handler"]["count"], 1)
    shares = ", ".join(
        f"{name} {share:.0%}" for name, share in (profiled.profile if profiled else [])
    )
    issue = base.floor_s(ISSUE_CALLS_PER_END)
    best = max(issue, base.spread_s)
    lines = [
        "How the ends are handled, and where the time goes:",
        "",
        f"- **{base.calls_per_end:.2f} SFMC calls per end.** The scheduler hands every due end "
        "of a pass to `PauseService.end_pauses` at once (`bot.runtime.build_scheduler`: "
        f"batch {base.batch}, {base.workers} passes side by side). Per business unit: one SOAP "
        "`Retrieve` with `CustomerKey IN (...)` checks every automation (Status only), one "
        "`Schedule start` each resumes it with the schedule its pause kept in the database "
        "(no REST read), one more `Retrieve` verifies them all. The calls run within the "
        f"account's limit of {base.concurrency} in flight (`max_concurrent_calls`).",
        f"- **{m['db_tx']['count'] / base.ended:.2f} store transactions per end.** One query "
        "reads the pauses and their requests, one transaction closes them (audit lines, "
        "outcomes on the requests, the other timers cancelled), one statement completes the "
        f"jobs: {batches:,} batches of {m['batch_jobs']['total_s'] / batches:.0f} ends on "
        f"average, {m['handler']['total_s'] / batches:.2f} s each.",
        f"- **CPU: {base.bot_cpu_s / base.ended * 1000:.1f} ms of bot CPU per end**, one event "
        f"loop {base.bot_cpu_s / base.bot_window_s:.0%} busy over the window; an SFMC call "
        f"took {http['total_s'] / max(http['count'], 1) * 1000:.0f} ms for "
        f"{base.latency_ms:g} ms of latency (the rest is waiting for the loop and the call "
        "limit)." + (f" Under cProfile the CPU went to: {shares}." if shares else ""),
        f"- **What is left.** The last end is due at {base.spread_s:g} s, so "
        f"{best / issue:.2f}x the issue's floor is the best any bot can do here; the rest is "
        f"lateness (p95 {base.lateness_p95_s:.1f} s): the scheduler polls every second when "
        "it is not busy, and an end waits for the pass that claims it. The largest remaining "
        "CPU costs are httpx/httpcore's connection pool and zeep building each `Schedule` "
        "request; a second bot process (the scheduler is leased, and the call limit would "
        "then be split) is the next step if more ends must fit in a minute.",
    ]
    notes = next((r for r in ends if r.mode == "notes"), None)
    if notes is not None:
        lines.append(
            f"- **Notes.** One thread reply per end; the card is edited to show how the pause "
            f"ended ({notes.slack_calls.get('chat.update', 0):,} `chat.update`, paced on their "
            f"own); {notes.slack_429:,} of {notes.slack_posts:,} posts were answered 429 (posts "
            "are paced at 0.97/s per channel, a little under Slack's 1/s, so jitter does not "
            "cost a `Retry-After` second); notify-channel summaries link each thread with "
            "links built from one `auth.test` "
            f"({notes.slack_calls.get('chat.getPermalink', 0):,} `chat.getPermalink` calls)."
        )
    return [*lines, ""]


def _method(args: argparse.Namespace) -> list[str]:
    text = (
        "Method. The parent process runs the SFMC and Slack emulators (uvicorn on 127.0.0.1, "
        f"every call answered after {args.latency_ms:g} ms) and a child process runs the bot: "
        "`bot.runtime.build_runtime` and the scheduler `automation-bot serve` runs "
        f"(`bot.runtime.build_scheduler`: batch {args.batch}, {args.workers} passes side by "
        "side, idle "
        "poll 1 s, the real `PauseService.end_pauses`), the SFMC business unit's "
        f"`max_concurrent_calls` set to {args.concurrency}, on the store named above. Setup, "
        "not timed: the emulator gets the automations as 4 Paused with a daily schedule; the "
        "child reads that schedule once over REST and writes each request, schedule snapshot "
        "(as a pause keeps it), pause record and timer through the Store (`create_request` -> "
        "`transition` to succeeded with `pause_ends_at` -> `put_snapshot` -> `open_pause` -> "
        "`PauseService.schedule`), warms up (token, "
        "WSDL, connections), then moves the ends to `t0 + i x spread / N` (one `UPDATE` each "
        "for jobs and pauses). The wall time runs from the first end due (`min(due_at)`) to "
        "the last job done (`max(done_at)`); an end is done only after its read-back, and the "
        "parent then checks that the emulator shows every automation 6 Scheduled. Calls are "
        "those the emulator recorded after t0 (`SfmcEmulator.calls`), per end done. Floors: "
        "`N x calls per end x latency / concurrency`, with the issue's 2 calls and with the "
        "calls measured. The per-end breakdown times the provider HTTP calls, the store's "
        "transactions, the thread notes and each batch by wrapping them on these instances "
        "(the bot's code is unchanged); CPU is `time.process_time` of each process over the "
        "window (for the notes, until the notifier is drained); peak RSS is `VmHWM`. Ends: the "
        "notifier records the notes in memory, no notify channel. Notes: the notifier is "
        "built as `automation-bot serve` builds it (`SlackNotifier(background=True)`: per-"
        "channel pacing at 0.97/s with a burst of 3, every method within its workspace "
        "budget (`slack_limits`, Slack's figures), notify-channel notices coalesced, the "
        "client's 429 retry handler), against the Slack emulator with its per-channel "
        "`chat.postMessage` limit on (1/s, burst 3) and a notify channel configured; each "
        "request's card is in one of the channels (round robin); when every end is done the "
        f"notifier is drained (at most {DRAIN_S:g} s past the cap). The time to every note is "
        'the `ts` of the last outcome note ("Resumed: ...") minus t0; the pacing floor is the '
        "busiest card channel's bot messages after t0 at one per second. Due query: a child "
        "process inserts pending jobs (PostgreSQL `COPY`, SQLite `executemany`; "
        f"{args.due} due a minute ago, the rest due from one day to a year ahead, four job "
        "kinds), runs `ANALYZE`, then times `claim_statement` (the scheduler's claim, limit "
        "50, its job kinds) in a transaction that is rolled back: 10 warm-up runs, then the "
        f"median of {args.runs}; the sizes grow in the same table. The query's own peak is "
        "tracemalloc over 20 more runs; the process peak includes the inserts. PostgreSQL "
        "runs in a fresh schema, dropped afterwards. Timings depend on the machine's other "
        "load: the load average before the run is in the header."
    )
    return textwrap.wrap(text, width=90, break_on_hyphens=False, break_long_words=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from bot.runtime import SCHEDULER_BATCH, SCHEDULER_WORKERS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.timers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--ends", type=int, help="pause ends (default 10000; quick 500)")
    parser.add_argument("--channels", type=int, help="channels for the notes (100; quick 10)")
    parser.add_argument("--spread", type=float, help="seconds the ends spread over (60; quick 6)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--batch", type=int, default=SCHEDULER_BATCH, help="jobs a scheduler pass claims"
    )
    parser.add_argument(
        "--workers", type=int, default=SCHEDULER_WORKERS, help="scheduler passes side by side"
    )
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="pending jobs (1000 100000 1000000; quick 1000 20000)"
    )
    parser.add_argument("--due", type=int, default=10, help="jobs due in the due query")
    parser.add_argument("--runs", type=int, default=200, help="timed claims per size")
    parser.add_argument(
        "--ends-db", choices=("postgresql", "sqlite"), default="postgresql", help="store for ends"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument(
        "--only", choices=("ends", "notes", "query"), nargs="+", default=["ends", "notes", "query"]
    )
    parser.add_argument("--time-cap", type=float, default=480, help="seconds per ends window")
    parser.add_argument(
        "--budget", type=float, default=1380, help="seconds for the whole run: shrinks the caps"
    )
    parser.add_argument("--setup-cap", type=float, default=300, help="seconds per setup")
    parser.add_argument("--query-cap", type=float, default=400, help="seconds per store")
    parser.add_argument(
        "--profile-ends",
        type=int,
        help="ends of an extra run under cProfile: the CPU breakdown (500; quick 300; 0: none)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=DRAIN_S,
        help="seconds the notifier may take to post what is queued once the ends are done",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--from-results", type=Path, help="render a results.json kept by an earlier --keep run"
    )
    parser.add_argument("--keep", type=Path, help="keep the plans, outputs and logs here")
    args = parser.parse_args(argv)
    args.ends = args.ends or (500 if args.quick else 10_000)
    args.channels = args.channels or (10 if args.quick else 100)
    args.spread = args.spread or (6.0 if args.quick else 60.0)
    if args.profile_ends is None:
        args.profile_ends = 300 if args.quick else 500
    args.sizes = args.sizes or ([1_000, 20_000] if args.quick else [1_000, 100_000, 1_000_000])
    if args.quick:
        args.runs = min(args.runs, 50)
    args.postgres_url = args.postgres_url or DEFAULT_POSTGRES
    return args


def measure(args: argparse.Namespace, pg_version: str | None, work: Path) -> dict[str, Any]:
    """Every part asked for, within the time budget; the results as plain data."""
    began = time.monotonic()
    deadline: float = began + float(args.budget)
    ends: list[EndsResult] = []
    profiled: EndsResult | None = None
    queries: dict[str, list[dict[str, Any]]] = {}
    reserve = QUERY_RESERVE_S if "query" in args.only else 0.0

    def window_cap() -> float:
        left = deadline - time.monotonic() - reserve - SETUP_ALLOWANCE_S
        return max(30.0, min(float(args.time_cap), left))

    def ends_run(mode: str, **extra: Any) -> EndsResult:
        result = run_ends(
            mode,
            backend=args.ends_db,
            postgres_url=args.postgres_url,
            work=work,
            args=args,
            time_cap=window_cap(),
            **extra,
        )
        print(json.dumps(result.__dict__, default=str), flush=True)
        return result

    if "ends" in args.only:
        ends.append(ends_run("ends"))
        if args.profile_ends and deadline - time.monotonic() - reserve > PROFILE_ALLOWANCE_S:
            profiled = ends_run("ends", n=args.profile_ends, profile=True)
        elif args.profile_ends:
            print("the profiled run was skipped: out of time budget", file=sys.stderr)
    if "notes" in args.only:
        ends.append(ends_run("notes"))
    if "query" in args.only:
        for backend in ["postgresql", "sqlite"] if pg_version else ["sqlite"]:
            queries[backend] = run_queries(backend, args.postgres_url, work, args)
    print(f"total {time.monotonic() - began:.0f} s", flush=True)
    return {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "pg_version": pg_version,
        "ends": [r.__dict__ for r in ends],
        "profiled": profiled.__dict__ if profiled else None,
        "queries": queries,
    }


def report(results: dict[str, Any], when: datetime) -> str:
    args = argparse.Namespace(**results["args"])
    ends = [EndsResult(**r) for r in results["ends"]]
    profiled = EndsResult(**results["profiled"]) if results["profiled"] else None
    info = machine(results["pg_version"])
    load = results.get("load_before")
    info["load"] = " / ".join(f"{x:.2f}" for x in load) if load else "n/a"
    return render(ends, profiled, results["queries"], args, when, info)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    children: dict[str, Callable[[Path, Path], None]] = {"_bot": bot_child, "_query": query_child}
    if argv[:1] and argv[0] in children:
        children[argv[0]](Path(argv[1]), Path(argv[2]))
        return 0
    args = parse_args(argv)
    if args.from_results:
        results = json.loads(args.from_results.read_text())
        when = datetime.fromisoformat(results["when"])
    else:
        when = datetime.now(UTC)
        pg_version = postgres_reachable(args.postgres_url)
        if pg_version is None:
            print(f"PostgreSQL unreachable at {args.postgres_url}: SQLite only", file=sys.stderr)
            if args.ends_db == "postgresql":
                args.ends_db = "sqlite"
        with tempfile.TemporaryDirectory(prefix="bench-timers-") as tmp:
            work = args.keep or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            load = os.getloadavg() if hasattr(os, "getloadavg") else None
            results = {"when": when.isoformat(), "load_before": load}
            results.update(measure(args, pg_version, work))
            (work / "results.json").write_text(json.dumps(results, default=str))
    text = report(results, when)
    print(text)
    if not args.no_write:
        write_section(text, section=SECTION, path=DOC)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
