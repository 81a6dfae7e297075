"""Block Kit for bulk requests (pure): one card per batch, edited in place from its
preview (Confirm / Cancel) through its approval (Approve / Deny) and a progress bar to the
per-target result table (Resume batch), and the thread note of a timed end."""

from __future__ import annotations

from typing import Final

from slack_sdk.models.blocks import ActionsBlock, Block, ConfirmObject, PlainTextObject

from bot.domain.approvals import Decision
from bot.domain.bulk import Batch, BatchPlan, BatchStatus, PlanSummary, Progress, TargetStatus
from bot.domain.models import Verb
from bot.render_bulk import approvals_text, progress_bar, skip_text
from bot.slack.blocks import (
    MESSAGE_BLOCKS_MAX,
    TEXT_MAX,
    Message,
    _chunks,
    _message,
    button,
    context,
    escape,
    header,
    section,
)
from bot.slack.ids import BulkAction, BulkBlock

#: Rows of the target table on a card (the rest is summed up in one line).
TABLE_ROWS_MAX: Final = 200


_HEAD: Final[dict[Verb, str]] = {
    Verb.PAUSE: ":double_vertical_bar: Bulk pause",
    Verb.RESUME: ":arrow_forward: Bulk resume",
    Verb.STOP: ":black_square_for_stop: Bulk stop",
}


def _status(batch: Batch, progress: Progress | None, production: bool, required: int) -> str:
    acting = len(batch.acting)
    match batch.status:
        case BatchStatus.PREVIEWED:
            then = f"asks for {approvals_text(required)}" if production else "acts on them"
            return (
                f":mag: *Preview*: nothing was changed yet. Confirm {then}: exactly these "
                f"{acting} target(s); a set that changes meanwhile is refused."
            )
        case BatchStatus.AWAITING_APPROVAL:
            until = f" until {batch.expires_at:%Y-%m-%d %H:%M} UTC" if batch.expires_at else ""
            approved = sum(1 for v in batch.votes if v.decision is Decision.APPROVE)
            so_far = f" ({approved} of {required} so far)" if required > 1 else ""
            return (
                f":hourglass_flowing_sand: *Awaiting {approvals_text(required)}*{so_far}{until}: "
                f"it covers exactly these {acting} target(s)."
            )
        case BatchStatus.EXECUTING:
            return f":gear: *Working*: `{progress_bar(progress or batch.progress())}`"
        case BatchStatus.DONE:
            counts = batch.progress()
            icon = ":warning:" if counts.failed else ":white_check_mark:"
            return f"{icon} *Done*: `{progress_bar(counts)}`"
        case BatchStatus.CANCELLED:
            return ":no_entry_sign: *Cancelled*: nothing was changed."
        case BatchStatus.DENIED:
            return ":x: *Denied*: nothing was changed."
        case BatchStatus.EXPIRED:
            return ":x: *Expired* before it was confirmed or approved: nothing was changed."
    return batch.status.value  # pragma: no cover


def _rows(batch: Batch) -> list[str]:
    verb = batch.verb.value
    rows: list[str] = []
    for t in batch.targets[:TABLE_ROWS_MAX]:
        label = t.label(batch.environment)
        match t.status:
            case TargetStatus.DONE:
                rows.append(f"✓ {label}: {t.state_before} → {t.state_after} (verified)")
            case TargetStatus.FAILED:
                code = f"code {t.error_code}: " if t.error_code else ""
                rows.append(f"✗ {label}: FAILED after {t.attempts} tries: {code}{t.error}")
            case TargetStatus.SKIPPED:
                rows.append(f"- {label}: {t.state_before}; skipped: {skip_text(t.skip_reason)}")
            case TargetStatus.PENDING:
                rows.append(f"• {label}: {t.state_before} → will {verb}")
    if len(batch.targets) > TABLE_ROWS_MAX:
        rows.append(f"… and {len(batch.targets) - TABLE_ROWS_MAX} more")
    return rows


