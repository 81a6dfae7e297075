"""The bulk card's buttons: one table of action -> command, covering every button."""

from __future__ import annotations

from bot.slack.bulk import BUTTONS
from bot.slack.ids import BulkAction


def test_every_bulk_button_has_one_command() -> None:
    assert set(BUTTONS) == {a.value for a in BulkAction}
    assert len(set(BUTTONS.values())) == len(BulkAction)
