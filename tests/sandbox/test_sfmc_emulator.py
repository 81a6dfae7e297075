"""The SFMC emulator over real HTTP: auth, SOAP, Journey/Automation REST, knobs, control API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from lxml import etree

from sandbox.server import ServerThread
from sandbox.sfmc import CLIENT_ID, CLIENT_SECRET, PROD_MID, STAGING_MID, SfmcEmulator

XSI = "http://www.w3.org/2001/XMLSchema-instance"
JOURNEYS = "/interaction/v1/interactions"


@pytest.fixture(scope="module")
def emulator() -> SfmcEmulator:
    return SfmcEmulator()


@pytest.fixture(scope="module")
def server(emulator: SfmcEmulator) -> Iterator[ServerThread]:
    with ServerThread(emulator.app) as running:
        yield running


@pytest.fixture
def emu(emulator: SfmcEmulator, server: ServerThread) -> SfmcEmulator:
    """A freshly seeded emulator for each test (one server for the module)."""
    emulator.reset()
    emulator.settings.page_size = 2500
    emulator.settings.run_duration_s = 60
    emulator.settings.rest_rate_limit_errorcode = 50100
    emulator.settings.rest_5xx_status = 500
    emulator.settings.max_concurrent_calls_per_mid = 20
    return emulator


@pytest.fixture
def http(server: ServerThread, emu: SfmcEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


def get_token(http: httpx.Client, mid: int = STAGING_MID) -> str:
    body = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    body |= {"client_secret": CLIENT_SECRET, "account_id": str(mid)}
    response = http.post("/v2/token", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def soap(http: httpx.Client, action: str, inner: str, token: str) -> httpx.Response:
    envelope = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="{XSI}">
  <soap:Header><fueloauth xmlns="http://exacttarget.com">{token}</fueloauth></soap:Header>
  <soap:Body>
    <{action}RequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">{inner}</{action}RequestMsg>
  </soap:Body>
</soap:Envelope>"""
    headers = {"SOAPAction": action, "Content-Type": "text/xml; charset=utf-8"}
    return http.post("/Service.asmx", content=envelope.encode(), headers=headers)


def xml(response: httpx.Response) -> etree._Element:
    return etree.fromstring(response.content)


def one(root: etree._Element, name: str) -> str:
    found = root.xpath(f"//*[local-name()='{name}']")
    assert isinstance(found, list)
    assert found, f"no {name} in the response"
    node = found[0]
    assert isinstance(node, etree._Element)
    return node.text or ""


def every(root: etree._Element, name: str) -> list[str]:
    found = root.xpath(f"//*[local-name()='{name}']")
    assert isinstance(found, list)
    return [n.text or "" for n in found if isinstance(n, etree._Element)]


def retrieve(filter_xml: str = "", props: tuple[str, ...] = ("ObjectID", "CustomerKey")) -> str:
    properties = "".join(f"<Properties>{p}</Properties>" for p in props)
    return (
        f"<RetrieveRequest><ObjectType>Automation</ObjectType>{properties}{filter_xml}"
        "</RetrieveRequest>"
    )


def key_filter(*values: str, prop: str = "CustomerKey", op: str = "equals") -> str:
    vals = "".join(f"<Value>{v}</Value>" for v in values)
    return (
        f'<Filter xsi:type="SimpleFilterPart"><Property>{prop}</Property>'
        f"<SimpleOperator>{op}</SimpleOperator>{vals}</Filter>"
    )


def perform(action: str, object_id: str) -> str:
    return (
        f"<Action>{action}</Action><Definitions>"
        f'<Definition xsi:type="Automation"><ObjectID>{object_id}</ObjectID></Definition>'
        "</Definitions>"
    )


def interaction(object_id: str) -> str:
    return (
        '<Interactions><Interaction xsi:type="Automation">'
        f"<ObjectID>{object_id}</ObjectID></Interaction></Interactions>"
    )


DAILY = """<Schedule>
  <Recurrence xsi:type="DailyRecurrence">
    <DailyRecurrencePatternType>Interval</DailyRecurrencePatternType><DayInterval>1</DayInterval>
  </Recurrence>
  <RecurrenceType>Daily</RecurrenceType><RecurrenceRangeType>EndOn</RecurrenceRangeType>
  <StartDateTime>2025-02-24T10:09:00</StartDateTime><EndDateTime>2079-06-06T08:00:00</EndDateTime>
  <TimeZone><ID>5</ID></TimeZone>
</Schedule>"""


# --- auth ---------------------------------------------------------------------------------


