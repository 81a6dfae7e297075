"""Slash-command ack latency and throughput: the real bot against a bare Bolt app.

``python -m benchmarks.ack`` measures, in one run and under the same conditions:

* **bare**: a Bolt ``AsyncApp`` whose only listener is ``/automation`` -> ``await ack()``;
* **bot**: the whole bot (``bot.serve.create_asgi_app``: lifespan, store, runtime, every
  listener) against the SFMC and scrip emulators answering in 2 s, and the Slack emulator.

Both are served the same way: uvicorn on loopback through ``sandbox.server.ServerThread``,
Starlette route ``/slack/events`` -> ``AsyncSlackRequestHandler``. Three processes keep the
measurement honest on a small machine: this one runs the emulators and builds the signed
requests (``SlackDriver`` mints each ``response_url`` on the Slack emulator), a child runs
the app under test, another child sends the requests (httpx, N concurrent workers on N
keep-alive connections). A warm-up precedes every measurement; requests are bounded in
number and in time; everything stays on 127.0.0.1.

The figures are printed and written to the "## Slash-command ack" section of
``docs/benchmarks.md`` (the rest of the file is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from benchmarks import report

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Slash-command ack"
SIGNING_SECRET = "benchmark-signing-secret"  # noqa: S105 - signs loopback requests only
EVENTS_PATH = "/slack/events"

#: What users type; status is answered after the ack (respond), pause posts a card.
COMMANDS: tuple[str, ...] = (
    "status journey:welcome-series",
    "pause automation:hourly-lead-sync for 1d",
    "status automation:daily-welcome-send",
    "pause journey:cart-abandonment for 2d then resume",
    "status scrip:nightly-points-expiry",
    "pause automation:daily-welcome-send for 3d",
)

TARGET_RATIO = 0.7
TARGET_P99_MS = 50.0


# =============================================================================== results


@dataclass
class AppResult:
    app: str
    requests: int
    errors: int
    non_empty_acks: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    rps: float
    wall_s: float
    client_cpu_share: float
    capped: bool
    answers_by_end: int = 0
    answers_after_stop: int = 0


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(app: str, raw: dict[str, Any]) -> AppResult:
    latencies = sorted(x * 1000 for x in raw["latencies_s"])
    statuses = Counter({int(k): v for k, v in raw["statuses"].items()})
    wall = raw["wall_s"]
    return AppResult(
        app=app,
        requests=sum(statuses.values()),
        errors=sum(v for k, v in statuses.items() if k != 200),
        non_empty_acks=raw["non_empty"],
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        mean_ms=sum(latencies) / len(latencies) if latencies else math.nan,
        rps=statuses[200] / wall if wall else math.nan,
        wall_s=wall,
        client_cpu_share=raw["cpu_s"] / wall if wall else math.nan,
        capped=raw["capped"],
    )


# ============================================================== child: the app under test


def bare_asgi_app(*, slack_api_url: str) -> Any:
    """A Bolt AsyncApp that only acks ``/automation``, served like the bot serves its own."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from bot.slack.ids import SLASH_COMMAND
    from sandbox.slack.model import (
        SANDBOX_BOT_ID,
        SANDBOX_BOT_TOKEN,
        SANDBOX_BOT_USER_ID,
        SANDBOX_TEAM_ID,
    )

    identity = AuthorizeResult(
        enterprise_id=None,
        team_id=SANDBOX_TEAM_ID,
        bot_user_id=SANDBOX_BOT_USER_ID,
        bot_id=SANDBOX_BOT_ID,
        bot_token=SANDBOX_BOT_TOKEN,
    )

    async def authorize(**_: object) -> AuthorizeResult:
        return identity

    app = AsyncApp(
        client=AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=slack_api_url),
        signing_secret=SIGNING_SECRET,
        authorize=authorize,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.command(SLASH_COMMAND)
    async def on_command(ack: AsyncAck) -> None:
        await ack()

    async def events(request: Request) -> Response:
        return await AsyncSlackRequestHandler(app).handle(request)

    return Starlette(routes=[Route(EVENTS_PATH, events, methods=["POST"])])


def serve_child(settings_path: Path, ready_path: Path) -> None:
    """Run one app on a loopback port until stdin closes; write the port to ``ready_path``."""
    from pydantic import SecretStr

    from bot.config import SlackSettings, config_from_mapping
    from bot.defaults import sandbox_config
    from bot.logging import configure_logging
    from bot.metrics import Metrics
    from bot.serve import create_asgi_app
    from bot.store import upgrade
    from sandbox.server import ServerThread

    settings = json.loads(settings_path.read_text())
    configure_logging()  # as `automation-bot serve` does
    if settings["app"] == "bot":
        upgrade(settings["database_url"])
        config = config_from_mapping(
            sandbox_config(
                sfmc_url=settings["sfmc_url"],
                scrip_url=settings["scrip_url"],
                database_url=settings["database_url"],
            ),
            source="benchmark",
        )
        slack = SlackSettings(
            slack_bot_token=SecretStr(settings["bot_token"]),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=settings["slack_api_url"],
        )
        app = create_asgi_app(config, slack, metrics=Metrics())
        server = ServerThread(app, lifespan="on").start(timeout=60)
    else:
        app = bare_asgi_app(slack_api_url=settings["slack_api_url"])
        server = ServerThread(app).start()
    ready_path.write_text(str(server.port))
    sys.stdin.read()  # the parent closes stdin when it is done
    server.stop()


