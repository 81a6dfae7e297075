"""Block Kit messages: request cards, thread replies and ephemeral answers (pure functions).

Every builder returns a :class:`Message`: a plain-text ``text`` fallback plus blocks built
from ``slack_sdk.models.blocks`` objects (``to_dict()`` validates them). Slack's limits
(reference slack-and-chatops.md §2.12) are kept whatever the input: text that people or
providers supply is escaped (``&``, ``<``, ``>``) and shortened with an ellipsis; our own
mentions (``<@U…>``) and dates (``<!date^…>``) are left as markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.approvals import ApprovalView, Decision, Vote, is_group_id
from bot.domain.help import help_text
from bot.domain.models import TargetKind, TargetState, TargetSummary, ThenAction, Verb
from bot.domain.requests import (
    AuditEvent,
    ExecutionPhase,
    OperationRequest,
    PauseRecord,
    RequestSpec,
    RequestStatus,
    format_timedelta,
)
from bot.render import interrupted_text
from bot.slack.ids import ApprovalAction, CardAction, CardBlock, PickerAction, ReminderAction
from bot.slack.metadata import ButtonValue

__all__ = [
    "BUTTON_TEXT_MAX",
    "FIELD_MAX",
    "HEADER_MAX",
    "MESSAGE_BLOCKS_MAX",
    "PICKER_MAX",
    "TEXT_MAX",
    "Message",
    "approval_needed_reply",
    "approvers_text",
    "button",
    "context",
    "decision_reply",
    "error_message",
    "escape",
    "executing_reply",
    "header",
    "help_message",
    "history_message",
    "info_reply",
    "list_message",
    "mention",
    "notice_message",
    "picker_message",
    "progress_reply",
    "reminder_reply",
    "request_card",
    "result_reply",
    "section",
    "slack_date",
    "status_message",
    "step_message",
    "time_left",
    "truncate",
    "vote_reply",
]

MESSAGE_BLOCKS_MAX: Final = 50
TEXT_MAX: Final = 3000  # section text; also our cap for the fallback ``text``
FIELD_MAX: Final = 2000  # one section field
HEADER_MAX: Final = 150
BUTTON_TEXT_MAX: Final = 75
CONTEXT_ELEMENTS_MAX: Final = 10
PICKER_MAX: Final = 25

_REASON_MAX = 500  # a reason as shown on a card
_ERROR_MAX = 1000
_LIST_ITEMS_MAX = 40
_HISTORY_ITEMS_MAX = 40
_ELLIPSIS = "…"
_SLACK_USER_RE = re.compile(r"[UW][A-Z0-9]{2,}")
_SLACK_GROUP_RE = re.compile(r"S[A-Z0-9]{2,}")
_APPROVERS_SHOWN = 10
_VOTES_SHOWN = 12  # each line ~110 chars of markup: well inside a 2000-char element
_SAYS_WHAT_FAILED = re.compile(r"(could not|cannot|can't) ", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Message:
    """A message as ``chat.postMessage`` / ``respond`` take it."""

    text: str
    blocks: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


# -- text helpers ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three control characters in text we did not write."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never inside an ``&…;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + _ELLIPSIS


def _user(text: str, limit: int) -> str:
    """User- or provider-supplied text, escaped and shortened to fit ``limit``."""
    return truncate(escape(text), limit)


def mention(actor: str) -> str:
    """``<@U…>`` for a Slack user id; anything else (``scheduler``, ``cli:alice``) as text."""
    if _SLACK_USER_RE.fullmatch(actor):
        return f"<@{actor}>"
    return _user(actor, 100)


def _approver(slack_id: str) -> str:
    """``<!subteam^S…>`` for a user group, ``<@U…>`` for a person."""
    if is_group_id(slack_id) and _SLACK_GROUP_RE.fullmatch(slack_id):
        return f"<!subteam^{slack_id}>"
    return mention(slack_id)


def _either(items: Sequence[str], word: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def approvers_text(approvers: Sequence[str]) -> str:
    """The approver set as mentions (``<!subteam^S…> or <@U…>``), the first few of them."""
    if not approvers:
        return "nobody"
    shown = [_approver(a) for a in approvers[:_APPROVERS_SHOWN]]
    more = len(approvers) - len(shown)
    if more:
        shown.append(f"{more} more")
    return _either(shown)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """Slack's localised date markup with a UTC fallback."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{fmt}|{fallback}>"


