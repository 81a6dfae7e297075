"""The try-it page in headless Chromium: what a person does there reaches the bot as Slack
would send it, and what the bot does shows up on the page.

Each test drives the page only (typing, clicking, switching user, moving the clock) and
reads what it shows; waits are on conditions. With ``AUTOMATION_BOT_SCREENSHOTS=docs``
the tests also save the README's screenshots there (``scripts/screenshots``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tryit.conftest import Page, screenshots_dir

pytestmark = pytest.mark.browser

TIMEOUT = 60  # seconds; a busy 2-core machine runs the bot, the emulators and Chromium


def _by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def wait(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        browser, TIMEOUT, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition, message=f"waiting for {what}")


def text_of(browser: Any, css: str) -> str:
    return "\n".join(e.text for e in browser.find_elements(_by().CSS_SELECTOR, css))


def shows(css: str, needle: str) -> Callable[[Any], bool]:
    return lambda b: needle in text_of(b, css)


def click(browser: Any, css: str, *, label: str | None = None) -> None:
    """Click the first shown element matching ``css`` (and showing ``label``), once it is
    there; a click on an element the page just re-rendered is tried again."""

    def attempt(b: Any) -> bool:
        for element in b.find_elements(_by().CSS_SELECTOR, css):
            if element.is_displayed() and (label is None or label in element.text):
                element.click()
                return True
        return False

    wait(browser, attempt, f"{css} {label or ''}")


def send(browser: Any, command: str) -> None:
    box = wait(browser, lambda b: b.find_element(_by().ID, "message"), "the message box")
    box.clear()
    box.send_keys("/automation " + command + "\n")


def card(browser: Any, title: str) -> Any:
    """The newest top-level message whose text shows ``title``."""

    def find(b: Any) -> Any:
        found = [m for m in b.find_elements(_by().CSS_SELECTOR, "#main .msg") if title in m.text]
        return found[-1] if found else False

    return wait(browser, find, f"a card showing {title!r}")


def provider_row(browser: Any, key: str) -> str:
    rows = browser.find_elements(_by().CSS_SELECTOR, "#providers tr")
    return "\n".join(r.text for r in rows if key in r.text)


def as_user(browser: Any, user_id: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(_by().ID, "user")).select_by_value(user_id)


def accept_confirmation(browser: Any) -> None:
    """Confirm a button's ``confirm`` dialog (the page asks like Slack does)."""
    from selenium.webdriver.support import expected_conditions

    wait(browser, expected_conditions.alert_is_present(), "the confirmation").accept()


def screenshot(browser: Any, name: str) -> None:
    folder = screenshots_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(folder / name))


def test_a_typed_pause_posts_its_card_and_thread(page: Page, browser: Any) -> None:
    browser.get(page.url)
    send(browser, "pause journey:welcome-series for 2d")

    done = wait(browser, lambda b: _verified(card(b, "Welcome Series")), "the verified card")
    assert "Resume now" in done
    wait(browser, lambda b: "Paused" in provider_row(b, "welcome-series"), "SFMC to say Paused")

    click(browser, ".thread-link")
    wait(browser, shows("#thread", "replies"), "the thread's replies")
    assert "Welcome Series" in text_of(browser, "#thread")
    screenshot(browser, "try-card-and-thread.png")


def test_the_pause_form_searches_live_and_shows_errors_inline(page: Page, browser: Any) -> None:
    browser.get(page.url)
    send(browser, "pause")
    wait(browser, shows("#overlay .modal-head", "Pause an automation"), "the pause form")

    query = wait(
        browser, lambda b: b.find_element(_by().CSS_SELECTOR, ".ext-query"), "the target search"
    )
    query.send_keys("welcome")
    click(browser, ".ext-option", label="(welcome-series)")
    # the bot re-renders the form for a journey: its version and options appear
    wait(browser, shows("#overlay .modal", "Journey version"), "the journey's inputs")

    days = wait(browser, lambda b: _days_input(b), "the days input")
    days.send_keys("20")
    click(browser, "[data-submit]")
    wait(browser, lambda b: b.find_elements(_by().CSS_SELECTOR, ".bk-error"), "an inline error")
    assert "14" in text_of(browser, ".bk-error")
    screenshot(browser, "try-pause-form.png")

    days = _days_input(browser)
    days.clear()
    days.send_keys("2")
    click(browser, "[data-submit]")
    wait(browser, lambda b: not b.find_element(_by().ID, "overlay").is_displayed(), "closed form")
    wait(browser, lambda b: "verified paused" in card(b, "Welcome Series").text, "the card")


def _verified(element: Any) -> str | bool:
    text = str(element.text)
    return text if "verified paused" in text else False


def _days_input(browser: Any) -> Any:
    for box in browser.find_elements(_by().CSS_SELECTOR, ".bk-input"):
        if "how many days" in box.text:
            return box.find_element(_by().TAG_NAME, "input")
    return False


def test_a_production_request_is_approved_by_another_user(page: Page, browser: Any) -> None:
    browser.get(page.url)
    send(browser, "pause prod/daily-welcome-send for 1d")
    found = card(browser, "Approve")
    assert "Approve" in found.text

    # Alice asked and is no approver: her click does not count, and only she is told
    click(browser, "#main .bk-button", label="Approve")
    wait(browser, shows("#main .ephemeral", "your vote was not counted"), "the refusal")
    assert "Scheduled" in provider_row(browser, "daily-welcome-send")

    as_user(browser, "U0BOB")
    wait(browser, lambda b: "not counted" not in text_of(b, "#main"), "Bob's view")
    # an approver's reaction counts like the button
    click(browser, '#main .reaction.quick[data-reaction="white_check_mark"]')
    wait(browser, lambda b: "verified paused" in card(b, "daily-welcome-send").text, "done card")
    rows = provider_row(browser, "daily-welcome-send")
    assert any(line.startswith("prod") and "Paused" in line for line in rows.splitlines())


def test_a_short_timed_pause_ends_and_its_thread_says_so(page: Page, browser: Any) -> None:
    browser.get(page.url)
    send(browser, "pause automation:hourly-lead-sync for 1h then resume")
    wait(browser, lambda b: "verified paused" in card(b, "hourly-lead-sync").text, "the pause")

    click(browser, "[data-advance='3600']")  # the bot's and the emulators' clock: +1 h
    click(browser, ".thread-link")
    wait(browser, shows("#thread", "The pause time is up. Resumed"), "the end in the thread")
    wait(browser, lambda b: "Scheduled" in provider_row(b, "hourly-lead-sync"), "SFMC resumed")
    click(browser, ".channel-link", label="automation-notices")
    wait(browser, shows("#main", "Hourly Lead Sync: pause ended"), "the notice")
    click(browser, "#main a", label="thread")  # the notice's link opens the card's thread
    wait(browser, shows("#thread", "The pause time is up"), "the thread from the notice")
    assert "automation-ops" in text_of(browser, "#title")


def test_the_home_tab_lists_pauses_and_resumes_them(page: Page, browser: Any) -> None:
    browser.get(page.url)
    send(browser, "pause scrip:'Nightly Points Expiry' for 3d")
    wait(browser, lambda b: "verified paused" in card(b, "Nightly Points Expiry").text, "pause")

    click(browser, ".home-link")
    wait(browser, shows("#main .home", "Nightly Points Expiry"), "the Home tab")
    screenshot(browser, "try-home-tab.png")
    click(browser, "#main .home .bk-button", label="Resume now")
    accept_confirmation(browser)
    wait(
        browser,
        lambda b: "active" in provider_row(b, "Nightly Points Expiry"),
        "scrip to say active",
    )
