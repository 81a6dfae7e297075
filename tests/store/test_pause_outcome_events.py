"""How a pause ended is stored as its event (kind and data), not as a sentence; rows written
before that hold the sentence and still load and render (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot import render
from bot.domain.events import Late, PauseEnded
from bot.domain.models import NormalState
from bot.domain.requests import PauseOutcome
from bot.slack.blocks import request_card
from bot.slack.messages import pause_outcome_text
from bot.store.models import RequestRow
from bot.store.repository import Store
from tests.store.test_repository import new_request

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


async def test_a_stored_pause_end_loads_back_as_its_event(store: Store) -> None:
    request = await new_request(store)
    event = PauseEnded(
        how="resumed",
        label="daily-welcome-send",
        state="active (6 Scheduled)",
        normal=NormalState.ACTIVE,
        late=Late(by=timedelta(minutes=7), bot_was_down=False),
    )
    await store.set_pause_outcome(request.id, PauseOutcome(at=AT, event=event))

    stored = await store.get_request(request.id)
    assert stored is not None
    assert stored.pause_outcome == PauseOutcome(at=AT, event=event)
    async with store.engine.connect() as conn:
        raw = (await conn.execute(RequestRow.__table__.select())).mappings().one()
    kept = raw["pause_outcome"]
    assert kept["event"]["kind"] == "pause_ended"
    assert kept["event"]["how"] == "resumed"
    assert kept["event"]["late"] == {"by": "PT7M", "bot_was_down": False}
    assert kept.get("text") is None  # data, not a sentence
    assert pause_outcome_text(stored.pause_outcome) == "resumed: active (6 Scheduled) (verified)"


async def test_an_old_row_with_its_sentence_still_loads_and_renders(store: Store) -> None:
    request = await new_request(store)
    old = {
        "at": AT.isoformat(),
        "text": "time is up; it stays paused as asked",
        "still_paused": True,
    }
    async with store.engine.begin() as conn:
        await conn.execute(
            update(RequestRow).where(RequestRow.id == request.id).values(pause_outcome=old)
        )

    stored = await store.get_request(request.id)
    assert stored is not None
    assert stored.pause_outcome is not None
    assert stored.pause_outcome.event is None
    assert stored.pause_outcome.still_paused
    assert pause_outcome_text(stored.pause_outcome) == "time is up; it stays paused as asked"
    card = request_card(stored, now=AT)
    assert "time is up; it stays paused as asked" in str(card.blocks)
    assert "pause: time is up; it stays paused as asked" in render.card_text(stored)
