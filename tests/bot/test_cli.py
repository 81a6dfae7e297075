"""``automation-bot exec`` against the emulators: one line per outcome, exit codes 0/1/2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
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


def test_pause_resume_run_stop_each_kind(sandbox: Sandbox, config_file: Path) -> None:
    for text in (
        "pause automation:daily-welcome-send for 3d",
        "resume automation:daily-welcome-send",
        "run monthly-data-cleanup",
        "stop hourly-lead-sync",
        "pause journey:cart-abandonment for 2d then stop --queue-entries",
        "resume journey:cart-abandonment",
        "stop journey:cart-abandonment",
        "pause 'Weekly Tier Recalculation' for 12h",
        "resume scrip:'Weekly Tier Recalculation'",
        "run scrip:'Birthday Bonus'",
        "stop scrip:'Birthday Bonus'",
    ):
        code, out, err = run(config_file, text)
        assert code == 0, (text, out, err)
        assert "(verified)" in out, (text, out)
    assert sandbox.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 5
    assert sandbox.sfmc.journey(STAGING_MID, "cart-abandonment").status == "Stopped"


def test_status_and_list(config_file: Path) -> None:
    code, out, _ = run(config_file, "status journey:welcome-series")
    assert code == 0
    assert "staging/journey:welcome-series" in out
    code, out, _ = run(config_file, "list paused")
    assert code == 0
    assert "weekly-newsletter" in out


def test_user_is_reported(config_file: Path) -> None:
    code, out, _ = run(config_file, "pause hourly-lead-sync", "--user", "U123")
    assert code == 0
    assert "requested by U123" in out


def test_bad_input_exit_2_with_usage(config_file: Path) -> None:
    code, _, err = run(config_file, "pause journey:x for 3 fortnights")
    assert code == 2
    assert "Usage: pause <target>" in err  # typed without the slash command here
    assert "/automation" not in err


def test_bad_config_exit_2_names_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("default_environment: x\nenvironments: {}\n", encoding="utf-8")
    result = runner.invoke(app, ["exec", "status x", "--config", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert "environments" in result.stderr


def test_production_becomes_a_request_and_changes_nothing(
    sandbox: Sandbox, config_file: Path
) -> None:
    # Production is never run directly: it needs --user (then Slack and a database, see
    # test_cli_approvals.py) to become a request awaiting approval.
    code, _, err = run(config_file, "pause prod/daily-welcome-send for 1d")
    assert code == 2
    assert "--user" in err
    assert "Nothing was changed" in err
    assert sandbox.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6
    assert not [c for c in sandbox.sfmc.calls if c.mid == PROD_MID]


def test_unknown_target_suggests(config_file: Path) -> None:
    code, _, err = run(config_file, "pause hourly-lead-sinc")
    assert code == 1
    assert "Did you mean" in err
    assert 'automation:"Hourly Lead Sync"' in err


def test_refused_transition_names_state(config_file: Path) -> None:
    code, _, err = run(config_file, "pause nightly-crm-export")
    assert code == 1
    assert "3 Running" in err
    code, _, err = run(config_file, "resume journey:cart-abandonment")
    assert code == 1
    assert "Published" in err


def test_paused_days_over_14_rejected_before_any_request(
    sandbox: Sandbox, config_file: Path
) -> None:
    code, _, err = run(config_file, "pause journey:cart-abandonment for 15d")
    assert code == 2
    assert "14 days" in err
    assert not [c for c in sandbox.sfmc.calls if "/pause/" in c.path]


def test_soap_rate_limit_fault_reports_code_17(sandbox: Sandbox, config_file: Path) -> None:
    sandbox.sfmc.knobs.set(rate_limit_next=50, path_filter="Service.asmx")
    code, _, err = run(config_file, "status automation:daily-welcome-send")
    assert code == 1
    assert "code 17" in err
    assert len(err.strip().splitlines()) == 1


def test_journey_rest_429_reports_50100(sandbox: Sandbox, config_file: Path) -> None:
    sandbox.sfmc.knobs.set(rate_limit_next=50, retry_after_s=60, path_filter="/interaction/")
    code, _, err = run(config_file, "pause journey:cart-abandonment for 1d")
    assert code == 1
    assert "50100" in err
    assert len(err.strip().splitlines()) == 1


def test_scrip_429_reports_its_code(sandbox: Sandbox, config_file: Path) -> None:
    sandbox.scrip.knobs.set(rate_limit_next=50, retry_after_s=120)
    code, _, err = run(config_file, "status scrip:'Birthday Bonus'")
    assert code == 1
    assert "too_many_requests" in err


def test_scrip_400_on_trigger_reports_state(sandbox: Sandbox, config_file: Path) -> None:
    code, _, err = run(config_file, "run scrip:'Double Points Weekend'")
    assert code == 1
    assert "paused" in err


def test_help_prints_usage(config_file: Path) -> None:
    code, out, _ = run(config_file, "help pause")
    assert code == 0
    assert "pause" in out