# ======================================================================= child: the load


async def _drive(
    client: httpx.AsyncClient,
    url: str,
    items: list[tuple[str, dict[str, str]]],
    *,
    concurrency: int,
    deadline: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    non_empty = 0
    queue = iter(items)
    capped = False

    async def worker() -> None:
        nonlocal non_empty, capped
        for body, headers in queue:
            if time.monotonic() > deadline:
                capped = True
                return
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body.encode(), headers=headers)
            except httpx.HTTPError:
                statuses[0] += 1  # no answer at all (timeout, reset): an error, not a latency
                continue
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
            non_empty += bool(response.content)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "latencies_s": latencies,
        "statuses": dict(statuses),
        "non_empty": non_empty,
        "wall_s": wall,
        "cpu_s": cpu,
        "capped": capped,
    }


async def _load(plan: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(plan["concurrency"])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + float(plan["time_cap_s"])
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        warm = await _drive(
            client, plan["url"], plan["warmup"], concurrency=concurrency, deadline=deadline
        )
        result = await _drive(
            client, plan["url"], plan["measure"], concurrency=concurrency, deadline=deadline
        )
    result["warmup_errors"] = sum(v for k, v in warm["statuses"].items() if k != 200)
    return result


def load_child(plan_path: Path, out_path: Path) -> None:
    plan = json.loads(plan_path.read_text())
    out_path.write_text(json.dumps(asyncio.run(_load(plan))))


# ============================================================================ the parent


@dataclass
class Emulators:
    sfmc_url: str
    scrip_url: str
    slack_url: str
    slack: Any  # SlackEmulator: mints response_urls and trigger_ids


@contextlib.contextmanager
def emulators(latency_ms: float) -> Iterator[Emulators]:
    from sandbox.scrip import ScripEmulator
    from sandbox.server import ServerThread
    from sandbox.sfmc import SfmcEmulator
    from sandbox.slack import SlackEmulator

    sfmc, scrip, slack = SfmcEmulator(), ScripEmulator(), SlackEmulator()
    sfmc.knobs.set(latency_ms=latency_ms)
    scrip.knobs.set(latency_ms=latency_ms)
    with (
        ServerThread(sfmc.app) as sfmc_server,
        ServerThread(scrip.app) as scrip_server,
        ServerThread(slack.app) as slack_server,
    ):
        yield Emulators(sfmc_server.url, scrip_server.url, slack_server.url, slack)


def answers(env: Emulators) -> int:
    """What the app said after its acks: response_url posts plus cards in the channel."""
    cards = [m for m in env.slack.messages("C0OPS") if m.get("user") == env.slack.bot_user_id]
    return len(env.slack.responses()) + len(cards)


def signed_requests(env: Emulators, url: str, count: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` signed slash commands, built by the SlackDriver without sending them."""
    from sandbox.slack import SlackDriver

    def capture(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    with (
        httpx.Client(transport=httpx.MockTransport(capture)) as http,
        SlackDriver(
            bot_url=url,
            signing_secret=SIGNING_SECRET,
            emulator=env.slack,
            emulator_url=env.slack_url,
            http=http,
        ) as driver,
    ):
        built = []
        for i in range(count):
            delivery = driver.slash_command(COMMANDS[i % len(COMMANDS)])
            built.append((delivery.body.decode(), dict(delivery.headers)))
        return built


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start")
        time.sleep(0.05)
    return path.read_text().strip()


def measure(app: str, env: Emulators, work: Path, args: argparse.Namespace) -> AppResult:
    settings = {
        "app": app,
        "sfmc_url": env.sfmc_url,
        "scrip_url": env.scrip_url,
        "slack_api_url": env.slack_url + "/api/",
        "bot_token": env.slack.bot_token,
        "database_url": f"sqlite:///{work / f'{app}.db'}",
    }
    settings_path, ready_path = work / f"{app}.settings.json", work / f"{app}.port"
    settings_path.write_text(json.dumps(settings))
    before = answers(env)
    with (work / f"{app}.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 - this very module, by the current interpreter
            [sys.executable, "-m", "benchmarks.ack", "_serve", str(settings_path), str(ready_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
        )
        try:
            port = wait_for_file(ready_path, server, timeout=60)
            url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
            items = signed_requests(env, url, args.warmup + args.requests)
            plan = {
                "url": url,
                "concurrency": args.concurrency,
                "time_cap_s": args.time_cap,
                "warmup": items[: args.warmup],
                "measure": items[args.warmup :],
            }
            plan_path, out_path = work / f"{app}.plan.json", work / f"{app}.out.json"
            plan_path.write_text(json.dumps(plan))
            subprocess.run(  # noqa: S603 - this very module, by the current interpreter
                [sys.executable, "-m", "benchmarks.ack", "_load", str(plan_path), str(out_path)],
                cwd=ROOT,
                check=True,
                timeout=args.time_cap + 60,
            )
            raw = json.loads(out_path.read_text())
            by_end = answers(env) - before
        finally:
            assert server.stdin is not None
            server.stdin.close()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    if raw["warmup_errors"]:
        print(f"warning: {raw['warmup_errors']} warm-up requests to {app} failed", file=sys.stderr)
    result = summarise(app, raw)
    result.answers_by_end, result.answers_after_stop = by_end, answers(env) - before
    return result


# ============================================================================ the report


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0),
        "cpu": cpu,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": ", ".join(
            f"{name} {metadata.version(name)}"
            for name in ("slack_bolt", "uvicorn", "starlette", "httpx")
        ),
    }


def render(results: dict[str, AppResult], args: argparse.Namespace, when: datetime) -> str:
    bare, bot = results["bare"], results["bot"]
    ratio = bot.rps / bare.rps
    info = machine()
    verdict_ratio = "met" if ratio >= TARGET_RATIO else "**missed**"
    verdict_p99 = "met" if bot.p99_ms < TARGET_P99_MS else "**missed**"
    rows = [
        f"| {r.app} | {r.requests} | {r.errors} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
        f"{r.p99_ms:.1f} | {r.max_ms:.1f} | {r.rps:.0f} | {r.client_cpu_share:.0%} |"
        for r in (bare, bot)
    ]
    findings = [
        f"- Throughput bot / bare: **{ratio:.2f}x** (target >= {TARGET_RATIO}x: {verdict_ratio}).",
        f"- Bot p99 ack: **{bot.p99_ms:.1f} ms** (target < {TARGET_P99_MS:g} ms: {verdict_p99}).",
        f"- Answers the bot sent after its acks (`response_url` replies and cards): "
        f"{bot.answers_by_end} when the load ended, {bot.answers_after_stop} after its "
        f"shutdown drain (30 s at most), for {bot.requests + args.warmup} commands.",
    ]
    findings += [
        f"- {r.app} was stopped by the {args.time_cap:g} s time cap."
        for r in results.values()
        if r.capped
    ]
    mix = ", ".join(f"`{c}`" for c in COMMANDS)
    lines = [
        SECTION,
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {info['nproc']} CPUs ({info['cpu']}), "
        f"Python {info['python']}, {info['os']}; {info['versions']}.",
        "",
        f"`python -m benchmarks.ack --requests {args.requests} --warmup {args.warmup} "
        f"--concurrency {args.concurrency} --latency-ms {args.latency_ms:g}`",
        "",
        "| app | requests | errors | p50 ms | p95 ms | p99 ms | max ms | req/s | client CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *findings,
        "",
        "Method. Both apps run in a child process, served by uvicorn on 127.0.0.1 through",
        "`sandbox.server.ServerThread` and the same Starlette route `/slack/events` ->",
        "`AsyncSlackRequestHandler`. **bare** is a Bolt `AsyncApp` whose only listener acks",
        "`/automation`; **bot** is `bot.serve.create_asgi_app` (SQLite store, every listener,",
        f"the runtime), its SFMC and scrip emulators answering every call in "
        f"{args.latency_ms / 1000:g} s.",
        "The parent process runs the emulators (and the Slack one, which receives the answers)",
        "and builds Slack-signed requests with `SlackDriver`, a fresh `response_url` each; a",
        f"second child sends them with httpx, {args.concurrency} workers on "
        f"{args.concurrency} keep-alive connections,",
        f"after {args.warmup} warm-up requests. The commands cycle through {mix}; each is",
        "acked at once and answered afterwards (status through the `response_url`, pause with",
        "a card), so the bot's background work piles up during the run. Latency is the",
        "client's time from sending a request to reading its ack; req/s counts acked requests",
        "over the measured wall time; client CPU is the load generator's share of one CPU (it",
        "is not the bottleneck while well below 100%). The apps run one after the other, bare",
        "first, in the same invocation.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = DOC) -> None:
    """Replace (or append) this benchmark's section of ``docs/benchmarks.md``."""
    report.write_section(text, section=SECTION, path=path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ack", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per app")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per app")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=2000, help="provider latency")
    parser.add_argument("--time-cap", type=float, default=120, help="seconds per app, at most")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", type=Path, help="keep the servers' logs in this directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_serve"]:
        serve_child(Path(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] == ["_load"]:
        load_child(Path(argv[1]), Path(argv[2]))
        return 0
    args = parse_args(argv)
    when = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp, emulators(args.latency_ms) as env:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = {app: measure(app, env, work, args) for app in ("bare", "bot")}
    for result in results.values():
        print(json.dumps(asdict(result)))
    text = render(results, args, when)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