def _buttons(batch: Batch, production: bool) -> list[Block]:
    match batch.status:
        case BatchStatus.PREVIEWED if batch.acting:
            label = "Ask for approval" if production else f"Confirm: {batch.verb.value} all"
            confirm = ConfirmObject(
                title=PlainTextObject(text="Confirm the batch"),
                text=PlainTextObject(
                    text=f"{batch.verb.value.capitalize()} {len(batch.acting)} target(s)?"
                ),
                confirm=PlainTextObject(text="Yes"),
                deny=PlainTextObject(text="No"),
            )
            elements = [
                button(
                    label,
                    action_id=BulkAction.CONFIRM,
                    value=batch.id,
                    style="primary",
                    confirm=confirm,
                ),
                button("Cancel", action_id=BulkAction.CANCEL, value=batch.id),
            ]
        case BatchStatus.PREVIEWED:
            elements = [button("Cancel", action_id=BulkAction.CANCEL, value=batch.id)]
        case BatchStatus.AWAITING_APPROVAL:
            elements = [
                button("Approve", action_id=BulkAction.APPROVE, value=batch.id, style="primary"),
                button("Deny", action_id=BulkAction.DENY, value=batch.id, style="danger"),
            ]
        case BatchStatus.DONE if batch.verb is Verb.PAUSE and any(
            t.holds_pause for t in batch.targets
        ):
            elements = [button("Resume batch", action_id=BulkAction.RESUME, value=batch.id)]
        case _:
            return []
    return [ActionsBlock(elements=elements, block_id=BulkBlock.ACTIONS)]


def batch_card(
    batch: Batch,
    *,
    production: bool,
    plan: BatchPlan | PlanSummary | None = None,
    progress: Progress | None = None,
    required: int = 1,
) -> Message:
    """The one card of a batch, in whatever state it is (``progress``: the latest counts
    while it executes; ``plan``: the preview's counts per kind and provider calls)."""
    head = f"{_HEAD.get(batch.verb, batch.verb.value)} {batch.pattern.label()}"
    if batch.source_batch_id is not None:
        head = f"{_HEAD[Verb.RESUME]}: batch {batch.source_batch_id}"
    blocks: list[Block] = [
        header(head),
        section(_status(batch, progress, production, required), block_id=BulkBlock.STATUS),
    ]
    notes = [f"batch `{batch.id}` · asked by <@{batch.requested_by}>"]
    if plan is not None:
        kinds = ", ".join(
            f"{kind.value}: {c.act}" + (f" (+{c.skip} skipped)" if c.skip else "")
            for kind, c in sorted(plan.counts.items())
        )
        calls = sum(plan.provider_calls.values())
        notes.append(f"{kinds} · at least {calls} provider calls")
    if batch.ends_at is not None and batch.options is not None:
        notes.append(f"ends {batch.ends_at:%Y-%m-%d %H:%M} UTC, then {batch.options.then.value}")
    blocks.append(context(*notes))
    room = MESSAGE_BLOCKS_MAX - len(blocks) - 1
    chunks = _chunks((escape(r) for r in _rows(batch)), limit=TEXT_MAX - 8)
    for chunk in chunks[:room]:
        blocks.append(section(f"```{chunk}```"))
    blocks += _buttons(batch, production)
    text = f"{head}: {batch.status.value}"
    return _message(text, blocks)


def end_note(ending: Batch, source: Batch | None = None) -> Message:
    """One thread note when a timed bulk pause ends (its ending batch is done; ``source``:
    the batch whose pause ended, the ending's source by default)."""
    source_id = source.id if source is not None else ending.source_batch_id
    counts = ending.progress()
    icon = ":warning:" if counts.failed else ":alarm_clock:"
    verb = "stopped" if ending.verb is Verb.STOP else "resumed"
    text = (
        f"{icon} The timed pause of batch `{source_id}` ended: {counts.done} {verb} "
        f"(verified), {counts.failed} failed, {counts.skipped} no longer paused."
    )
    failed = [
        f"✗ {t.label(ending.environment)}: code {t.error_code or '-'}: {t.error}"
        for t in ending.targets
        if t.status is TargetStatus.FAILED
    ]
    blocks: list[Block] = [section(text)]
    for chunk in _chunks((escape(f) for f in failed), limit=TEXT_MAX - 8)[:10]:
        blocks.append(section(f"```{chunk}```"))
    return _message(text, blocks)
