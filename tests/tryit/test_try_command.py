"""``automation-bot try`` in its own process: the page comes up and reaches the bot."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.scenarios.conftest import wait_for


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


class Running:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def line_matching(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.seen)
                continue
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r} in {''.join(self.seen)!r}")


@pytest.fixture
def running_try() -> Iterator[Running]:
    proc = subprocess.Popen(
        _cli("try", "--no-open", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield Running(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout:
                proc.stdout.close()
    assert proc.returncode == 0


def test_try_serves_the_page_and_a_command_reaches_the_bot(running_try: Running) -> None:
    url = running_try.line_matching(r"Try it: (http://127\.0\.0\.1:\d+/)").group(1)
    with httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert "automation-ops" in page.text
        assert http.get("/static/tryit.js").status_code == 200

        sent = http.post(
            "/api/send",
            json={
                "user": "U0ALICE",
                "channel": "C0OPS",
                "text": "/automation status hourly-lead-sync",
            },
        )
        assert sent.json() == {"ok": True}

        def answered() -> bool:
            main = http.get("/fragments", params={"user": "U0ALICE", "channel": "C0OPS"})
            return "hourly-lead-sync" in main.json()["main"]

        wait_for(answered, timeout=30, what="the status answer on the page")


def test_try_on_a_busy_port_says_so_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _cli("try", "--no-open", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
