"""The App Home tab: what is paused right now, with time left and "Resume now" (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, DividerBlock
from slack_sdk.models.views import View

from bot.domain.models import ThenAction, target_label
from bot.domain.requests import PauseRecord
from bot.slack.blocks import (
    button,
    context,
    escape,
    header,
    mention,
    section,
    slack_date,
    time_left,
    truncate,
)
from bot.slack.ids import SLASH_COMMAND, BulkAction, HomeAction, HomeBlock
from bot.slack.metadata import ButtonValue

__all__ = ["HOME_BLOCKS_MAX", "home_view", "pause_label", "time_left"]

HOME_BLOCKS_MAX: Final = 100
_BLOCKS_PER_PAUSE = 2  # a divider and a section

_THEN: Final[dict[ThenAction, str]] = {
    ThenAction.RESUME: "then it resumes",
    ThenAction.STOP: "then the journey version is stopped",
    ThenAction.KEEP: "then it stays paused",
}


def pause_label(pause: PauseRecord) -> str:
    """``prod/journey:welcome v3`` (or ``(all versions)``), like a request's target label."""
    version = ""
    if pause.all_versions:
        version = " (all versions)"
    elif pause.version is not None:
        version = f" v{pause.version}"
    return target_label(pause.environment, pause.kind, pause.key, pause.name or "", version)


def _pause_text(pause: PauseRecord, *, now: datetime, user_id: str) -> str:
    who = mention(pause.paused_by) + (" (you)" if pause.paused_by == user_id else "")
    name = truncate(escape(pause.name or pause.key), 300)
    batch = f" · batch `{escape(pause.batch_id)}`" if pause.batch_id else ""
    lines = [
        f"*{name}*  `{truncate(escape(pause_label(pause)), 400)}`",
        f"{truncate(escape(pause.environment), 100)} · paused by {who}"
        f" · since {slack_date(pause.started_at)}{batch}",
    ]
    if pause.ends_at is None:
        lines.append("*No end set*: it stays paused until someone resumes it")
    else:
        left = time_left(pause.ends_at, now=now)
        lines.append(f"Ends {slack_date(pause.ends_at)} · *{left}* · {_THEN[pause.then]}")
    return "\n".join(lines)


def _resume_button(pause: PauseRecord) -> ButtonElement:
    if pause.batch_id is not None:  # a bulk pause: put back its whole set (a preview first)
        return button(
            "Resume batch",
            action_id=BulkAction.RESUME,
            value=pause.batch_id,
        )
    confirm = ConfirmObject(
        title="Resume now?",
        text=truncate(f"Resume {escape(pause_label(pause))} now?", 300),
        confirm="Resume",
        deny="Cancel",
    )
    return button(
        "Resume now",
        action_id=HomeAction.RESUME_NOW,
        value=ButtonValue(request_id=pause.request_id).dump(),
        confirm=confirm,
    )


def _order_key(pause: PauseRecord) -> tuple[bool, float, float, int]:
    # Ending soonest (overdue first) on top; pauses without an end last, oldest first.
    ends = pause.ends_at.timestamp() if pause.ends_at is not None else 0.0
    return (pause.ends_at is None, ends, pause.started_at.timestamp(), pause.id)


def home_view(*, pauses: Sequence[PauseRecord], now: datetime, user_id: str) -> dict[str, Any]:
    """The Home tab view for ``views.publish`` (at most 100 blocks)."""
    active = sorted((p for p in pauses if p.active), key=_order_key)
    blocks: list[Block] = [
        header(":double_vertical_bar: Paused right now"),
        ActionsBlock(
            block_id=HomeBlock.ACTIONS,
            elements=[button("Pause…", action_id=HomeAction.OPEN_PAUSE_MODAL, style="primary")],
        ),
    ]
    if not active:
        blocks.append(section("Nothing is paused right now."))
        blocks.append(context(f"Pause something with the button above or `{SLASH_COMMAND} pause`."))
    else:
        count = f"{len(active)} paused" if len(active) != 1 else "1 paused"
        blocks.append(context(f"{count} · as of {slack_date(now)}"))
        room = (HOME_BLOCKS_MAX - len(blocks)) // _BLOCKS_PER_PAUSE
        if len(active) > room:
            room = (HOME_BLOCKS_MAX - len(blocks) - 1) // _BLOCKS_PER_PAUSE
        shown = active[:room]
        for pause in shown:
            blocks.append(DividerBlock())
            blocks.append(
                section(
                    _pause_text(pause, now=now, user_id=user_id),
                    accessory=_resume_button(pause),
                )
            )
        if len(active) > len(shown):
            blocks.append(
                context(
                    f"…and {len(active) - len(shown)} more paused:"
                    f" `{SLASH_COMMAND} list` shows them all."
                )
            )
    return View(type="home", blocks=blocks).to_dict()
