"""Block Kit builders, ids and metadata: Slack's limits hold and user text is escaped."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.domain.approvals import ApprovalPolicy, ApprovalView, Decision, Vote
from bot.domain.errors import BadInput
from bot.domain.help import help_text
from bot.domain.models import (
    NormalState,
    PauseOptions,
    Schedule,
    Target,
    TargetKind,
    TargetState,
    TargetSummary,
    ThenAction,
    Verb,
    VersionState,
)
from bot.domain.requests import (
    AuditEvent,
    ExecutionPhase,
    OperationRequest,
    RequestSpec,
    RequestStatus,
    Via,
)
from bot.slack import ids
from bot.slack.blocks import (
    Message,
    approval_needed_reply,
    decision_reply,
    error_message,
    escape,
    executing_reply,
    help_message,
    history_message,
    info_reply,
    list_message,
    mention,
    picker_message,
    progress_reply,
    request_card,
    result_reply,
    slack_date,
    status_message,
    step_message,
    truncate,
    vote_reply,
)
from bot.slack.ids import ApprovalAction, CardAction, CardBlock, PickerAction
from bot.slack.metadata import ButtonValue, ModalContext, TargetChoice

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVIL = "<script>&alert('x')</script> <!channel>"
HUGE = "x<&>" * 2500  # 10 kB of characters that need escaping

# -- a validator for every builder ---------------------------------------------------------

_MARKUP_RE = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+|!date\^\d+\^[^|>]+\|[^>]+)>")
_ENTITY_RE = re.compile(r"&(amp|lt|gt);")


def check_mrkdwn(text: str) -> None:
    """Only our own markup may use ``<``/``>``; every ``&`` is an entity."""
    stripped = _MARKUP_RE.sub("", text)
    assert "<" not in stripped, text[:300]
    assert ">" not in stripped, text[:300]
    assert "&" not in _ENTITY_RE.sub("", stripped), text[:300]


def _walk(node: Any, parent_type: str | None = None) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, parent_type)
        return
    if not isinstance(node, dict):
        return
    node_type = node.get("type")
    if node_type == "mrkdwn":
        assert len(node["text"]) <= 3000
        check_mrkdwn(node["text"])
    if node_type == "header":
        assert len(node["text"]["text"]) <= 150
    if node_type == "section":
        assert len(node.get("fields", [])) <= 10
        for field in node.get("fields", []):
            assert len(field["text"]) <= 2000
    if node_type == "context":
        assert 1 <= len(node["elements"]) <= 10
    if node_type == "actions":
        assert 1 <= len(node["elements"]) <= 25
    if node_type == "button":
        assert len(node["text"]["text"]) <= 75
        assert len(node.get("value", "")) <= 2000
        assert len(node["action_id"]) <= 255
    for key, value in node.items():
        if key != "type":
            _walk(value, node_type)


def check_blocks(blocks: list[dict[str, Any]], *, limit: int) -> None:
    assert 1 <= len(blocks) <= limit
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    for raw in blocks:
        parsed = Block.parse(raw)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict()["type"] == raw["type"]
    _walk(blocks)
    json.dumps(blocks)


def check_message(message: Message) -> Message:
    assert isinstance(message, Message)
    assert message.text.strip()
    assert len(message.text) <= 3000
    check_mrkdwn(message.text)
    check_blocks(message.blocks, limit=50)
    return message


def all_text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# -- fixtures -------------------------------------------------------------------------------


INTERRUPTED_BEFORE = (
    "The bot stopped while sending this; the read-back shows active, so it was probably not "
    "carried out. It was not sent again: check with status and ask again if it is still needed."
)


def make_request(
    verb: Verb = Verb.PAUSE,
    status: RequestStatus = RequestStatus.SUCCEEDED,
    *,
    kind: TargetKind = TargetKind.JOURNEY,
    key: str = "welcome",
    name: str = "Welcome Series",
    pause: PauseOptions | None = None,
    **fields: Any,
) -> OperationRequest:
    if verb is Verb.PAUSE and pause is None:
        pause = PauseOptions(duration=timedelta(days=3))
    spec = RequestSpec(
        verb=verb,
        environment="staging",
        kind=kind,
        key=key,
        name=name,
        target_id="id-1",
        version=3 if kind is TargetKind.JOURNEY else None,
        pause=pause,
    )
    values: dict[str, Any] = {
        "id": "req-1",
        "spec": spec,
        "status": status,
        "requested_by": "U0ALICE",
        "via": Via.COMMAND,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return OperationRequest(**values)


def make_state(i: int = 0, *, name: str = "Welcome Series") -> TargetState:
    return TargetState(
        target=Target(
            environment="staging",
            kind=TargetKind.JOURNEY,
            key=f"welcome-{i}",
            name=name,
            id=f"j{i}",
            version=2,
        ),
        state=NormalState.PAUSED,
        raw_status="Paused",
        schedule=Schedule(ical_recur="FREQ=DAILY"),
        next_run=NOW + timedelta(hours=1),
        last_run=NOW - timedelta(hours=1),
        versions=(
            VersionState(version=1, id="a", status="Stopped", state=NormalState.STOPPED),
            VersionState(version=2, id="b", status="Paused", state=NormalState.PAUSED),
        ),
        population=42,
        execution_status="Complete",
    )


def buttons(message: Message) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            if node.get("type") == "button":
                found.append(node)
            for value in node.values():
                visit(value)

    visit(message.blocks)
    return found


# -- ids ------------------------------------------------------------------------------------


def test_ids_are_unique_across_all_enums() -> None:
    values = [member.value for enum in ids.ALL_ID_ENUMS for member in enum]
    assert len(values) == len(set(values))
    assert all(0 < len(v) <= 255 for v in values)
    assert ids.SLASH_COMMAND == "/automation"


def test_named_ids_exist() -> None:
    assert ids.CardAction.RESUME_NOW.value == "card.resume_now"
    assert ids.ModalCallback.PAUSE.value == "pause_modal"
    for member in (
        ids.CardAction.OPEN_PAUSE_MODAL,
        ids.HomeAction.RESUME_NOW,
        ids.HomeAction.OPEN_PAUSE_MODAL,
        ids.PickerAction.CHOOSE,
        ids.ApprovalAction.APPROVE,
        ids.ApprovalAction.DENY,
        ids.ApprovalAction.REQUEST_AGAIN,
        ids.ReminderAction.RESUME_NOW,
    ):
        assert member.value


def test_modal_blocks_and_actions_pair_up() -> None:
    assert {b.name for b in ids.ModalBlock} == {a.name for a in ids.ModalAction}


# -- metadata -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        ButtonValue(request_id="req-1"),
        ButtonValue(environment="prod", kind=TargetKind.JOURNEY, key="welcome", version=3),
        ButtonValue(
            kind=TargetKind.SCRIP, key="digest", command='pause digest for 3d --reason "x"'
        ),
    ],
)
def test_button_value_round_trips(value: ButtonValue) -> None:
    text = value.dump()
    assert len(text) <= 2000
    assert ButtonValue.parse(text) == value


def test_modal_context_round_trips_and_shortens_names() -> None:
    context = ModalContext(
        user_id="U1",
        channel_id="C1",
        thread_ts="1700000000.000100",
        environment="prod",
        kind=TargetKind.JOURNEY,
        key="welcome",
        name="N" * 5000,
        version=4,
    )
    text = context.dump()
    assert len(text) <= 3000
    parsed = ModalContext.parse(text)
    assert parsed == context
    assert parsed.name is not None
    assert len(parsed.name) == 200


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "not json",
        "[]",
        "{}",
        '{"request_id": ""}',
        '{"kind": "journey"}',
        '{"kind": "planet", "key": "x"}',
        '{"request_id": "r", "extra": 1}',
        '{"kind": "journey", "key": "x", "version": 0}',
        "x" * 2001,
    ],
)
def test_button_value_rejects_garbage(garbage: str | None) -> None:
    with pytest.raises(BadInput):
        ButtonValue.parse(garbage)


@pytest.mark.parametrize(
    "garbage",
    [None, "", "{", '{"channel_id": "C1"}', '{"user_id": "U1", "kind": "x"}', "y" * 3001],
)
def test_modal_context_rejects_garbage(garbage: str | None) -> None:
    with pytest.raises(BadInput):
        ModalContext.parse(garbage)


def test_target_choice_round_trips_keys_with_pipes() -> None:
    choice = TargetChoice(environment="prod", kind=TargetKind.AUTOMATION, key="a|b")
    assert choice.dump() == "prod|automation|a|b"
    assert TargetChoice.parse(choice.dump()) == choice


@pytest.mark.parametrize(
    "garbage", [None, "", "prod", "prod|journey", "prod|planet|x", "|journey|x", "p|journey|"]
)
def test_target_choice_rejects_garbage(garbage: str | None) -> None:
    with pytest.raises(BadInput):
        TargetChoice.parse(garbage)


def test_button_value_refuses_to_dump_past_the_limit() -> None:
    value = ButtonValue(kind=TargetKind.JOURNEY, key="k" * 255, command='"' * 1500)
    with pytest.raises(ValueError, match="over 2000"):
        value.dump()


# -- text helpers ---------------------------------------------------------------------------


def test_escape_and_truncate() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 3) == "abc"
    # never cut inside an entity
    assert truncate(escape("ab&cd"), 5) == "ab…"
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("scheduler") == "scheduler"
    assert mention("<@U1>") == "&lt;@U1&gt;"
    assert slack_date(NOW) == ("<!date^1780315200^{date_short_pretty} {time}|2026-06-01 12:00 UTC>")


# -- request cards --------------------------------------------------------------------------

_STATUS_LINES = {
    RequestStatus.RECEIVED: "Received",
    RequestStatus.EXECUTING: ":hourglass_flowing_sand: Working…",
    RequestStatus.SUCCEEDED: ":white_check_mark: Done — verified *paused*",
    RequestStatus.UNVERIFIED: ":warning: Sent, but the read-back shows *paused*",
    RequestStatus.FAILED: ":x: Failed: SFMC said no",
    RequestStatus.AWAITING_APPROVAL: "Waiting for approval",
    RequestStatus.APPROVED: "Approved",
    RequestStatus.DENIED: "Denied",
    RequestStatus.EXPIRED: "Expired",
}


@pytest.mark.parametrize("status", list(RequestStatus))
@pytest.mark.parametrize("verb", [Verb.PAUSE, Verb.RESUME, Verb.STOP, Verb.RUN])
def test_every_card_is_valid(verb: Verb, status: RequestStatus) -> None:
    request = make_request(
        verb,
        status,
        state_before="active",
        state_after="paused",
        # an unverified request has an error only when the bot stopped while sending it
        error=None if status is RequestStatus.UNVERIFIED else "SFMC said no",
        reason="freeze",
    )
    message = check_message(request_card(request, now=NOW))
    status_block = next(b for b in message.blocks if b.get("block_id") == "card.status")
    assert _STATUS_LINES[status] in status_block["elements"][0]["text"]
    assert _STATUS_LINES[status] in message.text


@pytest.mark.parametrize(
    ("verb", "head"),
    [
        (Verb.PAUSE, ":double_vertical_bar: Pause"),
        (Verb.RESUME, ":arrow_forward: Resume"),
        (Verb.STOP, ":black_square_for_stop: Stop"),
        (Verb.RUN, ":rocket: Run once"),
    ],
)
def test_card_header_names_the_verb(verb: Verb, head: str) -> None:
    message = request_card(make_request(verb), now=NOW)
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"].startswith(head)


def test_card_fields_for_a_timed_pause() -> None:
    request = make_request(
        pause=PauseOptions(duration=timedelta(days=3), then=ThenAction.STOP),
        state_before="active",
        state_after="paused",
        reason="holiday freeze",
        pause_ends_at=NOW + timedelta(days=2, hours=4),
    )
    text = all_text(request_card(request, now=NOW).blocks)
    assert "staging/journey:welcome v3" in text
    assert "Welcome Series" in text
    assert "pause staging/journey:welcome v3 for 3d then stop" in text
    assert "<@U0ALICE>" in text
    assert "holiday freeze" in text
    assert "active → paused" in text
    assert "<!date^" in text
    assert "(2d 4h left)" in text
    assert "stopped for good" in text


def test_card_before_execution_shows_the_length() -> None:
    request = make_request(status=RequestStatus.AWAITING_APPROVAL)
    text = all_text(request_card(request, now=NOW).blocks)
    assert "3d, counted from when it is done" in text


def test_succeeded_pause_offers_resume_now_with_confirm() -> None:
    message = request_card(make_request(), now=NOW)
    (button,) = buttons(message)
    assert button["action_id"] == CardAction.RESUME_NOW
    assert ButtonValue.parse(button["value"]) == ButtonValue(request_id="req-1")
    assert button["confirm"]["confirm"]["text"] == "Resume"


@pytest.mark.parametrize(
    ("verb", "status"),
    [
        (Verb.RESUME, RequestStatus.SUCCEEDED),
        (Verb.STOP, RequestStatus.SUCCEEDED),
        (Verb.RUN, RequestStatus.SUCCEEDED),
        (Verb.PAUSE, RequestStatus.FAILED),
        (Verb.RESUME, RequestStatus.FAILED),
    ],
)
def test_done_or_failed_requests_offer_pause(verb: Verb, status: RequestStatus) -> None:
    (button,) = buttons(request_card(make_request(verb, status), now=NOW))
    assert button["action_id"] == CardAction.OPEN_PAUSE_MODAL
    value = ButtonValue.parse(button["value"])
    assert (value.request_id, value.environment, value.kind, value.key, value.version) == (
        "req-1",
        "staging",
        TargetKind.JOURNEY,
        "welcome",
        3,
    )


@pytest.mark.parametrize(
    "status",
    [
        RequestStatus.RECEIVED,
        RequestStatus.EXECUTING,
        RequestStatus.AWAITING_APPROVAL,
        RequestStatus.UNVERIFIED,
        RequestStatus.DENIED,
    ],
)
def test_pending_cards_have_no_buttons(status: RequestStatus) -> None:
    assert buttons(request_card(make_request(Verb.PAUSE, status), now=NOW)) == []


def test_card_survives_huge_and_hostile_input() -> None:
    request = make_request(
        Verb.PAUSE,
        RequestStatus.FAILED,
        key="k<&>" * 60,
        name=EVIL * 50,
        reason=HUGE,
        error=HUGE,
        state_before=HUGE,
        state_after=HUGE,
        requested_by="<!channel>",
    )
    message = check_message(request_card(request, now=NOW))  # escaped, within limits
    assert "&lt;!channel&gt;" in all_text(message.blocks)


def test_card_escapes_names_and_reasons() -> None:
    request = make_request(name=EVIL, reason=EVIL, state_after="paused")
    message = check_message(request_card(request, now=NOW))
    fields = message.blocks[1]["fields"]
    assert any("&lt;script&gt;&amp;alert" in f["text"] for f in fields)
    # our own mention stays markup
    assert any("<@U0ALICE>" in f["text"] for f in fields)


# -- approval on the card -------------------------------------------------------------------

POLICY = ApprovalPolicy(
    environment="prod",
    approvers=frozenset({"S0APPROVERS", "U0ADMIN"}),
    required=2,
    expires_after=timedelta(hours=4),
)
EXPIRES = NOW + timedelta(hours=3, minutes=30)


def vote(voter: str, decision: Decision = Decision.APPROVE, minutes: int = 5) -> Vote:
    return Vote(voter=voter, decision=decision, via=Via.BUTTON, at=NOW - timedelta(minutes=minutes))


def view(*votes: Vote, policy: ApprovalPolicy = POLICY) -> ApprovalView:
    return ApprovalView.of(policy, votes, EXPIRES)


def approval_card(status: RequestStatus, *votes: Vote, **kw: Any) -> Message:
    request = make_request(status=status, expires_at=EXPIRES, state_after="paused")
    return check_message(request_card(request, now=NOW, approval=view(*votes, **kw)))


def block(message: Message, block_id: str) -> dict[str, Any] | None:
    return next((b for b in message.blocks if b.get("block_id") == block_id), None)


def test_pending_card_says_how_many_from_whom_until_when() -> None:
    message = approval_card(RequestStatus.AWAITING_APPROVAL, vote("U0BOB"))
    approval = block(message, CardBlock.APPROVAL)
    assert approval is not None
    text = approval["text"]["text"]
    assert "*Approval needed:* 1 of 2 from <!subteam^S0APPROVERS> or <@U0ADMIN>" in text
    assert f"until {slack_date(EXPIRES)} (3h 30m left)" in text
    assert "<@U0ALICE> asked for it and cannot approve it" in text
    assert ":white_check_mark: to approve or :x: to deny" in text
    votes = block(message, CardBlock.VOTES)
    assert votes is not None
    assert votes["elements"][0]["text"].startswith("<@U0BOB> approved <!date^")
    assert message.text.endswith("Waiting for approval (1 of 2)")
    approve, deny = buttons(message)
    assert (approve["action_id"], approve["style"]) == (ApprovalAction.APPROVE, "primary")
    assert (deny["action_id"], deny["style"]) == (ApprovalAction.DENY, "danger")
    for b in (approve, deny):
        assert ButtonValue.parse(b["value"]) == ButtonValue(request_id="req-1")


def test_pending_card_with_self_approval_and_custom_reactions() -> None:
    policy = POLICY.model_copy(
        update={"allow_self_approval": True, "approve_reaction": "+1", "deny_reaction": "-1"}
    )
    text = all_text(approval_card(RequestStatus.AWAITING_APPROVAL, policy=policy).blocks)
    assert "cannot approve" not in text
    assert ":+1: to approve or :-1: to deny" in text
    assert "0 of 2" in text


@pytest.mark.parametrize(
    ("eligible", "could"),
    [((), "nobody could approve it"), (("U0ADMIN",), "only <@U0ADMIN> could approve it")],
)
def test_pending_card_says_at_once_when_too_few_could_approve(
    eligible: tuple[str, ...], could: str
) -> None:
    request = make_request(status=RequestStatus.AWAITING_APPROVAL, expires_at=EXPIRES)
    approval = ApprovalView.of(POLICY, (), EXPIRES, eligible=eligible)
    message = check_message(request_card(request, now=NOW, approval=approval))
    short = block(message, CardBlock.APPROVERS_SHORT)
    assert short is not None
    text = short["text"]["text"]
    assert "cannot be approved as configured:* it needs 2 approval(s) from someone other " in text
    assert f"than <@U0ALICE> and {could}" in text
    assert "change `environments.prod.approval`" in text
    assert "<@U0ALICE> can still withdraw it with *Deny*" in text
    assert message.text.endswith("(0 of 2): cannot be approved as configured")
    assert [b["action_id"] for b in buttons(message)][:2] == [
        ApprovalAction.APPROVE,
        ApprovalAction.DENY,
    ]
    enough = ApprovalView.of(POLICY, (), EXPIRES, eligible=("U0ADMIN", "U0BOB"))
    fine = check_message(request_card(request, now=NOW, approval=enough))
    assert block(fine, CardBlock.APPROVERS_SHORT) is None


@pytest.mark.parametrize(
    "status",
    [
        RequestStatus.APPROVED,
        RequestStatus.EXECUTING,
        RequestStatus.SUCCEEDED,
        RequestStatus.UNVERIFIED,
        RequestStatus.FAILED,
    ],
)
def test_decided_card_keeps_who_approved_and_when(status: RequestStatus) -> None:
    message = approval_card(status, vote("U0BOB", minutes=9), vote("U0CAROL", minutes=2))
    approval = block(message, CardBlock.APPROVAL)
    assert approval is not None
    text = approval["text"]["text"]
    assert text.startswith(":ballot_box_with_check: Approved by <@U0BOB> at <!date^")
    assert "and <@U0CAROL> at <!date^" in text
    ids_ = [b["action_id"] for b in buttons(message)]
    assert ApprovalAction.APPROVE not in ids_
    assert ApprovalAction.DENY not in ids_


def test_denied_card_says_who_and_offers_request_again() -> None:
    message = approval_card(
        RequestStatus.DENIED, vote("U0BOB"), vote("U0ADMIN", Decision.DENY, minutes=1)
    )
    approval = block(message, CardBlock.APPROVAL)
    assert approval is not None
    assert approval["text"]["text"].startswith(":no_entry_sign: Denied by <@U0ADMIN> at")
    assert "Approved by <@U0BOB>" in approval["text"]["text"]
    (again,) = buttons(message)
    assert again["action_id"] == ApprovalAction.REQUEST_AGAIN
    assert ButtonValue.parse(again["value"]).request_id == "req-1"


def test_expired_card_offers_request_again() -> None:
    message = approval_card(RequestStatus.EXPIRED, vote("U0BOB"))
    text = all_text(message.blocks)
    assert f"Expired at {slack_date(EXPIRES)} with 1 of 2 approval(s)" in text
    assert [b["action_id"] for b in buttons(message)] == [ApprovalAction.REQUEST_AGAIN]


def test_approval_card_stays_within_limits_for_many_votes_and_approvers() -> None:
    approvers = frozenset({f"U{i:08d}" for i in range(60)} | {f"S{i:08d}" for i in range(60)})
    policy = POLICY.model_copy(update={"approvers": approvers, "required": 50})
    votes = [vote(f"U{i:08d}", minutes=i % 50) for i in range(45)]
    pending = approval_card(RequestStatus.AWAITING_APPROVAL, *votes, policy=policy)
    assert "…and 33 more" in all_text(pending.blocks)
    assert "110 more" in all_text(pending.blocks)
    done = approval_card(RequestStatus.SUCCEEDED, *votes, policy=policy)
    assert "33 more" in all_text(done.blocks)


def test_approval_card_escapes_what_is_not_ours() -> None:
    policy = POLICY.model_copy(update={"approvers": frozenset({"S<evil>", "<!channel>"})})
    request = make_request(
        status=RequestStatus.AWAITING_APPROVAL, requested_by="<!here>", expires_at=EXPIRES
    )
    message = check_message(request_card(request, now=NOW, approval=view(policy=policy)))
    text = all_text(message.blocks)
    assert "&lt;!channel&gt;" in text
    assert "&lt;!here&gt;" in text


def test_card_without_approval_view_is_unchanged_for_production_states() -> None:
    request = make_request(status=RequestStatus.AWAITING_APPROVAL)
    message = request_card(request, now=NOW)
    assert block(message, CardBlock.APPROVAL) is None
    assert buttons(message) == []


# -- thread replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "done", "expected"),
    [
        ("approve", 1, ":white_check_mark: <@U0BOB> approved (1 of 2)"),
        ("approve", 3, ":white_check_mark: <@U0BOB> approved (2 of 2 already)"),
        ("deny", 0, ":x: <@U0BOB> denied"),
        ("withdraw-approve", 0, "<@U0BOB> withdrew their approval (0 of 2)"),
        ("withdraw-deny", 0, "<@U0BOB> withdrew their denial"),
        ("<odd>", 0, "<@U0BOB> voted &lt;odd&gt;"),
    ],
)
def test_vote_reply(decision: str, done: int, expected: str) -> None:
    message = check_message(vote_reply("U0BOB", decision, done=done, total=2))
    assert expected in message.text
    if decision == "deny":
        assert message.text.endswith("denied")


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ("approved", "Approved (last approval by <@U0BOB>): carrying it out now."),
        ("denied", "Denied by <@U0BOB>: nothing was changed."),
        ("expired", "Expired before enough approvals: nothing was changed."),
        (None, "Something &lt;else&gt;"),
    ],
)
def test_decision_reply(decision: str | None, expected: str) -> None:
    message = check_message(decision_reply("U0BOB", decision, "Something <else>"))
    assert expected in message.text


def test_approval_needed_reply() -> None:
    request = make_request(status=RequestStatus.AWAITING_APPROVAL, expires_at=EXPIRES)
    message = check_message(approval_needed_reply(request, required=2, approval=view()))
    assert "needs 2 approval(s) from <!subteam^S0APPROVERS> or <@U0ADMIN>" in message.text
    assert f"until {slack_date(EXPIRES)}" in message.text
    bare = check_message(approval_needed_reply(request, required=1))
    assert "needs 1 approval(s) until" in bare.text


def test_info_reply_escapes_the_text_and_keeps_the_mention() -> None:
    message = check_message(info_reply("U0DAVE", "reacted <!channel> & left"))
    assert message.text == "<@U0DAVE> reacted &lt;!channel&gt; &amp; left"
    assert check_message(info_reply(None, "restarted")).text == "restarted"


def test_executing_reply() -> None:
    message = check_message(executing_reply(make_request(status=RequestStatus.EXECUTING)))
    assert message.text == "Pausing staging/journey:welcome v3…"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RequestStatus.SUCCEEDED, "Verified: it is now *paused*"),
        (RequestStatus.UNVERIFIED, "was sent, but the read-back shows *active*"),
        (RequestStatus.FAILED, ":x: Could not pause"),
    ],
)
def test_result_reply(status: RequestStatus, expected: str) -> None:
    state_after = "active" if status is RequestStatus.UNVERIFIED else "paused"
    error = (
        None if status is RequestStatus.UNVERIFIED else "Journey is not active (SFMC: code 30002)"
    )
    request = make_request(status=status, state_after=state_after, error=error)
    message = check_message(result_reply(request))
    assert expected in message.text
    if status is RequestStatus.FAILED:
        assert "Journey is not active (SFMC: code 30002)" in message.text


@pytest.mark.parametrize(
    "fields",
    [
        {"execution_phase": ExecutionPhase.INTERRUPTED},  # recorded as a phase, worded here
        {"error": INTERRUPTED_BEFORE},  # the sentence an earlier version stored
    ],
    ids=["phase", "stored-sentence"],
)
def test_a_request_interrupted_while_sending_says_what_the_read_back_shows(
    fields: dict[str, Any],
) -> None:
    """Not "Sent, but ...": nothing says it was sent; the card and the thread say why."""
    request = make_request(status=RequestStatus.UNVERIFIED, state_after="active", **fields)
    reply = check_message(result_reply(request)).text
    card = check_message(request_card(request, now=NOW)).text
    for text in (reply, card):
        assert "The bot stopped while sending this; the read-back shows" in text
        assert "so it was probably not carried out. It was not sent again" in text
        assert "Sent, but" not in text
        assert "was sent" not in text


def test_progress_reply() -> None:
    assert check_message(progress_reply(3, 5, "pausing")).text == "pausing 3 of 5 versions…"
    assert progress_reply(9, 5, "pausing").text == "pausing 5 of 5 versions…"


def test_step_message_is_cut_to_fit() -> None:
    message = step_message("a" * 10_000)
    assert len(message.text) <= 3000
    check_blocks(message.blocks, limit=50)


# -- ephemeral answers ----------------------------------------------------------------------


def test_status_message() -> None:
    message = check_message(status_message(make_state(name=EVIL)))
    text = all_text(message.blocks)
    for part in ("staging/journey:welcome-0 v2", "FREQ=DAILY", "Population: 42", "v1 stopped"):
        assert part in text


@pytest.mark.parametrize("count", [0, 1, 49, 50, 1000])
def test_list_message_fits(count: int) -> None:
    states = [make_state(i, name=f"{EVIL} {i}") for i in range(count)]
    message = check_message(list_message(states, title="Paused <now>"))
    text = all_text(message.blocks)
    assert "Paused &lt;now&gt;" in text
    if count == 0:
        assert "Nothing matched." in text
    if count > 45:
        assert f"…and {count - 40} more." in text


def test_history_message() -> None:
    events = [
        AuditEvent(
            id=i,
            request_id=f"req-{i}",
            at=NOW + timedelta(minutes=i),
            actor="U0ALICE" if i % 2 else "scheduler",
            action="paused",
            via=Via.COMMAND,
            detail={"note": EVIL * 20},
        )
        for i in range(300)
    ]
    message = check_message(history_message("prod/journey:<x>", events))
    text = all_text(message.blocks)
    assert "prod/journey:&lt;x&gt;" in text
    assert "…and 260 more." in text
    assert text.index("req-299") < text.index("req-298")  # newest first
    empty = check_message(history_message("prod/journey:x", []))
    assert "has not acted" in all_text(empty.blocks)


@pytest.mark.parametrize("topic", [None, *Verb])
def test_help_message_escapes_placeholders(topic: Verb | None) -> None:
    message = check_message(help_message(topic))
    text = "\n".join(b["text"]["text"] for b in message.blocks)
    assert text == escape(help_text(topic))


def test_error_message() -> None:
    message = check_message(error_message("no <such> target", usage="/automation status <target>"))
    assert "no &lt;such&gt; target" in message.text
    assert "Usage: `/automation status &lt;target&gt;`" in all_text(message.blocks)
    check_message(error_message(HUGE, usage=HUGE))


def test_picker_message_buttons_rerun_the_command() -> None:
    candidates = [
        TargetSummary(kind=TargetKind.JOURNEY, key="welcome", name="Welcome", id="j1"),
        TargetSummary(kind=TargetKind.SCRIP, key="welcome-2", name="Welcome & Co", id="s1"),
    ]
    message = check_message(
        picker_message(
            candidates, original_text="pause welcome for 3d", query="welcome", environment="prod"
        )
    )
    assert "Several targets match 'welcome': pick one" in message.text
    found = buttons(message)
    assert [b["action_id"] for b in found] == [PickerAction.CHOOSE] * 2
    value = ButtonValue.parse(found[1]["value"])
    assert value == ButtonValue(
        environment="prod", kind=TargetKind.SCRIP, key="welcome-2", command="pause welcome for 3d"
    )
    assert found[1]["text"]["text"] == "Pick scrip · Welcome & Co (welcome-2)"


def test_picker_message_caps_candidates_and_long_commands() -> None:
    candidates = [
        TargetSummary(kind=TargetKind.AUTOMATION, key=f"k{i}<>", name=EVIL * 10, id=str(i))
        for i in range(60)
    ]
    message = check_message(picker_message(candidates, original_text="status x"))
    assert len(buttons(message)) == 25
    assert "…and 35 more." in all_text(message.blocks)
    # a command too long to carry: no buttons, the names are still listed
    long = check_message(picker_message(candidates[:3], original_text="pause x " + "y" * 5000))
    assert buttons(long) == []
    assert "k0&lt;&gt;" in long.text


def test_a_pause_that_ended_says_how_and_offers_pause_again() -> None:
    from bot.domain.requests import PauseOutcome

    ended = PauseOutcome(at=NOW, text="resumed: active (6 Scheduled) (verified)")
    message = check_message(request_card(make_request(pause_outcome=ended), now=NOW))
    text = all_text(message.blocks)
    assert "*Pause*" in text
    assert "resumed: active (6 Scheduled) (verified)" in text
    assert "*Ends*" not in text  # no countdown to an end that has passed
    (button,) = buttons(message)
    assert button["action_id"] == CardAction.OPEN_PAUSE_MODAL


def test_a_pause_ended_early_names_who_and_one_still_paused_keeps_resume_now() -> None:
    from bot.domain.requests import PauseOutcome

    early = PauseOutcome(at=NOW, text="ended early by a resume request: now active", by="U0BOB")
    text = all_text(request_card(make_request(pause_outcome=early), now=NOW).blocks)
    assert "by <@U0BOB>" in text
    kept = PauseOutcome(at=NOW, text="time is up; it stays paused as asked", still_paused=True)
    (button,) = buttons(request_card(make_request(pause_outcome=kept), now=NOW))
    assert button["action_id"] == CardAction.RESUME_NOW


def test_a_hostile_pause_outcome_is_escaped() -> None:
    from bot.domain.requests import PauseOutcome

    bad = PauseOutcome(at=NOW, text="<!channel> *boom* " + "x" * 5000)
    message = check_message(request_card(make_request(pause_outcome=bad), now=NOW))
    assert "<!channel>" not in all_text(message.blocks)


# -- scrip automations are named by name, never by their UUID alone --------------------------

SCRIP_ID = "a1f0c6d2-3b4e-4c5d-8e6f-101010101001"
SCRIP_LABEL = 'staging/scrip:"Nightly Points Expiry"'


def _scrip_request(status: RequestStatus = RequestStatus.SUCCEEDED) -> OperationRequest:
    return make_request(
        status=status, kind=TargetKind.SCRIP, key=SCRIP_ID, name="Nightly Points Expiry"
    )


def _unjson(text: str) -> str:
    return text.replace('\\"', '"')


def _uuid_only_as_small_print(text: str) -> None:
    """The id shows only after "id " (small print), never as the target's label."""
    assert f"scrip:{SCRIP_ID}" not in text, text[:500]
    assert text.count(SCRIP_ID) == text.count(f"id {SCRIP_ID}"), text[:500]