def test_token_response_and_count(
    http: httpx.Client, server: ServerThread, emu: SfmcEmulator
) -> None:
    body: dict[str, object] = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    body |= {"client_secret": CLIENT_SECRET, "account_id": PROD_MID}  # an int MID works too
    data = http.post("/v2/token", json=body).json()
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 1079
    assert data["rest_instance_url"] == data["soap_instance_url"] == server.url + "/"
    assert "journeys_execute" in data["scope"]
    assert emu.token_requests == 1
    assert emu.tokens_issued == 1
    assert emu.calls[-1].mid == PROD_MID


def test_token_refusals(http: httpx.Client, emu: SfmcEmulator) -> None:
    base = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    bad = http.post("/v2/token", json=base | {"client_secret": "nope"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    assert bad.json()["error_description"].startswith("Client authentication failed.")
    other_bu = http.post("/v2/token", json=base | {"client_secret": CLIENT_SECRET, "account_id": 9})
    assert other_bu.status_code == 401
    assert other_bu.json()["error"] == "unauthorized_client"
    grant = http.post("/v2/token", json=base | {"grant_type": "password"})
    assert grant.status_code == 400
    assert emu.token_requests == 3
    assert emu.tokens_issued == 0


def test_token_expires_after_twenty_minutes(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    emu.clock.advance(timedelta(minutes=19, seconds=59))
    assert http.get(JOURNEYS, headers=bearer(token)).status_code == 200
    emu.clock.advance(1)
    expired = http.get(JOURNEYS, headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["errorcode"] == 0
    assert expired.json()["message"] == "Not Authorized"
    fault = soap(http, "Retrieve", retrieve(), token)
    assert fault.status_code == 500
    assert one(xml(fault), "faultcode") == "q0:Security"
    assert one(xml(fault), "faultstring") == "Token Expired"


def test_expire_all_tokens_and_unknown_token(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    emu.expire_all_tokens()
    assert one(xml(soap(http, "Retrieve", retrieve(), token)), "faultstring") == "Token Expired"
    assert http.get(JOURNEYS, headers=bearer(token)).status_code == 401
    fresh = get_token(http)
    assert http.get(JOURNEYS, headers=bearer(fresh)).status_code == 200
    unknown = soap(http, "Retrieve", retrieve(), "not-a-token")
    assert unknown.status_code == 500
    assert one(xml(unknown), "faultstring") == "Login failed"
    assert http.get(JOURNEYS).status_code == 401


def test_expire_token_knob_expires_the_token_for_good(
    http: httpx.Client, emu: SfmcEmulator
) -> None:
    token = get_token(http)
    emu.knobs.set(expire_tokens_next=1)
    assert soap(http, "Retrieve", retrieve(), token).status_code == 500
    assert http.get(JOURNEYS, headers=bearer(token)).status_code == 401
    assert emu.knobs.settings.expire_tokens_next == 0
    assert http.get(JOURNEYS, headers=bearer(get_token(http))).status_code == 200


# --- SOAP Retrieve ------------------------------------------------------------------------


def test_retrieve_by_key_name_and_in(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    props = ("ObjectID", "CustomerKey", "Name", "Status")
    by_key = xml(soap(http, "Retrieve", retrieve(key_filter("weekly-newsletter"), props), token))
    assert one(by_key, "OverallStatus") == "OK"
    assert every(by_key, "CustomerKey") == ["weekly-newsletter"]
    assert one(by_key, "Status") == "4"
    assert one(by_key, "ObjectID") == emu.automation(STAGING_MID, "weekly-newsletter").object_id
    results = by_key.xpath("//*[local-name()='Results']")
    assert isinstance(results, list)
    assert isinstance(results[0], etree._Element)
    assert results[0].get(f"{{{XSI}}}type") == "Automation"

    by_name = xml(
        soap(http, "Retrieve", retrieve(key_filter("Hourly Lead Sync", prop="Name")), token)
    )
    assert every(by_name, "CustomerKey") == ["hourly-lead-sync"]

    both = key_filter("weekly-newsletter", "daily-welcome-send", "missing", op="IN")
    assert sorted(every(xml(soap(http, "Retrieve", retrieve(both), token)), "CustomerKey")) == [
        "daily-welcome-send",
        "weekly-newsletter",
    ]
    paused = xml(soap(http, "Retrieve", retrieve(key_filter("4", prop="Status")), token))
    assert "weekly-newsletter" in every(paused, "CustomerKey")

    empty = xml(soap(http, "Retrieve", retrieve(key_filter("no-such-key")), token))
    assert one(empty, "OverallStatus") == "OK"
    assert every(empty, "Results") == []


def test_retrieve_program_returns_object_id(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    inner = retrieve(key_filter("daily-welcome-send"), ("ObjectID",)).replace(
        "<ObjectType>Automation</ObjectType>", "<ObjectType>Program</ObjectType>"
    )
    root = xml(soap(http, "Retrieve", inner, token))
    assert one(root, "ObjectID") == emu.automation(STAGING_MID, "daily-welcome-send").object_id


def test_retrieve_pages_with_continue_request(http: httpx.Client, emu: SfmcEmulator) -> None:
    emu.settings.page_size = 2
    token = get_token(http)
    root = xml(soap(http, "Retrieve", retrieve(), token))
    keys, pages = every(root, "CustomerKey"), 1
    while one(root, "OverallStatus") == "MoreDataAvailable":
        assert len(every(root, "Results")) == 2
        request_id = one(root, "RequestID")
        inner = (
            "<RetrieveRequest><ObjectType>Automation</ObjectType>"
            f"<ContinueRequest>{request_id}</ContinueRequest></RetrieveRequest>"
        )
        root = xml(soap(http, "Retrieve", inner, token))
        keys += every(root, "CustomerKey")
        pages += 1
    assert one(root, "OverallStatus") == "OK"
    expected = [a["key"] for a in emu.state()["automations"] if a["mid"] == STAGING_MID]
    assert sorted(keys) == sorted(expected)
    assert pages == (len(expected) + 1) // 2


@pytest.mark.parametrize(
    ("inner", "starts"),
    [
        (retrieve().replace("Automation", "Automaton"), "Error: Unable to find a handler"),
        (retrieve(key_filter("x%", op="like")), "Error: The Automation object only supports"),
        (retrieve(props=("ObjectID", "Colour")), "Error: The Request Property(s) Colour"),
    ],
)
def test_retrieve_request_errors_are_http_200(http: httpx.Client, inner: str, starts: str) -> None:
    response = soap(http, "Retrieve", inner, get_token(http))
    assert response.status_code == 200
    assert one(xml(response), "OverallStatus").startswith(starts)


def test_a_token_only_sees_its_own_business_unit(http: httpx.Client, emu: SfmcEmulator) -> None:
    staging_id = emu.automation(STAGING_MID, "daily-welcome-send").object_id
    prod = get_token(http, PROD_MID)
    root = xml(soap(http, "Perform", perform("start", staging_id), prod))
    assert one(root, "StatusCode") == "Error"
    assert one(root, "ErrorCode") == "30003"
    assert emu.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert (
        http.get(f"/automation/v1/automations/{staging_id}", headers=bearer(prod)).status_code
        == 404
    )


# --- SOAP Perform / Schedule --------------------------------------------------------------


def test_perform_start_runs_once_then_returns(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    scheduled = emu.automation(STAGING_MID, "daily-welcome-send")
    root = xml(soap(http, "Perform", perform("start", scheduled.object_id), token))
    assert one(root, "OverallStatus") == "OK"
    assert one(root, "StatusMessage") == "Performed Activity"
    assert one(root, "CustomerKey") == "daily-welcome-send"
    running = emu.automation(STAGING_MID, "daily-welcome-send")
    assert running.status == 3
    assert running.last_run_time is not None
    ready = emu.automation(STAGING_MID, "monthly-data-cleanup")
    soap(http, "Perform", perform("start", ready.object_id), token)
    emu.clock.advance(61)
    assert emu.automation(STAGING_MID, "daily-welcome-send").status == 6
    assert emu.automation(STAGING_MID, "monthly-data-cleanup").status == 2


def test_perform_start_refuses_paused_and_running(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    for key, status in (("weekly-newsletter", 4), ("nightly-crm-export", 3)):
        object_id = emu.automation(STAGING_MID, key).object_id
        response = soap(http, "Perform", perform("start", object_id), token)
        assert response.status_code == 200
        root = xml(response)
        assert one(root, "StatusCode") == "Error"
        assert one(root, "ErrorCode") == "30002"
        assert one(root, "OverallStatus") == "Error"
        assert f"status is {status}" in one(root, "StatusMessage")
        assert emu.automation(STAGING_MID, key).status == status  # not unpaused


def test_perform_stop(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    daily = emu.automation(STAGING_MID, "daily-welcome-send").object_id
    assert one(xml(soap(http, "Perform", perform("stop", daily), token)), "OverallStatus") == "OK"
    stopped = emu.automation(STAGING_MID, "daily-welcome-send")
    assert (stopped.status, stopped.schedule_status) == (5, "none")
    running = emu.automation(STAGING_MID, "nightly-crm-export").object_id
    soap(http, "Perform", perform("stop", running), token)
    assert emu.automation(STAGING_MID, "nightly-crm-export").status == 5
    emu.clock.advance(120)  # a stopped run does not come back
    assert emu.automation(STAGING_MID, "nightly-crm-export").status == 5
    paused = emu.automation(STAGING_MID, "weekly-newsletter").object_id
    assert one(xml(soap(http, "Perform", perform("stop", paused), token)), "StatusCode") == "Error"
    assert emu.automation(STAGING_MID, "weekly-newsletter").status == 4


def test_a_held_answer_comes_after_the_call_has_acted(
    http: httpx.Client, emu: SfmcEmulator, server: ServerThread
) -> None:
    """hold_answers: the call acts and is recorded at once; its caller waits for the answer
    until release_answers (a call in flight when its caller is killed). Reads still answer."""
    token = get_token(http)
    object_id = emu.automation(STAGING_MID, "daily-welcome-send").object_id
    emu.hold_answers(soap_action="Schedule")
    pause = f"<Action>pause</Action><Schedule/>{interaction(object_id)}"
    with (
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as caller,
        ThreadPoolExecutor(1) as pool,
    ):
        answer = pool.submit(soap, caller, "Schedule", pause, token)
        deadline = time.monotonic() + 10
        while not any(c.soap_action == "Schedule" for c in list(emu.calls)):
            assert time.monotonic() < deadline, "the call never arrived"
            time.sleep(0.01)
        assert emu.automation(STAGING_MID, "daily-welcome-send").status == 4
        other = soap(http, "Retrieve", retrieve(key_filter("daily-welcome-send")), token)
        assert other.status_code == 200
        assert not answer.done()
        emu.release_answers()
        root = xml(answer.result(timeout=10))
    assert one(root, "OverallStatus") == "OK"


def test_schedule_pause_then_start(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    object_id = emu.automation(STAGING_MID, "daily-welcome-send").object_id
    pause = f"<Action>pause</Action><Schedule/>{interaction(object_id)}"
    root = xml(soap(http, "Schedule", pause, token))
    assert one(root, "OverallStatus") == "OK"
    assert one(root, "StatusMessage").startswith("Schedule Paused. To reactivate the schedule")
    assert emu.automation(STAGING_MID, "daily-welcome-send").status == 4
    again = xml(soap(http, "Schedule", pause, token))
    assert one(again, "StatusCode") == "Error"

    start = f"<Action>start</Action>{DAILY}{interaction(object_id)}"
    root = xml(soap(http, "Schedule", start, token))
    assert one(root, "StatusMessage") == "Program scheduled."
    assert one(root, "RecurrenceType") == "Daily"
    assert one(root, "StartDateTime") == "2025-02-24T10:09:00"
    after = http.get(f"/automation/v1/automations/{object_id}", headers=bearer(token)).json()
    assert (after["statusId"], after["status"]) == (6, "Scheduled")
    assert after["schedule"]["icalRecur"] == "FREQ=DAILY;UNTIL=20790606T080000;INTERVAL=1"
    assert after["schedule"]["scheduleStatus"] == "active"
    assert after["schedule"]["startDate"] == "2025-02-24T10:09:00"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("<Schedule/>", "Recurrence"),
        (DAILY.replace("<StartDateTime>2025-02-24T10:09:00</StartDateTime>", ""), "StartDateTime"),
        (
            DAILY.replace("DailyRecurrence", "MinutelyRecurrence")
            .replace("<DayInterval>1</DayInterval>", "<MinuteInterval>1</MinuteInterval>")
            .replace("<RecurrenceType>Daily", "<RecurrenceType>Minutely"),
            "5 minutes",
        ),
        (DAILY.replace("<TimeZone><ID>5</ID></TimeZone>", ""), "TimeZone"),
    ],
)
def test_schedule_start_needs_a_full_definition(
    http: httpx.Client, emu: SfmcEmulator, schedule: str, message: str
) -> None:
    token = get_token(http)
    object_id = emu.automation(STAGING_MID, "weekly-newsletter").object_id
    root = xml(
        soap(http, "Schedule", f"<Action>start</Action>{schedule}{interaction(object_id)}", token)
    )
    assert one(root, "StatusCode") == "Error"
    assert message in one(root, "StatusMessage")
    assert emu.automation(STAGING_MID, "weekly-newsletter").status == 4


def test_zeep_style_prefixed_envelope_is_understood(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    object_id = emu.automation(STAGING_MID, "monthly-data-cleanup").object_id
    envelope = f"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Header><ns1:fueloauth xmlns:ns1="http://exacttarget.com">{token}</ns1:fueloauth>
</soap-env:Header><soap-env:Body>
<ns0:PerformRequestMsg xmlns:ns0="http://exacttarget.com/wsdl/partnerAPI"
  xmlns:xsi="{XSI}"><ns0:Action>start</ns0:Action><ns0:Definitions>
<ns0:Definition xsi:type="ns0:Automation"><ns0:ObjectID>{object_id}</ns0:ObjectID>
</ns0:Definition></ns0:Definitions></ns0:PerformRequestMsg></soap-env:Body></soap-env:Envelope>"""
    headers = {"SOAPAction": '"Perform"', "Content-Type": "text/xml; charset=utf-8"}
    root = xml(http.post("/Service.asmx", content=envelope, headers=headers))
    assert one(root, "OverallStatus") == "OK"
    assert emu.automation(STAGING_MID, "monthly-data-cleanup").status == 3


def test_soap_faults_are_http_500(http: httpx.Client, emu: SfmcEmulator) -> None:
    token = get_token(http)
    unknown = soap(http, "Retrieve", retrieve(), token)
    unknown = http.post(
        "/Service.asmx", content=unknown.request.content, headers={"SOAPAction": "Frobnicate"}
    )
    assert unknown.status_code == 500
    assert one(xml(unknown), "faultcode") == "soap:Client"

    emu.knobs.set(rate_limit_next=1)
    limited = soap(http, "Retrieve", retrieve(), token)
    assert limited.status_code == 500
    assert one(xml(limited), "faultcode") == "soap:Server"
    assert one(xml(limited), "faultstring") == "Rate Limited"
    assert one(xml(limited), "Code") == "17"
    api = xml(limited).xpath("//*[local-name()='apifault']")
    assert isinstance(api, list)
    assert isinstance(api[0], etree._Element)
    assert etree.QName(api[0]).namespace == "urn:fault.partner.exacttarget.com"

    emu.knobs.set(fail_next_5xx=1)
    broken = soap(http, "Retrieve", retrieve(), token)
    assert (broken.status_code, one(xml(broken), "Code")) == (500, "2")

    emu.knobs.set(malformed_next=1)
    garbage = soap(http, "Retrieve", retrieve(), token)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(garbage.content)
    assert one(xml(soap(http, "Retrieve", retrieve(), token)), "OverallStatus") == "OK"
    assert [c.knob for c in emu.calls[-4:]] == ["rate_limit", "5xx", "malformed", None]


# --- Journey REST -------------------------------------------------------------------------


def test_journey_get_latest_version_by_key_and_id(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    latest = http.get(f"{JOURNEYS}/key:welcome-series", headers=auth).json()
    assert (latest["version"], latest["status"], latest["definitionType"]) == (
        3,
        "Published",
        "Multistep",
    )
    first = http.get(f"{JOURNEYS}/key:welcome-series", params={"versionNumber": 1}, headers=auth)
    assert first.json()["status"] == "Unpublished"
    assert first.json()["definitionId"] == latest["definitionId"]
    assert first.json()["id"] != latest["id"]
    by_id = http.get(f"{JOURNEYS}/{first.json()['id']}", headers=auth).json()
    assert by_id["version"] == 1
    missing = http.get(f"{JOURNEYS}/key:no-such-journey", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["errorcode"] == 30003


def test_journey_list_filters_and_pages(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    page = http.get(JOURNEYS, params={"$pageSize": 500}, headers=auth).json()
    assert page["pageSize"] == 50
    assert page["count"] == len(page["items"]) == 8
    welcome = http.get(JOURNEYS, params={"nameOrDescription": "welcome"}, headers=auth).json()
    assert sorted(i["key"] for i in welcome["items"]) == ["welcome-series", "welcome-series-es"]
    series_id = next(i["id"] for i in welcome["items"] if i["key"] == "welcome-series")
    versions = http.get(
        JOURNEYS, params={"id": series_id, "mostRecentVersionOnly": "false"}, headers=auth
    ).json()
    assert sorted(i["version"] for i in versions["items"]) == [1, 2, 3]
    paused = http.get(JOURNEYS, params={"status": "Paused"}, headers=auth).json()
    assert [i["key"] for i in paused["items"]] == ["winback-q4"]
    second = http.get(JOURNEYS, params={"$pageSize": 3, "$page": 3}, headers=auth).json()
    assert len(second["items"]) == 2
    assert http.get(JOURNEYS, params={"$page": "x"}, headers=auth).status_code == 400


def test_journey_pause_accepted_and_remembered(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    body = {"PausedDays": 3, "GuardrailAction": "Resume", "ExtendWaitEndDates": True}
    response = http.post(
        f"{JOURNEYS}/pause/key:cart-abandonment",
        params={"versionNumber": 1},
        json=body,
        headers=auth,
    )
    assert (response.status_code, response.json()) == (202, {"status": "Accepted"})
    version = emu.journey(STAGING_MID, "cart-abandonment")
    assert version.status == "Paused"
    assert version.pause is not None
    assert version.pause.ends_at - version.pause.paused_at == timedelta(days=3)
    assert (version.pause.guardrail_action, version.pause.extend_wait_end_dates) == ("resume", True)
    state = http.get("/_sandbox/state").json()
    entry = next(
        j for j in state["journeys"] if j["key"] == "cart-abandonment" and j["mid"] == STAGING_MID
    )
    assert entry["pause"]["ends_at"] == version.pause.ends_at.isoformat()
    assert "pause" not in str(http.get(f"{JOURNEYS}/key:cart-abandonment", headers=auth).json())


@pytest.mark.parametrize(
    ("path", "params", "body", "errorcode"),
    [
        ("pause/key:cart-abandonment", {}, None, 10005),
        ("pause/key:cart-abandonment", {"versionNumber": 1}, {"PausedDays": 15}, 10005),
        ("pause/key:cart-abandonment", {"versionNumber": 1}, {"GuardrailAction": "explode"}, 10005),
        ("pause/key:birthday-offer", {"versionNumber": 1}, None, 10000),
        ("pause/key:no-such-journey", {"versionNumber": 1}, None, 30003),
        ("resume/key:cart-abandonment", {"versionNumber": 1}, None, 10000),
        ("resume/key:cart-abandonment", {}, None, 10005),
    ],
)
def test_journey_pause_and_resume_errors_are_http_202(
    http: httpx.Client, path: str, params: dict[str, int], body: object, errorcode: int
) -> None:
    auth = bearer(get_token(http))
    response = http.post(f"{JOURNEYS}/{path}", params=params, json=body, headers=auth)
    assert response.status_code == 202
    assert response.json()["errorcode"] == errorcode
    assert response.json()["documentation"] == ""
    assert "status" not in response.json()


def test_journey_resume_and_all_versions(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    resumed = http.post(
        f"{JOURNEYS}/resume/key:winback-q4", params={"allVersions": 1}, headers=auth
    )
    assert resumed.json() == {"status": "Accepted"}
    assert emu.journey(STAGING_MID, "winback-q4").status == "Published"
    not_paused = http.post(
        f"{JOURNEYS}/resume/key:winback-q4", params={"versionNumber": 2}, headers=auth
    )
    assert not_paused.json() == {
        "message": "An interaction must be in paused status to be resumed.",
        "errorcode": 10000,
        "documentation": "",
    }
    definition = emu.journey(STAGING_MID, "welcome-series").definition_id
    paused = http.post(
        f"{JOURNEYS}/pause/{definition}", params={"allVersions": "true"}, headers=auth
    )
    assert paused.status_code == 202
    assert paused.json() == {"status": "Accepted"}
    statuses = [v.status for v in emu.journey_versions(STAGING_MID, "welcome-series")]
    assert statuses == ["Unpublished", "Paused", "Paused"]


@pytest.mark.parametrize(
    ("guardrail", "after"), [("resume", "Published"), ("stop", "Stopped"), ("none", "Paused")]
)
def test_guardrail_applies_when_the_pause_ends(
    http: httpx.Client, emu: SfmcEmulator, guardrail: str, after: str
) -> None:
    auth = bearer(get_token(http))
    body = {"PausedDays": 1, "GuardrailAction": guardrail}
    url = f"{JOURNEYS}/pause/key:cart-abandonment"
    assert (
        http.post(url, params={"versionNumber": 1}, json=body, headers=auth).json()["status"]
        == "Accepted"
    )
    emu.clock.advance(timedelta(hours=23, minutes=59))
    auth = bearer(get_token(http))  # the old token died after 20 minutes
    assert http.get(f"{JOURNEYS}/key:cart-abandonment", headers=auth).json()["status"] == "Paused"
    http.post("/_sandbox/clock/advance", json={"seconds": 61})
    assert http.get(f"{JOURNEYS}/key:cart-abandonment", headers=auth).json()["status"] == after


def test_journey_stop_by_id_only(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    journey_id = emu.journey(STAGING_MID, "welcome-series", 2).id
    stopped = http.post(f"{JOURNEYS}/stop/{journey_id}", params={"versionNumber": 2}, headers=auth)
    assert (stopped.status_code, stopped.content) == (200, b"")
    assert emu.journey(STAGING_MID, "welcome-series", 2).status == "Stopped"
    assert emu.journey(STAGING_MID, "welcome-series", 3).status == "Published"
    again = http.post(f"{JOURNEYS}/stop/{journey_id}", params={"versionNumber": 2}, headers=auth)
    assert again.status_code == 500
    assert again.json() == {
        "message": "Internal Server Error",
        "errorcode": 500,
        "documentation": "",
    }
    draft = emu.journey(STAGING_MID, "birthday-offer").id
    assert http.post(f"{JOURNEYS}/stop/{draft}", headers=auth).status_code == 500
    by_key = http.post(
        f"{JOURNEYS}/stop/key:welcome-series", params={"versionNumber": 3}, headers=auth
    )
    assert by_key.status_code == 404
    assert emu.journey(STAGING_MID, "welcome-series", 3).status == "Published"


def test_keys_are_matched_on_the_raw_path(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    got = http.get(f"{JOURNEYS}/key:promo%2Fblack-friday", headers=auth)
    assert got.json()["key"] == "promo/black-friday"
    paused = http.post(
        f"{JOURNEYS}/pause/key:promo%2Fblack-friday", params={"versionNumber": 1}, headers=auth
    )
    assert paused.json() == {"status": "Accepted"}
    assert emu.journey(STAGING_MID, "promo/black-friday").status == "Paused"
    assert http.get(f"{JOURNEYS}/key:promo/black-friday", headers=auth).status_code == 404
    emu.knobs.set(latency_ms=1)  # a reset would undo this
    climb = http.post(f"{JOURNEYS}/pause/key:..%2F..%2F..%2F_sandbox%2Freset", headers=auth)
    assert climb.json()["errorcode"] == 10005
    assert http.post(f"{JOURNEYS}/%2e%2e/%2e%2e/%2e%2e/_sandbox/reset").status_code == 404
    assert emu.knobs.settings.latency_ms == 1
    assert emu.journey(STAGING_MID, "promo/black-friday").status == "Paused"


def test_rest_throttling_and_server_errors(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    emu.knobs.set(rate_limit_next=1, retry_after_s=7)
    limited = http.get(JOURNEYS, headers=auth)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert (limited.json()["errorcode"], limited.json()["retryAfter"]) == (50100, 7)
    emu.settings.rest_rate_limit_errorcode = 50200
    emu.knobs.set(rate_limit_next=1)
    blocked = http.get(JOURNEYS, headers=auth)
    assert (blocked.status_code, blocked.json()["errorcode"]) == (429, 50200)
    assert "Retry-After" not in blocked.headers
    emu.knobs.set(fail_next_5xx=1)
    assert http.get(JOURNEYS, headers=auth).json() == {
        "message": "Internal Server Error",
        "errorcode": 500,
        "documentation": "",
    }
    emu.settings.rest_5xx_status = 503
    emu.knobs.set(fail_next_5xx=1)
    unavailable = http.get(JOURNEYS, headers=auth)
    assert (unavailable.status_code, unavailable.json()["errorcode"]) == (503, 50300)
    assert unavailable.headers["Retry-After"] == "7"
    emu.knobs.set(rate_limit_next=1, path_filter="/Service.asmx")
    assert http.get(JOURNEYS, headers=auth).status_code == 200
    assert emu.knobs.settings.rate_limit_next == 1


# --- Automation REST ----------------------------------------------------------------------


def test_automation_rest_reads(http: httpx.Client, emu: SfmcEmulator) -> None:
    auth = bearer(get_token(http))
    paused = emu.automation(STAGING_MID, "weekly-newsletter")
    body = http.get(f"/automation/v1/automations/{paused.object_id}", headers=auth).json()
    assert (body["statusId"], body["status"], body["type"]) == (4, "PausedSchedule", "scheduled")
    assert body["schedule"]["scheduleStatus"] == "paused"
    assert body["schedule"]["icalRecur"].startswith("FREQ=WEEKLY;")
    assert body["steps"] == []
    trigger = emu.automation(STAGING_MID, "abandoned-cart-import").object_id
    triggered = http.get(f"/automation/v1/automations/{trigger}", headers=auth).json()
    assert (triggered["status"], triggered["type"], triggered["schedule"]) == (
        "AwaitingTrigger",
        "triggered",
        None,
    )
    listing = http.get("/automation/v1/automations", params={"$pageSize": 4}, headers=auth).json()
    assert (listing["count"], len(listing["items"])) == (10, 4)
    assert http.get("/automation/v1/automations/nope", headers=auth).status_code == 404


# --- control API and concurrency ---------------------------------------------------------


def test_control_api(http: httpx.Client, emu: SfmcEmulator) -> None:
    assert http.post("/_sandbox/knobs", json={"rate_limit_next": -1}).status_code == 400
    assert http.post("/_sandbox/knobs", json={"bogus": 1}).status_code == 400
    knobs = http.post("/_sandbox/knobs", json={"latency_ms": 5}).json()
    assert knobs["latency_ms"] == 5
    assert http.get("/_sandbox/knobs").json()["latency_ms"] == 5
    assert http.post("/_sandbox/settings", json={"page_size": 2}).json()["page_size"] == 2
    assert emu.settings.page_size == 2
    token = get_token(http)
    soap(http, "Retrieve", retrieve(), token)
    calls = http.get("/_sandbox/calls").json()["calls"]
    assert [(c["path"], c["soap_action"], c["mid"]) for c in calls] == [
        ("/v2/token", None, STAGING_MID),
        ("/Service.asmx", "Retrieve", STAGING_MID),
    ]
    before = http.get("/_sandbox/clock").json()["now"]
    after = http.post("/_sandbox/clock/advance", json={"seconds": 3600}).json()["now"]
    assert after > before
    state = http.get("/_sandbox/state").json()
    assert state["token_requests"] == 1
    assert {a["key"] for a in state["automations"]} >= {"weekly-newsletter", "hourly-lead-sync"}
    http.post("/_sandbox/tokens/expire")
    assert http.get(JOURNEYS, headers=bearer(token)).status_code == 401
    assert http.post("/_sandbox/reset").json()["reset"] is True
    assert http.get("/_sandbox/state").json()["token_requests"] == 0
    assert http.get("/_sandbox/knobs").json()["latency_ms"] == 0
    assert http.get("/_sandbox/calls").json()["calls"] == []


def test_python_api_add_and_read(emu: SfmcEmulator) -> None:
    emu.add_account("other", "secret", [42])
    added = emu.add_automation(42, key="solo", name="Solo", status=2)
    assert emu.automation(42, "solo").object_id == added.object_id
    versions = emu.add_journey(42, key="j", name="J", versions=("Published", "Paused"))
    assert [v.version for v in versions] == [1, 2]
    assert emu.journey(42, "j").pause is not None
    with pytest.raises(KeyError):
        emu.automation(42, "missing")
    with pytest.raises(ValueError, match="unknown journey statuses"):
        emu.add_journey(42, key="k", name="K", versions=("Live",))


async def test_concurrent_requests_are_served_in_parallel(
    server: ServerThread, emu: SfmcEmulator
) -> None:
    emu.knobs.set(latency_ms=300)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.get("/interaction/v1/interactions") for _ in range(10))
        )
        elapsed = time.monotonic() - started
    assert all(r.status_code == 401 for r in responses)
    assert elapsed < 1.5


async def test_calls_over_the_concurrency_limit_of_a_business_unit_are_throttled(
    server: ServerThread, emu: SfmcEmulator
) -> None:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
        staging, prod = get_token(http, STAGING_MID), get_token(http, PROD_MID)
    emu.clear_calls()
    emu.knobs.set(latency_ms=400)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=10) as client:
        responses = await asyncio.gather(
            *(client.get(JOURNEYS, headers=bearer(staging)) for _ in range(25)),
            *(client.get(JOURNEYS, headers=bearer(prod)) for _ in range(20)),
        )
    staging_codes = [r.status_code for r in responses[:25]]
    assert sorted(staging_codes) == [200] * 20 + [429] * 5
    assert {r.json()["errorcode"] for r in responses[:25] if r.status_code == 429} == {50100}
    assert all(r.status_code == 200 for r in responses[25:])  # another business unit
    assert emu.peak_in_flight[STAGING_MID] == 20
    assert emu.peak_in_flight[PROD_MID] == 20
    assert [c.knob for c in emu.calls].count("concurrency") == 5
    assert emu.in_flight[STAGING_MID] == 0


def test_soap_calls_count_against_their_business_unit(
    http: httpx.Client, emu: SfmcEmulator
) -> None:
    token = get_token(http, PROD_MID)
    emu.settings.max_concurrent_calls_per_mid = 1
    emu.in_flight[PROD_MID] += 1  # one call of this business unit already in flight
    try:
        props = ("CustomerKey", "Status")
        answer = soap(http, "Retrieve", retrieve(key_filter("weekly-newsletter"), props), token)
    finally:
        emu.in_flight[PROD_MID] -= 1
    assert answer.status_code == 500
    assert b"Rate Limited" in answer.content
    assert emu.calls[-1].knob == "concurrency"
    assert emu.calls[-1].mid == PROD_MID