def _span(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def time_left(ends_at: datetime | None, *, now: datetime) -> str:
    """``2d 4h left``, ``ends in 35m``, ``ending now``, ``overdue by 5m`` or ``no end set``."""
    if ends_at is None:
        return "no end set"
    seconds = (ends_at - now).total_seconds()
    if seconds > 0:
        minutes = math.ceil(seconds / 60)
        return f"ends in {minutes}m" if minutes < 60 else f"{_span(minutes)} left"
    if seconds > -60:
        return "ending now"
    return f"overdue by {_span(int(-seconds // 60))}"


def section(text: str, **kwargs: Any) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, TEXT_MAX)), **kwargs)


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    elements = [MarkdownTextObject(text=truncate(t, FIELD_MAX)) for t in texts if t]
    return ContextBlock(elements=elements[:CONTEXT_ELEMENTS_MAX], block_id=block_id)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_MAX), emoji=True))


def button(
    text: str,
    *,
    action_id: str,
    value: str | None = None,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=truncate(text, BUTTON_TEXT_MAX), emoji=True),
        action_id=action_id,
        value=value,
        style=style,
        confirm=confirm,
    )


def _dicts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    out = [block.to_dict() for block in blocks]
    assert len(out) <= MESSAGE_BLOCKS_MAX, "a message holds at most 50 blocks"
    return out


def _message(text: str, blocks: Iterable[Block]) -> Message:
    return Message(text=truncate(text, TEXT_MAX), blocks=_dicts(blocks))


def _chunks(lines: Iterable[str], limit: int = TEXT_MAX) -> list[str]:
    """Join lines into texts of at most ``limit`` characters (a long line is shortened)."""
    chunks: list[str] = []
    current = ""
    for raw in lines:
        line = truncate(raw, limit)
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


# -- request cards --------------------------------------------------------------------------

_VERB_HEAD: Final[dict[Verb, str]] = {
    Verb.PAUSE: ":double_vertical_bar: Pause",
    Verb.RESUME: ":arrow_forward: Resume",
    Verb.STOP: ":black_square_for_stop: Stop",
    Verb.RUN: ":rocket: Run once",
}

_GERUND: Final[dict[Verb, str]] = {
    Verb.PAUSE: "Pausing",
    Verb.RESUME: "Resuming",
    Verb.STOP: "Stopping",
    Verb.RUN: "Running",
}

_PAST: Final[dict[Verb, str]] = {
    Verb.PAUSE: "Paused",
    Verb.RESUME: "Resumed",
    Verb.STOP: "Stopped",
    Verb.RUN: "Started a run of",
}

_THEN_TEXT: Final[dict[ThenAction, str]] = {
    ThenAction.RESUME: "it resumes",
    ThenAction.STOP: "the journey version is stopped for good",
    ThenAction.KEEP: "it stays paused; the bot reminds",
}


def _verb_head(verb: Verb) -> str:
    return _VERB_HEAD.get(verb, verb.value.capitalize())


def _state_text(state: str | None) -> str:
    return f"*{_user(state, 200)}*" if state else "*unknown*"


def _status_line(request: OperationRequest) -> str:
    after = _state_text(request.state_after)
    match request.status:
        case RequestStatus.RECEIVED:
            return "Received"
        case RequestStatus.AWAITING_APPROVAL:
            return ":raised_hand: Waiting for approval"
        case RequestStatus.APPROVED:
            return ":ballot_box_with_check: Approved"
        case RequestStatus.DENIED:
            return ":no_entry_sign: Denied"
        case RequestStatus.EXPIRED:
            return ":hourglass: Expired: it was not approved in time"
        case RequestStatus.EXECUTING:
            return ":hourglass_flowing_sand: Working…"
        case RequestStatus.SUCCEEDED:
            return f":white_check_mark: Done — verified {after}"
        case RequestStatus.UNVERIFIED if request.execution_phase is ExecutionPhase.INTERRUPTED:
            return f":warning: {interrupted_text(after)}"
        case RequestStatus.UNVERIFIED if request.error:  # a sentence stored by an earlier version
            return f":warning: {_user(request.error, _ERROR_MAX)}"
        case RequestStatus.UNVERIFIED:
            return f":warning: Sent, but the read-back shows {after}"
        case RequestStatus.FAILED:
            return f":x: Failed: {_user(request.error or 'no reason given', _ERROR_MAX)}"


