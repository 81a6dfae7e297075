"""``scripts/pytest-both`` (the test half of ``scripts/test``) as a developer runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HALVES = """
import os

import pytest


def test_needs_postgres():
    assert os.environ.get("AUTOMATION_BOT_TEST_DATABASE_URL"), "fails on the SQLite half"


@pytest.mark.postgres
def test_on_postgres():
    assert os.environ["AUTOMATION_BOT_TEST_DATABASE_URL"]
"""


def test_a_failing_sqlite_half_still_runs_and_reports_the_postgresql_half(tmp_path: Path) -> None:
    tests = tmp_path / "test_halves.py"
    tests.write_text(HALVES, encoding="utf-8")
    bash = shutil.which("bash")
    assert bash is not None
    env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_BOT_TEST_DATABASE_URL"}
    done = subprocess.run(
        [bash, str(ROOT / "scripts" / "pytest-both"), str(tests), "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [summary] = [line for line in done.stdout.splitlines() if line.startswith("== pytest summary")]
    assert "SQLite FAILED (exit 1)" in summary
    if "== pytest (PostgreSQL)" in done.stdout:  # a server is reachable: its half ran
        assert summary.endswith("PostgreSQL passed"), summary
    else:
        assert "PostgreSQL skipped (not reachable at " in summary, summary
