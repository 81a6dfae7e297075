"""Approval rules for production requests (pure).

Who counts (the approver set, checked at the moment of the vote), whether the requester
may approve their own request, how many approvals are needed, that any approver's deny
ends the request, and whether a policy can ever be satisfied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.errors import ConfigError
from bot.domain.models import Via


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Outcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Vote(_Frozen):
    """One person's current vote on one request."""

    voter: str
    decision: Decision
    via: Via
    at: datetime


def is_group_id(slack_id: str) -> bool:
    """Slack user-group ids start with S; user ids with U or W."""
    return slack_id.startswith("S")


class ApprovalPolicy(_Frozen):
    """The approval settings of one production environment."""

    environment: str
    approvers: frozenset[str] = Field(description="user ids and user-group ids")
    required: int = Field(default=1, ge=1)
    allow_self_approval: bool = False
    expires_after: timedelta = timedelta(hours=4)
    approve_reaction: str = "white_check_mark"
    deny_reaction: str = "x"
    channel: str | None = None
    requesters: frozenset[str] | None = None

    @property
    def user_ids(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if not is_group_id(a))

    @property
    def group_ids(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if is_group_id(a))

    def expires_at(self, created: datetime) -> datetime:
        return created + self.expires_after

    def may_request(self, user: str, groups_of_user: Iterable[str] = ()) -> bool:
        if self.requesters is None:
            return True
        return user in self.requesters or bool(set(groups_of_user) & self.requesters)

    def check_satisfiable(self) -> None:
        """Refuse a policy that no request could ever satisfy, whoever asks (names the
        environment and why).

        A user group may hold any number of people, so with a group listed only an empty
        approver list is impossible; policies that may leave some requester short are
        :meth:`warnings`, and such a request says so on its card.
        """
        where = f"environments.{self.environment}.approval"
        if not self.approvers:
            raise ConfigError(
                f"{where}: no approvers are listed, so no production request could ever be "
                "approved. List user ids (U...) or user-group ids (S...) in approvers."
            )
        if not self.group_ids and self.required > len(self.user_ids):
            raise ConfigError(
                f"{where}: required is {self.required} but only {len(self.user_ids)} "
                "approver(s) are listed and no user group, so no request could ever be "
                "approved. Add approvers or lower required."
            )

    def warnings(self) -> list[str]:
        """Who could be left without enough approvers (the bot still starts; such a
        request says so on its card at once)."""
        if self.requesters is not None and not self.requesters:
            return [
                f"environments.{self.environment}.approval: requesters is an empty list, so "
                "nobody may ask for changes there. Remove requesters to let anyone ask, or "
                "list user ids (U...) or user-group ids (S...)."
            ]
        if self.allow_self_approval or self.group_ids:
            return []  # group membership is only known when a request is made
        requesters = self.user_ids
        if self.requesters is not None:
            requesters = frozenset(r for r in self.requesters if r in self.user_ids)
        short = sorted(r for r in requesters if len(self.user_ids - {r}) < self.required)
        if not short:
            return []
        others = len(self.user_ids) - 1
        who = ", ".join(short)
        return [
            f"environments.{self.environment}.approval: required is {self.required} and "
            f"self-approval is off, so a request by {who} has only {others} other "
            f"approver(s) and cannot be approved (its card will say so; the requester can "
            "still withdraw it). Add approvers or a user group, lower required, or set "
            "allow_self_approval: true."
        ]

    def eligible_approvers(self, requester: str, members: Iterable[str]) -> set[str]:
        """Everyone who could approve ``requester``'s request, given group ``members``."""
        people = set(self.user_ids) | set(members)
        if not self.allow_self_approval:
            people.discard(requester)
        return people


class Tally(_Frozen):
    outcome: Outcome
    approvals: tuple[Vote, ...] = ()
    denials: tuple[Vote, ...] = ()
    required: int = 1

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.approvals))


def tally(policy: ApprovalPolicy, votes: Iterable[Vote]) -> Tally:
    """Any deny ends it; otherwise approved once ``required`` people approved."""
    ordered = sorted(votes, key=lambda v: v.at)
    approvals = tuple(v for v in ordered if v.decision is Decision.APPROVE)
    denials = tuple(v for v in ordered if v.decision is Decision.DENY)
    if denials:
        outcome = Outcome.DENIED
    elif len(approvals) >= policy.required:
        outcome = Outcome.APPROVED
    else:
        outcome = Outcome.PENDING
    return Tally(outcome=outcome, approvals=approvals, denials=denials, required=policy.required)


def refusal(
    policy: ApprovalPolicy,
    *,
    voter: str,
    requester: str,
    is_approver: bool,
    decision: Decision = Decision.APPROVE,
) -> Literal["not_an_approver", "own_request"] | None:
    """Why ``voter`` may not vote, or None when the vote counts.

    The requester may always deny (withdraw) their own request.
    """
    if voter == requester and decision is Decision.DENY:
        return None
    if not is_approver:
        return "not_an_approver"
    if voter == requester and not policy.allow_self_approval:
        return "own_request"
    return None


def normalise_reaction(name: str) -> str:
    """``+1::skin-tone-2`` -> ``+1``; colons stripped."""
    return name.strip(":").split("::", 1)[0]


def reaction_decision(policy: ApprovalPolicy | None, reaction: str) -> Decision | None:
    """The vote a reaction means under ``policy`` (None: no approvals, or another emoji)."""
    if policy is None:
        return None
    name = normalise_reaction(reaction)
    if name == policy.approve_reaction:
        return Decision.APPROVE
    if name == policy.deny_reaction:
        return Decision.DENY
    return None


class ApprovalView(_Frozen):
    """What a card shows about a production request's approval."""

    environment: str
    required: int
    approvers: tuple[str, ...]
    votes: tuple[Vote, ...] = ()
    expires_at: datetime | None = None
    allow_self_approval: bool = False
    approve_reaction: str = "white_check_mark"
    deny_reaction: str = "x"
    #: Who could approve this request now (read when the card is drawn; None: not known).
    eligible: tuple[str, ...] | None = None

    @property
    def short_of_approvers(self) -> bool:
        """Fewer people could approve it than it needs: it cannot be approved as configured."""
        return self.eligible is not None and len(self.eligible) < self.required

    @property
    def approvals(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.decision is Decision.APPROVE)

    @property
    def denials(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.decision is Decision.DENY)

    @classmethod
    def of(
        cls,
        policy: ApprovalPolicy,
        votes: Iterable[Vote],
        expires_at: datetime | None,
        *,
        eligible: Iterable[str] | None = None,
    ) -> ApprovalView:
        return cls(
            eligible=None if eligible is None else tuple(sorted(eligible)),
            environment=policy.environment,
            required=policy.required,
            approvers=tuple(sorted(policy.approvers)),
            votes=tuple(sorted(votes, key=lambda v: v.at)),
            expires_at=expires_at,
            allow_self_approval=policy.allow_self_approval,
            approve_reaction=policy.approve_reaction,
            deny_reaction=policy.deny_reaction,
        )