def _field(title: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{title}*\n{value}", FIELD_MAX))


def _target_field(spec: RequestSpec) -> str:
    """The label, then the name (or, for a target named by its name, its id in italics)."""
    label = f"`{_user(spec.target_label(), 300)}`"
    if spec.kind.keyed_by_id and spec.name.strip():
        return f"{label}\n_id {_user(spec.key, 100)}_"
    return f"{label}\n{_user(spec.name, 300)}"


def _card_fields(request: OperationRequest, *, now: datetime) -> list[MarkdownTextObject]:
    spec = request.spec
    fields = [
        _field("Target", _target_field(spec)),
        _field("Environment", _user(spec.environment, 100)),
        _field("What will happen", _user(spec.describe(), 1000)),
        _field("Asked by", mention(request.requested_by)),
    ]
    if request.reason:
        fields.append(_field("Reason", _user(request.reason, _REASON_MAX)))
    if request.state_before or request.state_after:
        before = _user(request.state_before or "unknown", 200)
        after = _user(request.state_after, 200) if request.state_after else "…"
        fields.append(_field("State", f"{before} → {after}"))
    pause = spec.pause
    ended = request.pause_outcome
    if spec.verb is Verb.PAUSE and ended is not None:
        who = f" by {mention(ended.by)}" if ended.by else ""
        from bot.slack.messages import pause_outcome_text  # the wording of events

        said = _user(pause_outcome_text(ended), 500)
        fields.append(_field("Pause", f"{slack_date(ended.at)}: {said}{who}"))
    elif spec.verb is Verb.PAUSE and pause is not None and pause.timed:
        if request.pause_ends_at is not None:
            end = request.pause_ends_at
            fields.append(_field("Ends", f"{slack_date(end)} ({time_left(end, now=now)})"))
        elif pause.until is not None:
            fields.append(_field("Ends", slack_date(pause.until)))
        elif pause.duration is not None:
            length = format_timedelta(pause.duration)
            fields.append(_field("Lasts", f"{length}, counted from when it is done"))
        fields.append(_field("Then", _THEN_TEXT[pause.then]))
    return fields


def _card_buttons(request: OperationRequest) -> list[ButtonElement]:
    spec = request.spec
    ended = request.pause_outcome
    still_paused = ended is None or ended.still_paused
    if request.status is RequestStatus.SUCCEEDED and spec.verb is Verb.PAUSE and still_paused:
        confirm = ConfirmObject(
            title="Resume now?",
            text=truncate(f"Resume {escape(spec.target_label())} now?", 300),
            confirm="Resume",
            deny="Cancel",
        )
        value = ButtonValue(request_id=request.id).dump()
        return [
            button(
                "Resume now",
                action_id=CardAction.RESUME_NOW,
                value=value,
                style="primary",
                confirm=confirm,
            )
        ]
    succeeded_other = request.status is RequestStatus.SUCCEEDED and (
        spec.verb in (Verb.RESUME, Verb.STOP, Verb.RUN) or spec.verb is Verb.PAUSE
    )  # a pause that has ended: it may be paused again
    if succeeded_other or request.status is RequestStatus.FAILED:
        value = _target_button_value(request)
        return [button("Pause…", action_id=CardAction.OPEN_PAUSE_MODAL, value=value)]
    return []


def _target_button_value(request: OperationRequest) -> str:
    spec = request.spec
    try:
        return ButtonValue(
            request_id=request.id,
            environment=spec.environment,
            kind=spec.kind,
            key=spec.key,
            name=spec.name or None,
            version=spec.version,
        ).dump()
    except ValueError:  # an oversized key or environment: the request id alone will do
        return ButtonValue(request_id=request.id).dump()


_DECIDED_BY_APPROVAL = frozenset(
    {
        RequestStatus.APPROVED,
        RequestStatus.EXECUTING,
        RequestStatus.SUCCEEDED,
        RequestStatus.UNVERIFIED,
        RequestStatus.FAILED,
    }
)


def _reaction_hint(approval: ApprovalView) -> str:
    approve, deny = (
        _user(approval.approve_reaction, 100),
        _user(approval.deny_reaction, 100),
    )
    return f"Click *Approve* or *Deny*, or react with :{approve}: to approve or :{deny}: to deny."


def _votes_line(votes: Sequence[Vote], verb: str) -> str:
    """``<@U1> at <date>, <@U2> at <date>`` (the first few)."""
    shown = [f"{mention(v.voter)} at {slack_date(v.at)}" for v in votes[:_VOTES_SHOWN]]
    more = len(votes) - len(shown)
    if more:
        shown.append(f"{more} more")
    return f"{verb} by {_either(shown, 'and')}"


def _vote_words(vote: Vote) -> str:
    did = "approved" if vote.decision is Decision.APPROVE else "denied"
    return f"{mention(vote.voter)} {did} {slack_date(vote.at)} (via {vote.via.value})"


def approvers_short_text(request: OperationRequest, approval: ApprovalView) -> str:
    """Why this request cannot be approved as configured, who could, and what to change."""
    eligible = approval.eligible or ()
    who = mention(request.requested_by)
    could = (
        f"only {_either([mention(e) for e in eligible[:_APPROVERS_SHOWN]], 'and')} could"
        if eligible
        else "nobody could"
    )
    other = "" if approval.allow_self_approval else f" from someone other than {who}"
    env = _user(approval.environment, 100)
    return (
        f":warning: *This request cannot be approved as configured:* it needs "
        f"{approval.required} approval(s){other} and {could} approve it (approvers: "
        f"{approvers_text(approval.approvers)}). To allow it, change "
        f"`environments.{env}.approval` in the bot's configuration (add approvers or a user "
        "group, lower `required`, or set `allow_self_approval: true`) and restart the bot. "
        f"{who} can still withdraw it with *Deny*."
    )


def _approval_blocks(
    request: OperationRequest, approval: ApprovalView, *, now: datetime
) -> list[Block]:
    """What the card says about the approval: needed, votes so far, or the decision."""
    done = len(approval.approvals)
    status = request.status
    if status is RequestStatus.AWAITING_APPROVAL:
        until = ""
        if approval.expires_at is not None:
            left = time_left(approval.expires_at, now=now)
            until = f", until {slack_date(approval.expires_at)} ({left})"
        lines = [
            f":raised_hand: *Approval needed:* {done} of {approval.required} from "
            f"{approvers_text(approval.approvers)}{until}.",
        ]
        if not approval.allow_self_approval:
            lines.append(f"{mention(request.requested_by)} asked for it and cannot approve it.")
        lines.append(_reaction_hint(approval))
        blocks: list[Block] = [section("\n".join(lines), block_id=CardBlock.APPROVAL)]
        if approval.short_of_approvers:
            blocks.append(
                section(approvers_short_text(request, approval), block_id=CardBlock.APPROVERS_SHORT)
            )
        if approval.votes:
            shown = [_vote_words(v) for v in approval.votes[:_VOTES_SHOWN]]
            more = len(approval.votes) - len(shown)
            if more:
                shown.append(f"…and {more} more")
            blocks.append(context("\n".join(shown), block_id=CardBlock.VOTES))
        return blocks
    if status is RequestStatus.DENIED and approval.denials:
        text = f":no_entry_sign: {_votes_line(approval.denials, 'Denied')}."
        if approval.approvals:
            text += f" {_votes_line(approval.approvals, 'Approved')} before that."
    elif status is RequestStatus.EXPIRED:
        when = f" at {slack_date(approval.expires_at)}" if approval.expires_at else ""
        text = (
            f":hourglass: Expired{when} with {done} of {approval.required} approval(s): "
            "nothing was changed."
        )
    elif status in _DECIDED_BY_APPROVAL and approval.approvals:
        text = f":ballot_box_with_check: {_votes_line(approval.approvals, 'Approved')}."
    else:
        return []
    return [section(text, block_id=CardBlock.APPROVAL)]


def _approval_buttons(request: OperationRequest, approval: ApprovalView) -> list[ButtonElement]:
    value = ButtonValue(request_id=request.id).dump()
    if request.status is RequestStatus.AWAITING_APPROVAL:
        return [
            button("Approve", action_id=ApprovalAction.APPROVE, value=value, style="primary"),
            button("Deny", action_id=ApprovalAction.DENY, value=value, style="danger"),
        ]
    if request.status in (RequestStatus.EXPIRED, RequestStatus.DENIED):
        return [button("Request again", action_id=ApprovalAction.REQUEST_AGAIN, value=value)]
    return []


def request_card(
    request: OperationRequest, *, now: datetime, approval: ApprovalView | None = None
) -> Message:
    """The card for one operation, kept current with ``chat.update``.

    With ``approval`` (a production request), the card also says who must approve, how
    many, until when, the votes so far, and later who decided and when; it carries Approve
    and Deny while the request waits, and Request again once it expired or was denied.
    """
    spec = request.spec
    status = _status_line(request)
    blocks: list[Block] = [
        header(f"{_verb_head(spec.verb)}: {spec.name or spec.key}"),
        SectionBlock(fields=_card_fields(request, now=now)),
    ]
    if approval is not None:
        blocks.extend(_approval_blocks(request, approval, now=now))
    blocks.append(
        context(
            status,
            f"Request `{_user(request.id, 100)}` · via {request.via.value}"
            f" · updated {slack_date(request.updated_at)}",
            block_id=CardBlock.STATUS,
        )
    )
    buttons = _card_buttons(request)
    if approval is not None:
        buttons = _approval_buttons(request, approval) + buttons
    if buttons:
        blocks.append(ActionsBlock(elements=buttons, block_id=CardBlock.ACTIONS))
    verb = _verb_head(spec.verb).split(" ", 1)[-1]
    text = f"{verb} {escape(spec.target_label())}: {status}"
    if approval is not None and request.status is RequestStatus.AWAITING_APPROVAL:
        text += f" ({len(approval.approvals)} of {approval.required})"
        if approval.short_of_approvers:
            text += ": cannot be approved as configured"
    return _message(text, blocks)


# -- thread replies -------------------------------------------------------------------------


def step_message(text: str) -> Message:
    """One step in a card's thread; ``text`` is our own mrkdwn (escape user parts first)."""
    return _message(text, [section(text)])


def executing_reply(request: OperationRequest) -> Message:
    spec = request.spec
    gerund = _GERUND.get(spec.verb, spec.verb.value.capitalize())
    return step_message(f"{gerund} {_user(spec.target_label(), 500)}…")


def result_reply(request: OperationRequest) -> Message:
    """The outcome: verified state, an unverified warning, or the provider's error."""
    spec = request.spec
    label = f"`{_user(spec.target_label(), 500)}`"
    after = _state_text(request.state_after)
    match request.status:
        case RequestStatus.SUCCEEDED:
            past = _PAST.get(spec.verb, spec.verb.value)
            text = f":white_check_mark: {past} {label}. Verified: it is now {after}."
        case RequestStatus.UNVERIFIED if request.execution_phase is ExecutionPhase.INTERRUPTED:
            text = f":warning: {interrupted_text(after)}"
        case RequestStatus.UNVERIFIED if request.error:  # a sentence stored by an earlier version
            text = f":warning: {_user(request.error, _ERROR_MAX)}"
        case RequestStatus.UNVERIFIED:
            text = (
                f":warning: The {spec.verb.value} of {label} was sent, but the read-back shows"
                f" {after}. Check it before relying on it."
            )
        case RequestStatus.FAILED:
            error = _user(request.error or "no reason given", _ERROR_MAX)
            if _SAYS_WHAT_FAILED.match(error):  # "Could not pause journey 'x' (v1): ..."
                text = f":x: {error}"
            else:
                text = f":x: Could not {spec.verb.value} {label}: {error}"
        case _:
            text = _status_line(request)
    return step_message(text)


def progress_reply(done: int, total: int, what: str, *, noun: str = "versions") -> Message:
    """``pausing 3 of 5 versions…``."""
    done = max(0, min(done, total))
    return step_message(f"{_user(what, 200)} {done} of {total} {_user(noun, 100)}…")


_VOTE_WORDS: Final[dict[str, str]] = {
    "approve": ":white_check_mark: {who} approved",
    "deny": ":x: {who} denied",
    "withdraw-approve": ":leftwards_arrow_with_hook: {who} withdrew their approval",
    "withdraw-deny": ":leftwards_arrow_with_hook: {who} withdrew their denial",
}


def vote_reply(
    actor: str, decision: str, *, done: int | None = None, total: int | None = None
) -> Message:
    """``<@U> approved (1 of 2)`` / ``<@U> denied`` / ``<@U> withdrew their approval (0 of 2)``."""
    who = mention(actor)
    template = _VOTE_WORDS.get(decision)
    text = template.format(who=who) if template else f"{who} voted {_user(decision, 50)}"
    if decision in ("approve", "withdraw-approve") and done is not None and total:
        text += f" ({done} of {total})" if done <= total else f" ({total} of {total} already)"
    return step_message(text)


def decision_reply(actor: str | None, decision: str | None, text: str = "") -> Message:
    """The outcome of an approval: approved (now carried out), denied, or expired."""
    who = mention(actor) if actor else "someone"
    match decision:
        case "approved":
            line = (
                f":ballot_box_with_check: Approved (last approval by {who}): carrying it out now."
            )
        case "denied":
            line = f":no_entry_sign: Denied by {who}: nothing was changed."
        case "expired":
            line = (
                ":hourglass: Expired before enough approvals: nothing was changed. "
                "Use *Request again* on the card to ask again."
            )
        case _:
            line = _user(text or f"Decision: {decision}", TEXT_MAX)
    return step_message(line)


def approval_needed_reply(
    request: OperationRequest, *, required: int | None, approval: ApprovalView | None = None
) -> Message:
    """The first reply on a production card: approval is needed, how many, from whom, until."""
    needed = required or (approval.required if approval else 1)
    who = f" from {approvers_text(approval.approvers)}" if approval else ""
    expires = approval.expires_at if approval and approval.expires_at else request.expires_at
    until = f" until {slack_date(expires)}" if expires else ""
    text = (
        f":raised_hand: {_user(request.spec.environment, 100)} is production: this needs "
        f"{needed} approval(s){who}{until} before anything changes."
    )
    if approval is not None:
        text += " " + _reaction_hint(approval)
        if approval.short_of_approvers:
            text += "\n" + approvers_short_text(request, approval)
    return step_message(text)


def info_reply(actor: str | None, text: str) -> Message:
    """A line worth keeping in the thread; ``text`` is escaped, ``actor`` a mention."""
    body = _user(text, 2000)
    return step_message(f"{mention(actor)} {body}" if actor else body)


def notice_message(request: OperationRequest, text: str, *, link: str | None) -> Message:
    """A notify-channel line: ``pause ended: active — staging/automation:x (thread)``."""
    spec = request.spec
    target = f"`{_user(spec.target_label(), 300)}` {_user(spec.name, 200)}"
    thread = f" <{link}|thread>" if link and link.startswith("https://") else ""
    body = f":bell: {target}: {_user(text, 1000)}{thread}"
    return _message(f"{escape(spec.target_label())}: {escape(text)}", [section(body)])


def reminder_reply(request: OperationRequest, text: str) -> Message:
    """A pause reminder with Resume now, Extend and Let it end."""
    spec = request.spec
    by_request = ButtonValue(request_id=request.id).dump()
    target = ButtonValue(
        environment=spec.environment,
        kind=spec.kind,
        key=spec.key,
        name=truncate(spec.name, 200),
        version=spec.version,
    ).dump()
    buttons = [
        button(
            "Resume now", action_id=ReminderAction.RESUME_NOW, value=by_request, style="primary"
        ),
        button("Extend…", action_id=ReminderAction.EXTEND, value=target),
        button("Let it end", action_id=ReminderAction.KEEP_PAUSED, value=by_request),
    ]
    body = f":alarm_clock: {_user(text, 2000)}"
    return _message(body, [section(body), ActionsBlock(elements=buttons)])


# -- ephemeral answers ----------------------------------------------------------------------


def _state_lines(state: TargetState) -> list[str]:
    target = state.target
    lines = [f"*{_user(target.name, 300)}*  `{_user(target.label(), 300)}`"]
    lines.append(f"State: *{_user(state.describe(), 300)}*")
    if state.schedule and state.schedule.ical_recur:
        lines.append(f"Schedule: `{_user(state.schedule.ical_recur, 300)}`")
    if state.next_run:
        lines.append(f"Next run: {slack_date(state.next_run)}")
    if state.last_run:
        lines.append(f"Last run: {slack_date(state.last_run)}")
    if state.population is not None:
        lines.append(f"Population: {state.population}")
    if state.execution_status:
        lines.append(f"Execution: {_user(state.execution_status, 300)}")
    if state.versions:
        versions = ", ".join(f"v{v.version} {v.state.value}" for v in state.versions)
        lines.append(f"Versions: {_user(versions, 1000)}")
    if target.kind.keyed_by_id:
        lines.append(f"_id {_user(target.key, 100)}_")
    return lines


def status_message(state: TargetState) -> Message:
    lines = _state_lines(state)
    text = f"{state.target.label()}: {state.describe()}"
    return _message(escape(text), [section("\n".join(lines))])


def _overflow(more: int, hint: str) -> ContextBlock:
    return context(f"…and {more} more. {hint}")


def list_message(
    states: Sequence[TargetState],
    *,
    title: str,
    watched: Mapping[tuple[str, TargetKind, str], PauseRecord] | None = None,
    now: datetime | None = None,
) -> Message:
    """One line per target; past what fits, "…and N more". ``watched`` (the pauses the bot
    watches, by environment, kind and key) adds who paused it and when the pause ends (and,
    given ``now``, the time left)."""
    head = section(f"*{_user(title, 500)}*")
    if not states:
        return _message(escape(title), [head, context("Nothing matched.")])
    blocks: list[Block] = [head]
    shown = states[:_LIST_ITEMS_MAX]
    for state in shown:
        t = state.target
        line = f"*{_user(t.name, 300)}*  `{_user(t.label(), 300)}`\n{_user(state.describe(), 300)}"
        pause = (watched or {}).get((t.environment, t.kind, t.key))
        if pause is not None:
            line += f" · paused by the bot for {mention(pause.paused_by)}"
            if pause.batch_id is not None:
                line += f" (batch `{_user(pause.batch_id, 100)}`)"
            if pause.ends_at is not None:
                line += f", ends {slack_date(pause.ends_at)}"
                if now is not None:
                    left = pause.ends_at - now
                    line += (
                        f" ({format_timedelta(left)} left)"
                        if left.total_seconds() >= 60
                        else " (due now)"
                    )
                line += f", then {pause.then.value}"
            else:
                line += ", no end set"
        blocks.append(section(line))
    if len(states) > len(shown):
        blocks.append(_overflow(len(states) - len(shown), "Narrow it with a kind or a filter."))
    return _message(f"{escape(title)} ({len(states)})", blocks)


def _detail(detail: dict[str, Any]) -> str:
    if not detail:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in detail.items())
    return f" · {_user(text, 300)}"


