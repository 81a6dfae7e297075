"""Bulk requests as plain text (console, CLI): the preview, a progress bar and the
per-target result table (pure functions)."""

from __future__ import annotations

from bot.domain.bulk import Batch, BatchPlan, BatchStatus, Progress, Skip, SkipCode, TargetStatus
from bot.domain.models import TargetKind

#: Width of the progress bar, in characters.
BAR_WIDTH = 20


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _kinds(counts: dict[TargetKind, int]) -> str:
    return ", ".join(f"{kind.value} {n}" for kind, n in sorted(counts.items()))


def approvals_text(required: int) -> str:
    """``one approval``, ``2 approvals``: what a production batch waits for."""
    return "one approval" if required == 1 else f"{required} approvals"


def skip_text(reason: Skip | str | None) -> str:
    """Why a target is skipped, in words (a sentence stored by an older batch as it is)."""
    if reason is None:
        return ""
    if isinstance(reason, str):
        return reason
    match reason.code:
        case SkipCode.UNSUPPORTED:
            verb = reason.verb.value if reason.verb is not None else "do"
            why = reason.detail or f"{reason.product} cannot {verb} it"
        case SkipCode.NO_STOP_AT_END:
            why = f"{reason.product} cannot end a pause with a stop ('then stop')"
        case SkipCode.PAUSE_TOO_LONG:
            why = f"{reason.product} pauses a {reason.noun} for at most {reason.days}d"
        case SkipCode.ALREADY_PAUSED:
            why = "already paused"
        case SkipCode.ALREADY_STOPPED:
            why = "already stopped"
        case SkipCode.NOT_PAUSED:
            why = f"not paused ({reason.state})"
        case SkipCode.WRONG_STATE:
            verb = reason.verb.value if reason.verb is not None else "act"
            why = f"cannot {verb} from {reason.state}"
        case SkipCode.BUSY:
            why = f"busy: request {reason.request_id} is changing it"
        case _:  # pragma: no cover
            why = reason.code.value
    return f"changed since the preview: {why}" if reason.changed else why


def preview_text(batch: Batch, found: BatchPlan, *, production: bool, required: int = 1) -> str:
    """What a bulk command will do, target by target, before anything is changed."""
    verb = found.verb.value
    acting, skipped = found.acting, found.skipped
    lines = [f"Batch {batch.id}: {batch.describe()} (preview: nothing was changed yet)"]
    per_kind = "; ".join(
        f"{kind.value}: {c.act} to {verb}" + (f", {c.skip} skipped" if c.skip else "")
        for kind, c in sorted(found.counts.items())
    )
    lines.append(f"  {len(found.targets)} matched, {len(acting)} to {verb}: {per_kind}")
    calls = found.provider_calls
    if calls:
        lines.append(
            f"  provider calls: at least {sum(calls.values())} ({_kinds(calls)}):"
            f" a read, the {verb} and a read-back per target"
        )
    rows: list[tuple[str, ...]] = [("TARGET", "STATE", "WILL")]
    for t in found.targets:
        will = verb if t.act else f"skip: {skip_text(t.skip_reason)}"
        rows.append((t.label(found.environment), t.described, will))
    lines += _table(rows)
    if not acting:
        lines.append("  Nothing to do: every matched target is skipped.")
    elif production:
        lines.append(
            f"  On confirmation it goes to {approvals_text(required)} that covers exactly this set."
        )
    if skipped and acting:
        lines.append(f"  {len(skipped)} skipped target(s) are left alone.")
    return "\n".join(lines)


def progress_bar(progress: Progress, width: int = BAR_WIDTH) -> str:
    """``[######!!------] 6 done, 2 failed, 6 left``: done, failed and left in one bar."""
    total = max(progress.total, 1)
    done = round(width * progress.done / total)
    failed = round(width * progress.failed / total)
    if progress.failed and not failed:
        failed = 1
    done = min(done, width - failed)
    bar = "#" * done + "!" * failed + "-" * (width - done - failed)
    return f"[{bar}] {progress.done} done, {progress.failed} failed, {progress.left} left"


def started_text(batch: Batch, *, required: int = 1) -> str:
    if batch.status is BatchStatus.AWAITING_APPROVAL:
        until = (
            f" until {batch.expires_at:%Y-%m-%d %H:%M} UTC" if batch.expires_at is not None else ""
        )
        return (
            f"Batch {batch.id}: {batch.describe()} awaits {approvals_text(required)}{until} "
            "covering its "
            f"{len(batch.acting)} target(s). Nothing was changed yet."
        )
    return f"Batch {batch.id}: {batch.describe()} is {batch.status.value}. " + progress_bar(
        batch.progress()
    )


def done_text(batch: Batch) -> str:
    """The finished batch: its counts and one row per target (failures with their
    provider codes)."""
    progress = batch.progress()
    lines = [f"Batch {batch.id}: {batch.describe()}: {batch.status.value}", progress_bar(progress)]
    if progress.skipped:
        lines[-1] += f", {progress.skipped} skipped"
    rows: list[tuple[str, ...]] = [("TARGET", "RESULT", "BEFORE", "AFTER", "DETAIL")]
    for t in batch.targets:
        if t.status is TargetStatus.DONE:
            result, detail = "done (verified)", ""
        elif t.status is TargetStatus.FAILED:
            code = f"code {t.error_code}: " if t.error_code else ""
            tries = f" after {t.attempts} tries" if t.attempts > 1 else ""
            result, detail = "FAILED", f"{code}{t.error or ''}{tries}"
        elif t.status is TargetStatus.SKIPPED:
            result, detail = "skipped", skip_text(t.skip_reason)
        else:
            result, detail = t.status.value, ""
        rows.append(
            (t.label(batch.environment), result, t.state_before, t.state_after or "", detail)
        )
    lines += _table(rows)
    if batch.verb.value == "pause" and any(t.holds_pause for t in batch.targets):
        if batch.ends_at is not None and batch.options is not None:
            lines.append(
                f"  The pause ends {batch.ends_at:%Y-%m-%d %H:%M} UTC for the whole batch"
                f" (then {batch.options.then.value})."
            )
        lines.append(f"  Put back exactly these: resume batch {batch.id}")
    return "\n".join(lines)
