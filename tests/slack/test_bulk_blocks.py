"""The bulk card's Block Kit (pure): valid in every state, the right buttons for each, a
long set still fits one message, and the timed end's note names failures with codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.bulk import (
    Batch,
    BatchStatus,
    BatchTarget,
    BulkPattern,
    Progress,
    TargetStatus,
)
from bot.domain.models import PauseOptions, TargetKind, Verb
from bot.domain.requests import Via
from bot.slack.bulk_blocks import batch_card, end_note
from bot.slack.ids import BulkAction
from sandbox.slack.blockkit import check_message_blocks

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _batch(status: BatchStatus, targets: list[BatchTarget], **extra: Any) -> Batch:
    return Batch(
        id="b1",
        verb=Verb.PAUSE,
        pattern=BulkPattern(environment="prod", glob="bf25-*"),
        options=PauseOptions(duration=timedelta(days=2)),
        digest="d" * 64,
        status=status,
        requested_by="U0ALICE",
        via=Via.COMMAND,
        channel="C0OPS",
        card_ts="1.0",
        created_at=NOW,
        updated_at=NOW,
        targets=tuple(targets),
        **extra,
    )


def _target(n: int, status: TargetStatus = TargetStatus.PENDING, **extra: Any) -> BatchTarget:
    return BatchTarget(
        position=n,
        kind=TargetKind.AUTOMATION,
        key=f"bf25-send-{n:03d}",
        name=f"BF25 Send {n:03d}",
        target_id=str(n),
        state_before="active (6 Scheduled)",
        act=status is not TargetStatus.SKIPPED,
        status=status,
        **extra,
    )


def _actions(message_blocks: list[dict[str, Any]]) -> list[str]:
    return [
        str(el["action_id"])
        for b in message_blocks
        for el in b.get("elements", [])
        if isinstance(el, dict) and el.get("type") == "button"
    ]


@pytest.mark.parametrize(
    ("status", "production", "actions"),
    [
        (BatchStatus.PREVIEWED, False, [BulkAction.CONFIRM, BulkAction.CANCEL]),
        (BatchStatus.PREVIEWED, True, [BulkAction.CONFIRM, BulkAction.CANCEL]),
        (BatchStatus.AWAITING_APPROVAL, True, [BulkAction.APPROVE, BulkAction.DENY]),
        (BatchStatus.EXECUTING, False, []),
        (BatchStatus.CANCELLED, False, []),
    ],
)
def test_each_state_has_its_buttons(
    status: BatchStatus, production: bool, actions: list[str]
) -> None:
    card = batch_card(_batch(status, [_target(1), _target(2)]), production=production)
    assert check_message_blocks(card.blocks) == []
    assert _actions(card.blocks) == actions


def test_the_result_table_and_resume_batch() -> None:
    targets = [
        _target(1, TargetStatus.DONE, state_after="paused (4 Paused)", holds_pause=True),
        _target(2, TargetStatus.FAILED, attempts=3, error="SFMC is rate limiting", error_code="17"),
        _target(3, TargetStatus.SKIPPED, skip_reason="already paused"),
    ]
    card = batch_card(_batch(BatchStatus.DONE, targets), production=True)
    assert check_message_blocks(card.blocks) == []
    text = "\n".join(str(b.get("text", {}).get("text", "")) for b in card.blocks)
    assert "[##########!!!!!!!!!!]" in text  # the bar: half done, half failed
    assert "1 done, 1 failed, 0 left" in text
    assert "FAILED after 3 tries: code 17: SFMC is rate limiting" in text
    assert "skipped: already paused" in text
    assert _actions(card.blocks) == [BulkAction.RESUME]


def test_a_progress_card_shows_the_latest_counts() -> None:
    card = batch_card(
        _batch(BatchStatus.EXECUTING, [_target(n) for n in range(10)]),
        production=False,
        progress=Progress(done=4, failed=1, left=5),
    )
    assert "4 done, 1 failed, 5 left" in card.blocks[1]["text"]["text"]


def test_five_hundred_targets_fit_one_message() -> None:
    card = batch_card(
        _batch(BatchStatus.PREVIEWED, [_target(n) for n in range(500)]), production=True
    )
    assert check_message_blocks(card.blocks) == []
    assert len(card.blocks) <= 50
    assert any("and 300 more" in str(b.get("text", {})) for b in card.blocks)


def test_the_end_note_counts_and_lists_failures() -> None:
    source = _batch(BatchStatus.DONE, [_target(1)])
    ending = _batch(
        BatchStatus.DONE,
        [
            _target(1, TargetStatus.DONE, state_after="active"),
            _target(2, TargetStatus.FAILED, error="refused", error_code="50100"),
        ],
        source_batch_id="b1",
    ).model_copy(update={"verb": Verb.RESUME, "id": "b2"})
    note = end_note(ending, source)
    assert check_message_blocks(note.blocks) == []
    assert "1 resumed (verified), 1 failed" in note.text
    assert "code 50100: refused" in str(note.blocks)


def test_the_card_says_how_many_approvals_the_policy_needs() -> None:
    from bot.domain.approvals import Decision, Vote

    vote = Vote(voter="U0ADMIN", decision=Decision.APPROVE, via=Via.BUTTON, at=datetime.now(UTC))
    two = _batch(BatchStatus.AWAITING_APPROVAL, [_target(1)], votes=(vote,))
    text = batch_card(two, production=True, required=2).blocks[1]["text"]["text"]
    assert "Awaiting 2 approvals" in text
    assert "(1 of 2 so far)" in text
    assert "one approval" not in text
    preview = batch_card(_batch(BatchStatus.PREVIEWED, [_target(1)]), production=True, required=3)
    assert "asks for 3 approvals" in preview.blocks[1]["text"]["text"]
    one = batch_card(_batch(BatchStatus.AWAITING_APPROVAL, [_target(1)]), production=True)
    assert "Awaiting one approval" in one.blocks[1]["text"]["text"]


def test_skip_reasons_are_worded_from_their_codes_and_old_sentences_shown_as_they_are() -> None:
    from bot.domain.bulk import Skip, SkipCode

    targets = [
        _target(1, TargetStatus.SKIPPED, skip_reason=Skip(code=SkipCode.ALREADY_PAUSED)),
        _target(2, TargetStatus.SKIPPED, skip_reason=Skip(code=SkipCode.BUSY, request_id="r1")),
        _target(
            3,
            TargetStatus.SKIPPED,
            skip_reason=Skip(code=SkipCode.NOT_PAUSED, state="active", changed=True),
        ),
        _target(4, TargetStatus.SKIPPED, skip_reason="an old <sentence>"),
    ]
    card = batch_card(_batch(BatchStatus.DONE, targets), production=False)
    text = "\n".join(str(b.get("text", {}).get("text", "")) for b in card.blocks)
    assert "skipped: already paused" in text
    assert "skipped: busy: request r1 is changing it" in text
    assert "skipped: changed since the preview: not paused (active)" in text
    assert "skipped: an old &lt;sentence&gt;" in text  # escaped for Slack
