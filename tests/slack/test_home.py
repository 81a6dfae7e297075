"""The App Home tab and the time-left wording."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.domain.models import TargetKind, ThenAction
from bot.domain.requests import PauseRecord
from bot.slack.home import home_view, pause_label, time_left
from bot.slack.ids import BulkAction, HomeAction
from bot.slack.metadata import ButtonValue
from tests.slack.test_blocks import EVIL, check_blocks

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def record(
    i: int = 1, *, ends_in: timedelta | None = timedelta(days=1), **fields: Any
) -> PauseRecord:
    values: dict[str, Any] = {
        "id": i,
        "request_id": f"req-{i}",
        "environment": "prod",
        "kind": TargetKind.JOURNEY,
        "key": f"welcome-{i}",
        "name": f"Welcome {i}",
        "version": 3,
        "paused_by": "U0ALICE",
        "started_at": NOW - timedelta(hours=2),
        "ends_at": NOW + ends_in if ends_in is not None else None,
        "then": ThenAction.RESUME,
    }
    values.update(fields)
    return PauseRecord(**values)


def check_home(view: dict[str, Any]) -> dict[str, Any]:
    View(**view).validate_json()
    assert view["type"] == "home"
    assert "submit" not in view
    assert "close" not in view
    check_blocks(view["blocks"], limit=100)
    return view


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def resume_buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b["accessory"]
        for b in view["blocks"]
        if b["type"] == "section" and b.get("accessory", {}).get("type") == "button"
    ]


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(days=2, hours=4), "2d 4h left"),
        (timedelta(days=2, hours=4, minutes=30), "2d 4h left"),
        (timedelta(days=3), "3d left"),
        (timedelta(hours=5, minutes=30), "5h 30m left"),
        (timedelta(hours=1), "1h left"),
        (timedelta(minutes=59, seconds=1), "1h left"),
        (timedelta(minutes=35), "ends in 35m"),
        (timedelta(minutes=34, seconds=1), "ends in 35m"),
        (timedelta(seconds=10), "ends in 1m"),
        (timedelta(0), "ending now"),
        (-timedelta(seconds=59), "ending now"),
        (-timedelta(minutes=5), "overdue by 5m"),
        (-timedelta(minutes=5, seconds=59), "overdue by 5m"),
        (-timedelta(hours=2, minutes=3), "overdue by 2h 3m"),
        (-timedelta(days=1, hours=2), "overdue by 1d 2h"),
    ],
)
def test_time_left(delta: timedelta, expected: str) -> None:
    assert time_left(NOW + delta, now=NOW) == expected


def test_time_left_without_an_end() -> None:
    assert time_left(None, now=NOW) == "no end set"


def test_pause_label() -> None:
    assert pause_label(record()) == "prod/journey:welcome-1 v3"
    assert pause_label(record(all_versions=True, version=None)) == (
        "prod/journey:welcome-1 (all versions)"
    )
    # a scrip automation's key is its UUID: it is named by its name
    assert pause_label(record(kind=TargetKind.SCRIP, version=None)) == 'prod/scrip:"Welcome 1"'


def test_empty_home() -> None:
    view = check_home(home_view(pauses=[], now=NOW, user_id="U0BOB"))
    assert "Nothing is paused right now." in text_of(view)
    actions = next(b for b in view["blocks"] if b["type"] == "actions")
    assert actions["elements"][0]["action_id"] == HomeAction.OPEN_PAUSE_MODAL
    assert actions["elements"][0]["text"]["text"] == "Pause…"
    inactive = home_view(pauses=[record(active=False)], now=NOW, user_id="U0BOB")
    assert "Nothing is paused right now." in text_of(check_home(inactive))


def test_home_lists_pauses_soonest_first() -> None:
    pauses = [
        record(1, ends_in=None),
        record(2, ends_in=timedelta(days=2, hours=4), paused_by="U0BOB"),
        record(3, ends_in=timedelta(minutes=35), then=ThenAction.KEEP),
        record(4, ends_in=-timedelta(minutes=5)),
    ]
    view = check_home(home_view(pauses=pauses, now=NOW, user_id="U0BOB"))
    text = text_of(view)
    order = [text.index(f"prod/journey:welcome-{i} v3") for i in (4, 3, 2, 1)]
    assert order == sorted(order)
    for part in (
        "overdue by 5m",
        "ends in 35m",
        "2d 4h left",
        "No end set",
        "<@U0BOB> (you)",
        "<@U0ALICE>",
        "then it stays paused",
        "<!date^",
        "4 paused",
    ):
        assert part in text
    buttons = resume_buttons(view)
    assert [b["action_id"] for b in buttons] == [HomeAction.RESUME_NOW] * 4
    assert [ButtonValue.parse(b["value"]).request_id for b in buttons] == [
        "req-4",
        "req-3",
        "req-2",
        "req-1",
    ]
    assert all(b["confirm"]["confirm"]["text"] == "Resume" for b in buttons)


@pytest.mark.parametrize("count", [48, 49, 1000])
def test_home_with_many_pauses_fits(count: int) -> None:
    pauses = [
        record(
            i,
            ends_in=timedelta(minutes=i + 1),
            name=EVIL * 50,
            key=f"k{i}<&>" * 20,
            paused_by="<!everyone>",
        )
        for i in range(count)
    ]
    view = check_home(home_view(pauses=pauses, now=NOW, user_id="U0BOB"))
    assert len(view["blocks"]) <= 100
    shown = len(resume_buttons(view))
    if count <= 48:
        assert shown == count
        assert "more paused" not in text_of(view)
    else:
        assert shown == 48
        assert f"…and {count - 48} more paused" in text_of(view)
    assert "&lt;!everyone&gt;" in text_of(view)


def test_a_pause_held_by_a_batch_offers_resume_batch() -> None:
    held = record(2, request_id="", batch_id="b" * 12, ends_in=timedelta(hours=5))
    view = check_home(home_view(pauses=[record(1), held], now=NOW, user_id="U0BOB"))
    [batch, single] = sorted(resume_buttons(view), key=lambda b: b["action_id"])
    assert batch["action_id"] == BulkAction.RESUME
    assert batch["value"] == "b" * 12
    assert batch["text"]["text"] == "Resume batch"
    assert single["action_id"] == HomeAction.RESUME_NOW
    text = text_of(view)
    assert f"batch `{'b' * 12}`" in text
    assert "5h left" in text