def test_scrip_card_names_the_target_by_name_with_the_id_in_small_print() -> None:
    message = check_message(request_card(_scrip_request(), now=NOW))
    text = _unjson(message.text + all_text(message.blocks))
    assert SCRIP_LABEL in text
    _uuid_only_as_small_print(text)


def test_scrip_thread_replies_name_the_target_by_name() -> None:
    executing = check_message(executing_reply(_scrip_request(RequestStatus.EXECUTING)))
    assert executing.text == f"Pausing {SCRIP_LABEL}…"
    result = check_message(result_reply(_scrip_request()))
    for text in (executing.text, result.text + all_text(result.blocks)):
        _uuid_only_as_small_print(text)


def test_scrip_status_and_list_name_the_target_by_name() -> None:
    state = TargetState(
        target=Target(
            environment="staging",
            kind=TargetKind.SCRIP,
            key=SCRIP_ID,
            name="Nightly Points Expiry",
            id=SCRIP_ID,
        ),
        state=NormalState.ACTIVE,
        raw_status="active",
    )
    for message in (status_message(state), list_message([state], title="All")):
        text = _unjson(check_message(message).text + all_text(message.blocks))
        assert SCRIP_LABEL in text
        _uuid_only_as_small_print(text)


def test_scrip_picker_names_candidates_by_name() -> None:
    twins = [
        TargetSummary(kind=TargetKind.SCRIP, key=SCRIP_ID, name="Nightly Points Expiry", id="1"),
        TargetSummary(
            kind=TargetKind.SCRIP, key=SCRIP_ID[:-1] + "2", name="Nightly Points Expiry", id="2"
        ),
    ]
    message = check_message(picker_message(twins, original_text="status x", query="x"))
    assert "scrip:a1f0" not in message.text + all_text(message.blocks)
    assert "Nightly Points Expiry" in message.text
