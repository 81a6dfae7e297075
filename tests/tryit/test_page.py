"""The try-it page's own HTTP API: what it sends reaches the bot, bad input is refused
clearly, and the rendered page shows the Slack emulator's messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from markupsafe import escape

from bot.slack.ids import ModalAction, ModalBlock
from sandbox.sfmc import STAGING_MID, Schedule
from tests.scenarios.conftest import wait_for
from tests.tryit.conftest import Page

ALICE, OPS = "U0ALICE", "C0OPS"
START = datetime(2024, 1, 8, 5)


@pytest.fixture
def http(page: Page) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=page.url, timeout=30) as client:
        yield client


def main(http: httpx.Client, user: str = ALICE) -> str:
    answer = http.get("/fragments", params={"user": user, "channel": OPS})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["main"])


def send(http: httpx.Client, text: str, user: str = ALICE) -> httpx.Response:
    return http.post("/api/send", json={"user": user, "channel": OPS, "text": text})


def test_a_command_from_the_page_posts_a_card_that_the_page_shows(
    page: Page, http: httpx.Client
) -> None:
    assert send(http, "/automation pause automation:hourly-lead-sync for 2d").json() == {"ok": True}

    wait_for(lambda: "verified" in main(http), timeout=30, what="the verified card")
    [card] = [m for m in page.play.slack.messages(OPS) if m.get("user") == "U0BOT"]
    html = main(http)
    assert f'data-ts="{card["ts"]}"' in html
    assert "Resume now" in html
    assert page.play.sfmc.automation(5100001, "hourly-lead-sync").status == 4


def test_an_answer_in_the_ack_is_shown_only_to_who_asked(http: httpx.Client) -> None:
    assert send(http, "/automation pause nonsense for 3x").status_code == 200

    assert "is not a pause length" in main(http)
    assert "Only visible to you" in main(http)
    assert "is not a pause length" not in main(http, user="U0BOB")


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/send", {"user": ALICE, "channel": OPS, "text": "hello"}, "start with /automation"),
        ("/api/send", {"user": "U0NOBODY", "channel": OPS, "text": "/automation help"}, "U0ALICE"),
        ("/api/send", {"user": ALICE, "channel": "C0NOPE", "text": "/automation"}, "channel"),
        ("/api/action", {"user": ALICE, "channel": OPS}, "no action_id"),
        (
            "/api/action",
            {"user": ALICE, "channel": OPS, "ts": "1.000001", "action_id": "card.resume"},
            "That button is gone",
        ),
        ("/api/react", {"user": ALICE, "channel": OPS, "ts": "", "name": "x"}, "emoji name"),
        ("/api/react", {"user": ALICE, "channel": OPS, "ts": "1.0", "name": "x"}, "is gone"),
        ("/api/submit", {"user": ALICE, "view_id": "V0NONE", "values": {}}, "form is closed"),
        ("/api/clock", {"seconds": -5}, "forward"),
        ("/api/clock", {"seconds": "1h"}, "forward"),
        ("/api/clock", [], "JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    http: httpx.Client, path: str, body: object, error: str
) -> None:
    answer = http.post(path, json=body)

    assert answer.status_code == 400
    assert error in answer.json()["error"]


def test_a_body_that_is_not_json_is_refused(http: httpx.Client) -> None:
    answer = http.post("/api/send", content=b"text=/automation help")

    assert answer.status_code == 400
    assert answer.json() == {"error": "The body must be JSON."}


def test_the_clock_moves_the_bot_and_the_providers_together(page: Page, http: httpx.Client) -> None:
    before = page.play.clock.now()

    answer = http.post("/api/clock", json={"seconds": 3600})

    assert answer.status_code == 200
    assert "+1 h ahead" in answer.json()["clock"]["ahead"]
    assert (page.play.sfmc.clock.now() - before).total_seconds() >= 3600
    assert page.play.scrip.clock is page.play.clock


def test_the_pause_form_errors_are_shown_on_the_field(page: Page, http: httpx.Client) -> None:
    send(http, "/automation pause")
    view = wait_for(lambda: page.play.slack.latest_view(ALICE), what="the pause form")

    answer = http.post(
        "/api/submit",
        json={
            "user": ALICE,
            "view_id": view["id"],
            "values": {ModalBlock.DAYS: {ModalAction.DAYS: "3"}},
        },
    )

    assert answer.status_code == 200
    errors = answer.json()["errors"]
    assert set(errors) == {ModalBlock.TARGET}  # no target picked: said on that field
    modal = http.get("/fragments", params={"user": ALICE, "channel": OPS}).json()["modal"]
    assert str(escape(errors[ModalBlock.TARGET])) in modal["html"]
    assert page.play.slack.view_is_open(view["id"])


def test_a_form_value_the_form_cannot_hold_is_refused(page: Page, http: httpx.Client) -> None:
    send(http, "/automation pause")
    view = wait_for(lambda: page.play.slack.latest_view(ALICE), what="the pause form")

    answer = http.post(
        "/api/submit",
        json={"user": ALICE, "view_id": view["id"], "values": {"nope": {"nope": "1"}}},
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "The form has no input nope/nope."


def test_a_picker_answer_goes_away_once_a_target_is_picked(page: Page, http: httpx.Client) -> None:
    for key in ("twin-east", "twin-west"):
        page.play.sfmc.add_automation(
            STAGING_MID, key=key, name="Twin", status=6, schedule=Schedule("Daily", start=START)
        )
    send(http, "/automation pause Twin for 1d")
    wait_for(lambda: "Several targets match" in main(http), what="the picker")
    [picker] = page.play.slack.ephemerals(OPS, ALICE)
    west = next(b["accessory"] for b in picker["blocks"] if "twin-west" in str(b.get("accessory")))

    clicked = http.post(
        "/api/action",
        json={
            "user": ALICE,
            "channel": OPS,
            "ts": "",
            "ephemeral": picker["ts"],
            "action_id": west["action_id"],
            "value": west["value"],
        },
    )

    assert clicked.json() == {"ok": True}
    wait_for(lambda: "Several targets match" not in main(http), what="the picker to go")
    wait_for(lambda: "verified" in main(http), timeout=30, what="the card of the pick")
    assert page.play.sfmc.automation(STAGING_MID, "twin-west").status == 4
