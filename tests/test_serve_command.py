"""``automation-bot serve`` and ``db upgrade`` as a user runs them: the real command in a
subprocess, Slack played by the emulator over real HTTP (``SLACK_API_URL``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from sandbox.server import ServerThread
from sandbox.slack import SANDBOX_APP_TOKEN, SlackEmulator, SlackSettings
from tests.conftest import Sandbox
from tests.processes import terminate_within

CLI = [sys.executable, "-m", "bot.cli"]
# Start-up lines that only alarm whoever reads the log (they say nothing is wrong).
NOISE = ("will be unused", "will be ignored", "<JobKind", "Traceback")


def _slack() -> SlackEmulator:
    """The Slack emulator without its rate limits (these tests are about start-up)."""
    return SlackEmulator(settings=SlackSettings(rate_limits_enabled=False))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_health(proc: subprocess.Popen[str], port: int, status: int) -> None:
    """Poll ``/healthz`` until it answers ``status`` (the process must stay up meanwhile)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if health.status_code == status:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read() if proc.stderr else "serve exited")
        assert time.monotonic() < deadline, f"/healthz never answered {status}"
        time.sleep(0.1)


def _migrated_config(sandbox: Sandbox, tmp_path: Path) -> Path:
    mapping = dict(sandbox.mapping, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    config = tmp_path / "bot.yaml"
    config.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return config


def _serve(config: Path, env: dict[str, str], port: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "serve", "--config", str(config), "--port", str(port), "--migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _env(slack_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTOMATION_BOT"))}
    env.update(
        SLACK_BOT_TOKEN="xoxb-sandbox",
        SLACK_SIGNING_SECRET="serve-test-secret",
        SLACK_API_URL=slack_url + "/api/",
    )
    return env


def test_serve_refuses_unmigrated_database_then_runs_after_upgrade(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = dict(sandbox.mapping, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    config = tmp_path / "bot.yaml"
    config.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    cli = [sys.executable, "-m", "bot.cli"]
    with ServerThread(_slack().app) as slack:
        env = _env(slack.url)
        refused = subprocess.run(
            [*cli, "serve", "--config", str(config), "--port", "0"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "automation-bot db upgrade" in refused.stderr

        upgraded = subprocess.run(
            [*cli, "db", "upgrade", "--config", str(config)],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stderr
        assert "revision" in upgraded.stdout

        port = _free_port()
        proc = subprocess.Popen(
            [*cli, "serve", "--config", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_health(proc, port, 200)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert "automation_bot_commands_total" in metrics.text
            unsigned = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=b"x=1")
            assert unsigned.status_code == 401
        finally:
            logs = terminate_within(proc, 10)
        assert proc.returncode == 0, logs
        assert "serve-test-secret" not in logs
        assert "xoxb-sandbox" not in logs
        assert not [line for line in logs.splitlines() if any(n in line for n in NOISE)], logs
        assert "kinds=['approval_expiry', " in logs, logs  # enums are logged by value


def test_serve_without_slack_token_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTOMATION_BOT"))}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--migrate"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN" in done.stderr


def test_serve_with_a_refused_bot_token_says_so_in_one_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = _migrated_config(sandbox, tmp_path)
    with ServerThread(_slack().app) as slack:
        env = dict(_env(slack.url), SLACK_BOT_TOKEN="xoxb-revoked")
        proc = _serve(config, env)
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            terminate_within(proc, 10)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    [line] = _error_lines(stderr)
    assert line.startswith("error: SLACK_BOT_TOKEN was refused by Slack (invalid_auth): "), line
    assert "xoxb-" in line  # says which token to use
    assert "xoxb-revoked" not in stderr


def test_serve_with_a_refused_app_token_says_so_in_one_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = _migrated_config(sandbox, tmp_path)
    emulator = _slack()
    with ServerThread(emulator.app) as slack:
        env = dict(_env(slack.url), SLACK_APP_TOKEN="xapp-revoked")
        proc = _serve(config, env)
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            terminate_within(proc, 10)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    [line] = _error_lines(stderr)
    assert line.startswith("error: SLACK_APP_TOKEN was refused by Slack (invalid_auth): "), line
    assert "connections:write" in line
    assert "xapp-revoked" not in stderr
    [handshake] = emulator.calls("apps.connections.open")
    assert handshake.error == "invalid_auth"


def test_serve_given_the_bot_token_as_app_token_says_which_token_is_wrong(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = _migrated_config(sandbox, tmp_path)
    with ServerThread(_slack().app) as slack:
        env = dict(_env(slack.url), SLACK_APP_TOKEN="xoxb-sandbox")
        proc = _serve(config, env)
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            terminate_within(proc, 10)
    assert proc.returncode == 2, stderr
    [line] = _error_lines(stderr)
    assert line.startswith("error: SLACK_APP_TOKEN was refused by Slack (not_allowed_token_type)")


def test_sigterm_stops_serve_while_socket_mode_is_still_connecting(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The app token is good but the WebSocket never opens (the emulator serves none)."""
    config = _migrated_config(sandbox, tmp_path)
    emulator = _slack()
    with ServerThread(emulator.app) as slack:
        env = dict(_env(slack.url), SLACK_APP_TOKEN=SANDBOX_APP_TOKEN)
        port = _free_port()
        proc = _serve(config, env, port)
        try:
            _wait_for_health(proc, port, 503)  # bound, still starting
            wait_for_calls = time.monotonic() + 30
            while not [c for c in emulator.calls("apps.connections.open") if c.ok]:
                assert time.monotonic() < wait_for_calls, "no Socket Mode handshake"
                time.sleep(0.05)
        finally:
            logs = terminate_within(proc, 10)
    assert proc.returncode == 0, logs
    assert SANDBOX_APP_TOKEN not in logs


def test_sigterm_stops_serve_while_slack_has_not_answered_yet(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """HTTP mode, stuck in its first Slack call (``auth.test``): SIGTERM still stops it."""
    config = _migrated_config(sandbox, tmp_path)
    emulator = _slack()
    emulator.knobs.set(latency_ms=20_000, path_filter="auth.test")
    with ServerThread(emulator.app) as slack:
        port = _free_port()
        proc = _serve(config, _env(slack.url), port)
        try:
            _wait_for_health(proc, port, 503)
        finally:
            logs = terminate_within(proc, 10)
            emulator.knobs.reset()
    assert proc.returncode == 0, logs
