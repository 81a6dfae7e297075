from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.approvals import (
    ApprovalPolicy,
    Decision,
    Outcome,
    Vote,
    normalise_reaction,
    refusal,
    tally,
)
from bot.domain.errors import ConfigError
from bot.domain.requests import Via

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def policy(**kw: object) -> ApprovalPolicy:
    base: dict[str, object] = {"environment": "prod", "approvers": frozenset({"U1", "U2"})}
    base.update(kw)
    return ApprovalPolicy.model_validate(base)


def vote(voter: str, decision: Decision, minutes: int = 0) -> Vote:
    return Vote(voter=voter, decision=decision, via=Via.BUTTON, at=T0 + timedelta(minutes=minutes))


def test_one_approval_is_enough_by_default() -> None:
    assert tally(policy(), []).outcome is Outcome.PENDING
    assert tally(policy(), [vote("U1", Decision.APPROVE)]).outcome is Outcome.APPROVED


def test_quorum_of_two() -> None:
    p = policy(required=2, approvers=frozenset({"U1", "U2", "U3"}))
    one = tally(p, [vote("U1", Decision.APPROVE)])
    assert one.outcome is Outcome.PENDING
    assert one.missing == 1
    assert tally(p, [vote("U1", Decision.APPROVE), vote("U2", Decision.APPROVE, 1)]).outcome is (
        Outcome.APPROVED
    )


def test_any_deny_ends_it() -> None:
    p = policy(required=2, approvers=frozenset({"U1", "U2", "U3"}))
    votes = [vote("U1", Decision.APPROVE), vote("U2", Decision.DENY, 1)]
    assert tally(p, votes).outcome is Outcome.DENIED


def test_refusals() -> None:
    p = policy()
    assert refusal(p, voter="U9", requester="U1", is_approver=False) is not None
    assert refusal(p, voter="U1", requester="U1", is_approver=True) == "own_request"
    assert refusal(p, voter="U2", requester="U1", is_approver=True) is None
    own_deny = refusal(p, voter="U9", requester="U9", is_approver=False, decision=Decision.DENY)
    assert own_deny is None  # a requester may always withdraw their own request
    allowed = policy(allow_self_approval=True)
    assert refusal(allowed, voter="U1", requester="U1", is_approver=True) is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"approvers": frozenset()}, "no approvers are listed"),
        ({"required": 3}, "required is 3 but only 2 approver(s) are listed and no user group"),
        (
            {"approvers": frozenset({"U1"}), "required": 2, "allow_self_approval": True},
            "only 1 approver(s)",
        ),
    ],
)
def test_policies_nobody_could_ever_approve_are_refused(
    kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        policy(**kw).check_satisfiable()
    assert message in err.value.message
    assert "environments.prod.approval" in err.value.message


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"approvers": frozenset({"U1"}), "allow_self_approval": True},
        {"approvers": frozenset({"S0GROUP"})},
        {"approvers": frozenset({"S0GROUP"}), "required": 5},  # a group may hold five people
        {"approvers": frozenset({"U1"}), "requesters": frozenset({"U7"})},
    ],
)
def test_satisfiable_policies_pass_without_warnings(kw: dict[str, object]) -> None:
    policy(**kw).check_satisfiable()
    assert policy(**kw).warnings() == []


@pytest.mark.parametrize(
    ("kw", "who"),
    [
        # the most common real policy: one lead approves, self-approval off
        ({"approvers": frozenset({"U0LEAD"})}, "a request by U0LEAD has only 0 other"),
        ({"required": 2}, "a request by U1, U2 has only 1 other"),
        (
            {"required": 2, "approvers": frozenset({"U1", "U2"}), "requesters": frozenset({"U1"})},
            "a request by U1 has only 1 other",
        ),
        ({"requesters": frozenset()}, "requesters is an empty list, so nobody may ask"),
    ],
)
def test_policies_that_leave_a_requester_short_start_with_a_warning(
    kw: dict[str, object], who: str
) -> None:
    p = policy(**kw)
    p.check_satisfiable()
    (warning,) = p.warnings()
    assert who in warning
    assert warning.startswith("environments.prod.approval: ")
    assert ("allow_self_approval: true" in warning) or ("Remove requesters" in warning)


def test_eligible_approvers_exclude_requester() -> None:
    p = policy(approvers=frozenset({"U1", "S0G"}))
    assert p.eligible_approvers("U1", ["U2", "U1"]) == {"U2"}


@pytest.mark.parametrize(
    ("raw", "name"),
    [("white_check_mark", "white_check_mark"), ("+1::skin-tone-2", "+1"), (":x:", "x")],
)
def test_normalise_reaction(raw: str, name: str) -> None:
    assert normalise_reaction(raw) == name
