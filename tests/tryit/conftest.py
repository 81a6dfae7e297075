"""The try-it page over real HTTP, and headless Chromium (from the system's packages) on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.tryit.page import create_page_app
from bot.tryit.playground import Playground
from sandbox.server import ServerThread

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Chromium stalls on refused outbound connections unless its background traffic is off.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (install the {package} package; scripts/test does as root)"
    return None


class Page:
    """The try-it page served for one test, and its playground."""

    def __init__(self) -> None:
        self.play = Playground(scheduler_idle=0.05, slack_rate_limits=False).start()
        self.server = ServerThread(create_page_app(self.play)).start()
        self.url = self.server.url + "/"

    def stop(self) -> None:
        self.server.stop()
        self.play.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    served = Page()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never download a driver or a browser
    profile = tempfile.mkdtemp(prefix="bot-try-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshots_dir() -> Path | None:
    """Where to save the README's screenshots (``AUTOMATION_BOT_SCREENSHOTS``), or None."""
    folder = os.environ.get("AUTOMATION_BOT_SCREENSHOTS")
    return Path(folder) if folder else None
