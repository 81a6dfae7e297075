"""Crash points for tests: end the process at once at a named point of its work.

Tests that check what a restart does after a crash (SIGKILL, OOM, a lost host) set
``AUTOMATION_BOT_TEST_CRASH_AT`` in the bot process they start, e.g. to
``after_executing_audit``; at that point the process ends with :func:`os._exit` (no
clean-up of any kind runs, as with SIGKILL). Unset, as in every real deployment, a crash
point does nothing.
"""

from __future__ import annotations

import os
from enum import StrEnum

CRASH_AT_ENV = "AUTOMATION_BOT_TEST_CRASH_AT"
#: The exit status of a process ended at a crash point (that of a SIGKILL, 128 + 9).
CRASHED_EXIT = 137


class CrashPoint(StrEnum):
    AFTER_VOTE = "after_vote"  # a vote is recorded; nothing acted on it yet
    AFTER_EXECUTING_AUDIT = "after_executing_audit"  # executing; the call is not sent
    BEFORE_PROVIDER_CALL = "before_provider_call"  # marked "may have been sent"; not sent
    BEFORE_CARD_POST = "before_card_post"  # a request is recorded; its card is not posted
    AFTER_OUTBOX_COMMIT = "after_outbox_commit"  # Slack messages written; none sent yet
    AFTER_SLACK_SEND = "after_slack_send"  # a message is in Slack; its row not marked sent
    AFTER_SETTLED = "after_settled"  # a request settled (verified or not, or failed)


def crash_point(point: CrashPoint) -> None:
    """End the process here when ``AUTOMATION_BOT_TEST_CRASH_AT`` names ``point``."""
    if os.environ.get(CRASH_AT_ENV) == point.value:
        os._exit(CRASHED_EXIT)
