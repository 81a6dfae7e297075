"""``automation-bot sandbox`` in its own process, driven by ``automation-bot exec``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


@pytest.fixture
def sandbox_config(tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "sandbox.yaml"
    proc = subprocess.Popen(
        _cli(
            "sandbox",
            *("--sfmc-port", "0", "--scrip-port", "0", "--slack-port", "0"),
            *("--write-config", str(config)),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not config.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "sandbox did not write its config"
            time.sleep(0.05)
        yield config
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            if proc.stdout:
                proc.stdout.close()
    assert proc.returncode == 0


def _exec(config: Path, text: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_BOT_CONFIG"}
    return subprocess.run(
        _cli("exec", text, "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_exec_against_a_running_sandbox_keeps_state(sandbox_config: Path) -> None:
    steps = [
        ("pause automation:daily-welcome-send for 2d then resume", 0, "(verified)"),
        ("status automation:daily-welcome-send", 0, "paused"),
        ("resume automation:daily-welcome-send", 0, "(verified)"),
        ("run automation:monthly-data-cleanup", 0, "(verified)"),
        ("stop automation:hourly-lead-sync", 0, "(verified)"),
        ("pause journey:cart-abandonment for 2d then resume", 0, "(verified)"),
        ("status journey:cart-abandonment", 0, "paused"),
        ("resume journey:cart-abandonment", 0, "(verified)"),
        ("stop journey:cart-abandonment", 0, "(verified)"),
        ("pause scrip:'Weekly Tier Recalculation' for 1d", 0, "(verified)"),
        ("resume scrip:'Weekly Tier Recalculation'", 0, "(verified)"),
        ("run scrip:'Birthday Bonus'", 0, "(verified)"),
        ("stop scrip:'Birthday Bonus'", 0, "(verified)"),
        ("resume journey:cart-abandonment", 1, "stopped"),
        ("pause nonsense words here", 2, "Usage:"),
    ]
    for text, code, needle in steps:
        done = _exec(sandbox_config, text)
        assert done.returncode == code, (text, done.stdout, done.stderr)
        assert needle in done.stdout + done.stderr, (text, done.stdout, done.stderr)
