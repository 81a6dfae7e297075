"""Every Slack identifier the bot uses: slash command, action_ids, block_ids, callback_ids.

One ``StrEnum`` per feature, so listeners register against members, never string literals.
Values are unique across all enums (a test checks); keep them stable: Slack keeps typed
modal input across ``views.update`` only while block_id and action_id stay the same.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from bot.domain import help as _help

__all__ = [
    "ALL_ID_ENUMS",
    "SLASH_COMMAND",
    "ApprovalAction",
    "BulkAction",
    "BulkBlock",
    "CardAction",
    "CardBlock",
    "HomeAction",
    "HomeBlock",
    "ModalAction",
    "ModalBlock",
    "ModalCallback",
    "PickerAction",
    "ReminderAction",
]

#: The one slash command (also in ``manifest.yml``).
SLASH_COMMAND: Final[str] = _help.SLASH_COMMAND


class CardAction(StrEnum):
    """Buttons on a request card."""

    RESUME_NOW = "card.resume_now"
    OPEN_PAUSE_MODAL = "card.open_pause_modal"


class CardBlock(StrEnum):
    STATUS = "card.status"
    APPROVAL = "card.approval"
    APPROVERS_SHORT = "card.approvers_short"
    VOTES = "card.votes"
    ACTIONS = "card.actions"


class HomeAction(StrEnum):
    """Buttons on the App Home tab."""

    RESUME_NOW = "home.resume_now"
    OPEN_PAUSE_MODAL = "home.open_pause_modal"


class HomeBlock(StrEnum):
    ACTIONS = "home.actions"


class PickerAction(StrEnum):
    """The "several targets match" picker: one button per candidate."""

    CHOOSE = "picker.choose"


class ModalCallback(StrEnum):
    PAUSE = "pause_modal"


class ModalBlock(StrEnum):
    """Input blocks of the pause modal (``view.state.values`` keys)."""

    ENVIRONMENT = "pause_modal.environment"
    TARGET = "pause_modal.target"
    PATTERN = "pause_modal.pattern"
    VERSION = "pause_modal.version"
    VERSION_NUMBER = "pause_modal.version_number"
    DAYS = "pause_modal.days"
    END = "pause_modal.end"
    THEN = "pause_modal.then"
    JOURNEY_OPTIONS = "pause_modal.journey_options"
    REASON = "pause_modal.reason"


class ModalAction(StrEnum):
    """Elements of the pause modal; ENVIRONMENT and TARGET dispatch block_actions."""

    ENVIRONMENT = "pause_modal.environment.select"
    TARGET = "pause_modal.target.select"
    PATTERN = "pause_modal.pattern.input"
    VERSION = "pause_modal.version.choice"
    VERSION_NUMBER = "pause_modal.version_number.input"
    DAYS = "pause_modal.days.input"
    END = "pause_modal.end.picker"
    THEN = "pause_modal.then.choice"
    JOURNEY_OPTIONS = "pause_modal.journey_options.checks"
    REASON = "pause_modal.reason.input"


class ApprovalAction(StrEnum):
    """Approve / Deny (and Request again) on a production request card."""

    APPROVE = "approval.approve"
    DENY = "approval.deny"
    REQUEST_AGAIN = "approval.request_again"  # on an expired or denied card


class ReminderAction(StrEnum):
    """Buttons on a "pause ends soon" reminder (used by the reminder flow)."""

    RESUME_NOW = "reminder.resume_now"
    EXTEND = "reminder.extend"
    KEEP_PAUSED = "reminder.keep_paused"


class BulkAction(StrEnum):
    """Buttons on a bulk request's card."""

    CONFIRM = "bulk.confirm"
    CANCEL = "bulk.cancel"
    APPROVE = "bulk.approve"
    DENY = "bulk.deny"
    RESUME = "bulk.resume_batch"


class BulkBlock(StrEnum):
    STATUS = "bulk.status"
    ACTIONS = "bulk.actions"


ALL_ID_ENUMS: Final[tuple[type[StrEnum], ...]] = (
    CardAction,
    CardBlock,
    HomeAction,
    HomeBlock,
    PickerAction,
    ModalCallback,
    ModalBlock,
    ModalAction,
    ApprovalAction,
    ReminderAction,
    BulkAction,
    BulkBlock,
)