def history_message(target_label: str, events: Sequence[AuditEvent]) -> Message:
    """The audit trail of one target, newest first."""
    title = f"History of `{_user(target_label, 300)}`"
    if not events:
        return _message(
            f"History of {escape(target_label)}: nothing yet",
            [section(title), context("The bot has not acted on this target yet.")],
        )
    ordered = sorted(events, key=lambda e: (e.at, e.id), reverse=True)
    shown = ordered[:_HISTORY_ITEMS_MAX]
    lines = [
        f"{slack_date(e.at)} · {mention(e.actor)} · *{_user(e.action, 100)}* via {e.via.value}"
        + (f" · request `{_user(e.request_id, 100)}`" if e.request_id else "")
        + _detail(e.detail)
        for e in shown
    ]
    blocks: list[Block] = [section(title)]
    blocks.extend(section(chunk) for chunk in _chunks(lines)[: MESSAGE_BLOCKS_MAX - 2])
    if len(ordered) > len(shown):
        blocks.append(_overflow(len(ordered) - len(shown), "Only the newest are shown."))
    return _message(f"History of {escape(target_label)} ({len(events)} events)", blocks)


def help_message(topic: Verb | None = None) -> Message:
    text = escape(help_text(topic))
    blocks = [section(chunk) for chunk in _chunks(text.split("\n"))]
    return _message(text.split("\n", 1)[0], blocks[:MESSAGE_BLOCKS_MAX])


