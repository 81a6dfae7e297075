"""The scrip emulator over real HTTP: auth, rate limits, pagination, and the automation rules."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.clock import Clock
from sandbox.scrip import (
    CANCEL_REFUSED,
    SANDBOX_API_KEY,
    SANDBOX_PROGRAM_ID,
    TRIGGER_REFUSED,
    ScripEmulator,
)
from sandbox.server import ServerThread

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUTOMATIONS = f"/v1/programs/{SANDBOX_PROGRAM_ID}/automations"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScripEmulator, str]]:
    emulator = ScripEmulator(clock=Clock(frozen_at=T0))
    with ServerThread(emulator.app) as thread:
        yield emulator, thread.url


@pytest.fixture
def emu(server: tuple[ScripEmulator, str]) -> ScripEmulator:
    emulator, _ = server
    emulator.clock.freeze(T0)
    emulator.reset()
    return emulator


@pytest.fixture
def client(server: tuple[ScripEmulator, str], emu: ScripEmulator) -> Iterator[httpx.Client]:
    _, url = server
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}, timeout=5
    ) as http:
        yield http


def path(emu: ScripEmulator, name: str, action: str = "") -> str:
    automation_id = emu.find(name)["id"]
    return f"{AUTOMATIONS}/{automation_id}" + (f"/{action}" if action else "")


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["data"]]


# ------------------------------------------------------------------------------- auth
def test_bearer_and_x_api_key_both_authenticate(client: httpx.Client) -> None:
    assert client.get(AUTOMATIONS).status_code == 200
    response = client.get(AUTOMATIONS, headers={"Authorization": "", "X-API-Key": SANDBOX_API_KEY})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": ""},
        {"Authorization": "Bearer sk_wrong"},
        {"Authorization": "Bearer not_a_scrip_key"},
        {"Authorization": "", "X-API-Key": "sk_wrong"},
    ],
)
def test_bad_or_missing_key_is_401_flat_body(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get(AUTOMATIONS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "message": "invalid or revoked API key"}
    assert "X-RateLimit-Limit" in response.headers


def test_revoked_key_is_refused(emu: ScripEmulator, client: httpx.Client) -> None:
    emu.revoke_api_key(SANDBOX_API_KEY)
    assert client.get(AUTOMATIONS).status_code == 401


# ------------------------------------------------------------------------ rate limits
def test_rate_limit_headers_on_every_response(client: httpx.Client) -> None:
    first = client.get(AUTOMATIONS)
    second = client.get(f"{AUTOMATIONS}/{UNKNOWN_ID}")
    assert first.headers["X-RateLimit-Limit"] == "30"
    assert first.headers["X-RateLimit-Remaining"] == "29"
    assert second.status_code == 404
    assert second.headers["X-RateLimit-Remaining"] == "28"
    # Reset: Unix seconds when full again (2 tokens at 10/s -> 0.2 s, rounded up).
    assert int(second.headers["X-RateLimit-Reset"]) == int(T0.timestamp()) + 1
    assert "Retry-After" not in first.headers


def test_burst_of_30_then_429_until_the_bucket_refills(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    statuses = [client.get(AUTOMATIONS).status_code for _ in range(30)]
    assert statuses == [200] * 30
    throttled = client.get(AUTOMATIONS)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_requests"
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    emu.clock.advance(0.1)  # exactly one token at 10/s
    assert client.get(AUTOMATIONS).status_code == 200
    assert client.get(AUTOMATIONS).status_code == 429
    emu.clock.advance(3)  # 30 tokens: full again
    assert client.get(AUTOMATIONS).headers["X-RateLimit-Remaining"] == "29"


def test_all_keys_of_an_organisation_share_one_bucket(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    emu.add_api_key("sk_second_key")
    for _ in range(15):
        client.get(AUTOMATIONS)
    for _ in range(15):
        client.get(AUTOMATIONS, headers={"Authorization": "Bearer sk_second_key"})
    assert client.get(AUTOMATIONS).status_code == 429


def test_knob_forces_429_with_retry_after(emu: ScripEmulator, client: httpx.Client) -> None:
    emu.knobs.set(rate_limit_next=2, retry_after_s=7)
    for _ in range(2):
        response = client.get(AUTOMATIONS)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
    assert client.get(AUTOMATIONS).status_code == 200


# ------------------------------------------------------------------------- pagination
def test_cursor_pagination_newest_first_without_overlap(client: httpx.Client) -> None:
    everything = names(client.get(AUTOMATIONS).json())
    assert len(everything) == 9  # ten seeded, one archived
    seen: list[str] = []
    params: dict[str, str] = {"limit": "4"}
    pages = 0
    while True:
        body = client.get(AUTOMATIONS, params=params).json()
        pages += 1
        seen += names(body)
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            break
        params["cursor"] = body["pagination"]["next_cursor"]
        base64.urlsafe_b64decode(params["cursor"] + "==")  # opaque, but base64
    assert pages == 3
    assert seen == everything
    created = [a["created_at"] for a in client.get(AUTOMATIONS).json()["data"]]
    assert created == sorted(created, reverse=True)


def test_pagination_is_stable_when_items_are_added_between_pages(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    first = client.get(AUTOMATIONS, params={"limit": "3"}).json()
    emu.add_automation(name="Brand New")  # newest: must not shift the next page
    cursor = first["pagination"]["next_cursor"]
    second = client.get(AUTOMATIONS, params={"limit": "3", "cursor": cursor}).json()
    assert not set(names(first)) & set(names(second))
    assert "Brand New" not in names(second)


@pytest.mark.parametrize("cursor", ["garbage!!", "YWJjMTIz", base64.b64encode(b"x|y").decode()])
def test_bad_cursor_is_400_invalid_cursor(client: httpx.Client, cursor: str) -> None:
    response = client.get(AUTOMATIONS, params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "201", "ten"])
def test_limit_out_of_range_is_400(client: httpx.Client, limit: str) -> None:
    response = client.get(AUTOMATIONS, params={"limit": limit})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["details"]["field"] == "limit"


def test_limit_bounds_are_accepted(client: httpx.Client) -> None:
    assert len(client.get(AUTOMATIONS, params={"limit": "1"}).json()["data"]) == 1
    assert client.get(AUTOMATIONS, params={"limit": "200"}).status_code == 200


# -------------------------------------------------------------------- search, filters
def test_search_is_partial_and_case_insensitive(client: httpx.Client) -> None:
    body = client.get(AUTOMATIONS, params={"search": "POINTS"}).json()
    assert sorted(names(body)) == [
        "Double Points Weekend",
        "Monthly Points Statement",
        "Nightly Points Expiry",
        "Welcome Points Drip",
    ]


def test_filters_combine_with_and(client: httpx.Client) -> None:
    paused = client.get(AUTOMATIONS, params={"status": "paused"}).json()
    assert names(paused) == ["Double Points Weekend"]
    cron_participants = client.get(
        AUTOMATIONS, params={"trigger_type": "cron", "scope": "participants"}
    ).json()
    assert sorted(names(cron_participants)) == ["Birthday Bonus", "Streak Reminder Fanout"]


def test_archived_hidden_unless_asked_for(client: httpx.Client) -> None:
    assert "Legacy Signup Bonus" not in names(client.get(AUTOMATIONS).json())
    archived = client.get(AUTOMATIONS, params={"status": "archived"}).json()
    assert names(archived) == ["Legacy Signup Bonus"]


def test_bad_filter_value_is_400(client: httpx.Client) -> None:
    response = client.get(AUTOMATIONS, params={"status": "stopped"})
    assert response.status_code == 400
    assert response.json()["details"]["received"] == "stopped"


# ------------------------------------------------------------------------- get, shapes
def test_get_shows_participant_fields_only_for_participant_scope(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    fanout = client.get(path(emu, "Streak Reminder Fanout")).json()
    assert fanout["status"] == "active"
    assert fanout["execution_status"] == "executing"
    assert fanout["participants_total"] == 5000
    nightly = client.get(path(emu, "Nightly Points Expiry")).json()
    assert "participants_total" not in nightly
    assert nightly["next_run_at"] == "2026-03-03T02:00:00.000Z"
    assert nightly["cron_expression"] == "0 2 * * *"


def test_unknown_ids_are_404_not_found(client: httpx.Client) -> None:
    response = client.get(f"{AUTOMATIONS}/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "automation not found"}
    program = client.get(f"/v1/programs/{UNKNOWN_ID}/automations")
    assert program.status_code == 404
    assert program.json()["code"] == "not_found"


def test_automation_of_another_program_is_404(emu: ScripEmulator, client: httpx.Client) -> None:
    other = emu.add_program("Other")
    stray = emu.add_automation(name="Elsewhere", program_id=other["id"])
    assert client.get(f"{AUTOMATIONS}/{stray['id']}").status_code == 404


def test_non_uuid_id_is_400_validation_error(client: httpx.Client) -> None:
    response = client.get(f"{AUTOMATIONS}/nightly")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["details"] == {
        "field": "automationId",
        "reason": "invalid_format",
        "expected": "uuid",
        "received": "nightly",
        "message": "automationId must be a UUID",
    }


def test_unknown_route_and_wrong_method(client: httpx.Client, emu: ScripEmulator) -> None:
    assert client.get("/v2/things").json()["code"] == "not_found"
    assert client.put(path(emu, "Birthday Bonus")).status_code == 405


# ------------------------------------------------------------------------------ PATCH
def test_pause_and_resume(emu: ScripEmulator, client: httpx.Client) -> None:
    url = path(emu, "Nightly Points Expiry")
    emu.clock.advance(60)
    paused = client.patch(url, json={"status": "paused"})
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert paused.json()["updated_at"] == "2026-03-02T12:01:00.000Z"
    resumed = client.patch(url, json={"status": "active"}).json()
    assert resumed["status"] == "active"
    assert resumed["next_run_at"] == "2026-03-03T02:00:00.000Z"


def test_patch_same_status_is_a_no_op(emu: ScripEmulator, client: httpx.Client) -> None:
    url = path(emu, "Double Points Weekend")
    before = client.get(url).json()
    emu.clock.advance(60)
    response = client.patch(url, json={"status": "paused"})
    assert response.status_code == 200
    assert response.json()["updated_at"] == before["updated_at"]


@pytest.mark.parametrize("value", ["stopped", "archived", "completed", 1])
def test_patch_status_accepts_only_active_or_paused(
    emu: ScripEmulator, client: httpx.Client, value: object
) -> None:
    response = client.patch(path(emu, "Birthday Bonus"), json={"status": value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["details"]["field"] == "status"
    assert body["details"]["expected"] == "active|paused"
    assert body["details"]["received"] == str(value)


def test_patch_read_only_or_misplaced_fields_is_400(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    read_only = client.patch(path(emu, "Birthday Bonus"), json={"trigger_type": "one_time"})
    assert read_only.status_code == 400
    assert read_only.json()["details"]["reason"] == "read_only"
    misplaced = client.patch(
        path(emu, "Spring Promo Kickoff"), json={"cron_expression": "* * * * *"}
    )
    assert misplaced.status_code == 400


@pytest.mark.parametrize("name", ["Legacy Signup Bonus", "Spring Promo Kickoff"])
def test_patch_status_of_archived_or_completed_is_409(
    emu: ScripEmulator, client: httpx.Client, name: str
) -> None:
    response = client.patch(path(emu, name), json={"status": "active"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_state_transition"
    assert body["details"]["current_status"] == emu.find(name)["status"]


def test_pausing_does_not_stop_a_fanout_in_progress(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    url = path(emu, "Streak Reminder Fanout")
    paused = client.patch(url, json={"status": "paused"}).json()
    assert paused["execution_status"] == "executing"
    emu.clock.advance(10)
    later = client.get(url).json()
    assert later["status"] == "paused"
    assert later["participants_processed"] == 1800 + 250


# ---------------------------------------------------------------------- trigger, cancel
def test_trigger_program_cron_sets_next_run_to_now_then_fires(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    url = path(emu, "Nightly Points Expiry")
    triggered = client.post(f"{url}/trigger")
    assert triggered.status_code == 200
    assert triggered.json()["next_run_at"] == "2026-03-02T12:00:00.000Z"
    after = client.get(url).json()
    assert after["last_run_at"] == "2026-03-02T12:00:00.000Z"
    assert after["next_run_at"] == "2026-03-03T02:00:00.000Z"


def test_trigger_participant_fanout_runs_with_the_clock(
    emu: ScripEmulator, client: httpx.Client
) -> None:
    url = path(emu, "Birthday Bonus")
    started = client.post(f"{url}/trigger").json()
    assert started["execution_status"] == "pending"
    assert started["participants_processed"] == 0
    emu.clock.advance(3)  # 1 s pending, then 25 participants/s
    running = client.get(url).json()
    assert running["execution_status"] == "executing"
    assert running["participants_processed"] == 50
    emu.clock.advance(60)
    done = client.get(url).json()
    assert done["execution_status"] == "completed"
    assert done["participants_processed"] == done["participants_total"] == 1200
    assert done["status"] == "active"


@pytest.mark.parametrize(
    ("name", "field", "received"),
    [
        ("Double Points Weekend", "status", "paused"),
        ("Streak Reminder Fanout", "execution_status", "executing"),
        ("Spring Promo Kickoff", "status", "completed"),
        ("Tier Upgrade Watcher", "trigger_type", "participant_state+participants"),
    ],
)
def test_trigger_refusals_are_400_with_the_documented_message(
    emu: ScripEmulator, client: httpx.Client, name: str, field: str, received: str
) -> None:
    response = client.post(path(emu, name, "trigger"))
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == TRIGGER_REFUSED
    assert body["details"]["field"] == field
    assert body["details"]["received"] == received


def test_one_time_program_cannot_be_triggered(emu: ScripEmulator, client: httpx.Client) -> None:
    later = datetime(2026, 4, 1, tzinfo=UTC)
    one_time = emu.add_automation(
        name="April Fools", trigger_type="one_time", scope="program", trigger_at=later
    )
    response = client.post(f"{AUTOMATIONS}/{one_time['id']}/trigger")
    assert response.status_code == 400
    assert response.json()["details"]["received"] == "one_time+program"


def test_cancel_a_running_execution(emu: ScripEmulator, client: httpx.Client) -> None:
    url = path(emu, "Streak Reminder Fanout")
    canceled = client.post(f"{url}/cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert body["execution_status"] == "failed"
    assert body["status"] == "active"
    assert body["participants_processed"] == 1800
    emu.clock.advance(60)
    assert client.get(url).json()["participants_processed"] == 1800


def test_cancel_when_idle_is_400(emu: ScripEmulator, client: httpx.Client) -> None:
    response = client.post(path(emu, "Birthday Bonus", "cancel"))
    assert response.status_code == 400
    assert response.json()["message"] == CANCEL_REFUSED
    assert response.json()["details"]["received"] == "idle"


# ------------------------------------------------------------------------------ DELETE
def test_delete_archives_for_good(emu: ScripEmulator, client: httpx.Client) -> None:
    url = path(emu, "Monthly Points Statement")
    archived = client.delete(url)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert "Monthly Points Statement" not in names(client.get(AUTOMATIONS).json())
    assert client.get(url).json()["status"] == "archived"  # GET by id still works
    assert client.patch(url, json={"status": "active"}).status_code == 409
    assert client.delete(url).status_code == 200  # idempotent


# -------------------------------------------------------------------------------- knobs
def test_5xx_knob(emu: ScripEmulator, client: httpx.Client) -> None:
    emu.knobs.set(fail_next_5xx=1)
    response = client.get(AUTOMATIONS)
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert client.get(AUTOMATIONS).status_code == 200


def test_malformed_body_knob(emu: ScripEmulator, client: httpx.Client) -> None:
    emu.knobs.set(malformed_next=1)
    response = client.get(AUTOMATIONS)
    assert response.status_code == 200
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


def test_latency_knob_delays_answers(emu: ScripEmulator, client: httpx.Client) -> None:
    emu.knobs.set(latency_ms=150)
    started = time.monotonic()
    assert client.get(AUTOMATIONS).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_calls_are_recorded(emu: ScripEmulator, client: httpx.Client) -> None:
    client.get(AUTOMATIONS, params={"limit": "2"})
    client.post(path(emu, "Birthday Bonus", "trigger"))
    calls = emu.calls
    assert [(c.method, c.status) for c in calls] == [("GET", 200), ("POST", 200)]
    assert calls[0].query == "limit=2"


# -------------------------------------------------------------------------- control API
def test_control_api(emu: ScripEmulator, client: httpx.Client) -> None:
    plain = {"Authorization": ""}
    knobs = client.post("/_sandbox/knobs", json={"rate_limit_next": 1}, headers=plain)
    assert knobs.json()["rate_limit_next"] == 1
    assert client.get("/_sandbox/knobs").json()["rate_limit_next"] == 1
    assert client.post("/_sandbox/knobs", json={"nope": 1}).status_code == 400
    assert client.get(AUTOMATIONS).status_code == 429
    advanced = client.post("/_sandbox/clock/advance", json={"seconds": 90})
    assert advanced.json()["now"] == "2026-03-02T12:01:30.000Z"
    state = client.get("/_sandbox/state").json()
    assert len(state["automations"]) == 10
    assert state["programs"][0]["name"] == "Loyalty Rewards"
    calls = client.get("/_sandbox/calls").json()
    assert calls == [
        {
            "method": "GET",
            "path": AUTOMATIONS,
            "query": "",
            "status": 429,
            "at": "2026-03-02T12:00:00.000Z",
        }
    ]
    client.patch(path(emu, "Birthday Bonus"), json={"status": "paused"})
    assert client.post("/_sandbox/reset").json() == {"ok": True}
    assert emu.find("Birthday Bonus")["status"] == "active"
    assert emu.calls == []


def test_options_switch_undocumented_behaviour(emu: ScripEmulator, client: httpx.Client) -> None:
    client.post("/_sandbox/options", json={"malformed_id_status": 404, "invalid_enum_status": 422})
    try:
        assert client.get(f"{AUTOMATIONS}/nightly").status_code == 404
        bad = client.patch(path(emu, "Birthday Bonus"), json={"status": "stopped"})
        assert bad.status_code == 422
    finally:
        client.post(
            "/_sandbox/options", json={"malformed_id_status": 400, "invalid_enum_status": 400}
        )


def test_create_automation(emu: ScripEmulator, client: httpx.Client) -> None:
    created = client.post(
        AUTOMATIONS,
        json={
            "name": "Flash Sale",
            "event_name": "promo.flash",
            "scope": "participants",
            "trigger": {"type": "immediate"},
        },
    )
    assert created.status_code == 201
    assert created.json()["execution_status"] == "pending"
    duplicate = client.post(
        AUTOMATIONS,
        json={
            "name": "Flash Sale",
            "event_name": "x",
            "scope": "program",
            "trigger": {"type": "cron", "cron_expression": "0 1 * * *"},
        },
    )
    assert duplicate.status_code == 409
    invalid = client.post(
        AUTOMATIONS,
        json={
            "name": "Bad",
            "event_name": "x",
            "scope": "program",
            "trigger": {"type": "immediate"},
        },
    )
    assert invalid.status_code == 400
