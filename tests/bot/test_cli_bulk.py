"""``automation-bot exec`` with a bulk command: the preview alone, and the action only
with ``--yes``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.store import upgrade
from sandbox.campaign import add_campaign
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox

runner = CliRunner()


@pytest.fixture
def config_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(sandbox.mapping), encoding="utf-8")
    return path


def run(config_file: Path, text: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["exec", text, "--config", str(config_file), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_exec_shows_the_preview_and_acts_only_with_yes(sandbox: Sandbox, config_file: Path) -> None:
    code, out, _ = run(config_file, "pause staging/*:*welcome* for 1d")
    assert code == 1
    assert "preview: nothing was changed yet" in out
    assert "staging/automation:daily-welcome-send " in out
    assert "skip: cannot pause from stopped" in out  # daily-welcome-send-test
    assert "staging/journey:welcome-series-es" in out
    assert "Not carried out: add --yes" in out
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 6

    code, out, err = run(config_file, "pause staging/*:*welcome* for 1d", "--yes")
    assert code == 0, (out, err)
    assert "done (verified)" in out
    assert "0 failed, 0 left" in out
    assert "resume batch " in out
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-resend").status == 4
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send-test").status == 5
    assert sandbox.sfmc.journey(STAGING_MID, "welcome-series-es").status == "Paused"


def test_exec_does_not_carry_out_a_bulk_request_on_production(
    sandbox: Sandbox, config_file: Path
) -> None:
    add_campaign(sandbox.sfmc, None, mids=(PROD_MID,), automations=2, journeys=0)
    code, out, _ = run(config_file, "pause prod/automation:bf25-*")
    assert code == 1
    assert "one approval that covers exactly this set" in out
    code, _, err = run(config_file, "pause prod/automation:bf25-*", "--yes")
    assert code == 1
    assert "needs one approval in Slack" in err
    assert sandbox.sfmc.automation(PROD_MID, "bf25-send-001").status == 6


def test_exec_words_a_bad_pattern(config_file: Path) -> None:
    code, _, err = run(config_file, "pause staging/widget:bf-*")
    assert code == 2
    assert "unknown kind 'widget'" in err


def test_resume_batch_from_the_command_line(
    sandbox: Sandbox, config_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    upgrade(url)  # recorded: batch ids outlive one run
    recorded = tmp_path / "recorded.yaml"
    recorded.write_text(yaml.safe_dump({**sandbox.mapping, "database_url": url}), "utf-8")
    code, out, err = run(recorded, "pause staging/automation:daily-welcome-*", "--yes")
    assert code == 0, (out, err)
    batch_id = re.findall(r"resume batch ([0-9a-f]{12})", out)[-1]
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-resend").status == 4

    code, out, _ = run(recorded, f"resume batch {batch_id}")
    assert code == 1
    assert "Not carried out: add --yes" in out
    code, out, err = run(recorded, f"resume batch {batch_id}", "--yes")
    assert code == 0, (out, err)
    assert "2 done, 0 failed, 0 left" in out
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-resend").status == 6
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send-test").status == 5