def error_message(text: str, usage: str | None = None) -> Message:
    """A refusal or failure in one sentence, with the usage line for bad input."""
    body = f":warning: {_user(text, 2000)}"
    blocks: list[Block] = [section(body)]
    if usage:
        blocks.append(context(f"Usage: `{_user(usage, 900)}`"))
    fallback = body if not usage else f"{body}\nUsage: {escape(usage)}"
    return _message(fallback, blocks)


def duplicate_request_message(*, channel: str | None, link: str | None) -> Message:
    """The same request is already waiting for approval: point at its card."""
    where = f"<{link}|its card>" if link and link.startswith("https://") else "its card"
    if channel and channel.isalnum():
        where += f" in <#{channel}>"
    body = (
        f":warning: The same request is already waiting for approval: see {where} and "
        "approve or deny it there. Nothing new was recorded."
    )
    return _message(body, [section(body)])


#: The answer to a slash command already received (a replay or a duplicate delivery).
DUPLICATE_COMMAND = "This command was already received and is handled once: nothing more was done."


def duplicate_command_message() -> Message:
    """A replayed slash command: it was handled the first time, nothing more is done."""
    return _message(DUPLICATE_COMMAND, [section(DUPLICATE_COMMAND)])


def _candidate_label(candidate: TargetSummary) -> str:
    if candidate.name and candidate.name.lower() != candidate.key.lower():
        return f"{candidate.kind.value} · {candidate.name} ({candidate.key})"
    return f"{candidate.kind.value} · {candidate.key}"


