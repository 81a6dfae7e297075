"""``automation-bot serve`` and ``db upgrade`` as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator
from tests.conftest import Sandbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    with ServerThread(SlackEmulator().app) as slack:
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
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    if health.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not become healthy"
                time.sleep(0.1)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert "automation_bot_commands_total" in metrics.text
            unsigned = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=b"x=1")
            assert unsigned.status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            if proc.stderr:
                logs = proc.stderr.read()
                proc.stderr.close()
                assert "serve-test-secret" not in logs
                assert "xoxb-sandbox" not in logs


def test_serve_without_slack_token_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTOMATION_BOT"))}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--migrate"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN" in done.stderr
