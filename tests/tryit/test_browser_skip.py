"""Without Chromium the browser tests are skipped, and the reason says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tryit import conftest


def test_a_missing_chromium_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "chromium")

    reason = conftest.browser_missing()

    assert reason is not None
    assert "install the chromium package" in reason


def test_a_missing_driver_names_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chromium = tmp_path / "chromium"
    chromium.touch()
    monkeypatch.setattr(conftest, "CHROMIUM", chromium)
    monkeypatch.setattr(conftest, "CHROMEDRIVER", tmp_path / "chromedriver")

    reason = conftest.browser_missing()

    assert reason is not None
    assert "install the chromium-driver package" in reason