def _candidate_fallback(candidate: TargetSummary) -> str:
    if candidate.kind.keyed_by_id and candidate.name.strip():
        return f"{candidate.kind.value}:{escape(candidate.name)} (id {escape(candidate.key)})"
    return f"{candidate.kind.value}:{escape(candidate.key)}"


def _picker_value(candidate: TargetSummary, *, environment: str | None, command: str) -> str | None:
    try:
        return ButtonValue(
            environment=environment, kind=candidate.kind, key=candidate.key, command=command
        ).dump()
    except ValueError:  # too long to carry: the user types the qualified target instead
        return None


def picker_message(
    candidates: Sequence[TargetSummary],
    *,
    original_text: str,
    query: str | None = None,
    environment: str | None = None,
) -> Message:
    """The "several targets match" picker: one button per candidate re-runs the command.

    ``query`` is the name that matched several targets (default: the whole command).
    """
    shown_query = _user(query if query is not None else original_text, 200)
    head = f"Several targets match '{shown_query}': pick one"
    blocks: list[Block] = [section(head)]
    shown = candidates[:PICKER_MAX]
    for candidate in shown:
        status = f" · {_user(candidate.raw_status, 100)}" if candidate.raw_status else ""
        ref = f"`{candidate.kind.value}:{_user(candidate.key, 300)}`"
        if candidate.kind.keyed_by_id:
            ref = f"`{candidate.kind.value}` · _id {_user(candidate.key, 100)}_"
        text = f"*{_user(candidate.name, 300)}*  {ref}{status}"
        value = _picker_value(candidate, environment=environment, command=original_text)
        accessory = None
        if value is not None:
            accessory = button(
                truncate(f"Pick {_candidate_label(candidate)}", BUTTON_TEXT_MAX),
                action_id=PickerAction.CHOOSE,
                value=value,
            )
        blocks.append(section(text, accessory=accessory))
    if len(candidates) > len(shown):
        blocks.append(
            _overflow(
                len(candidates) - len(shown),
                escape("Or type a qualified target: `<env>/<kind>:<key>`."),
            )
        )
    fallback = head + ": " + ", ".join(_candidate_fallback(c) for c in candidates[:PICKER_MAX])
    return _message(fallback, blocks)
