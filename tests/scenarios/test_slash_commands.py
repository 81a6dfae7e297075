"""Slash commands through the real endpoint, signed like Slack signs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.requests import RequestStatus
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.scenarios.conftest import BotUnderTest, wait_for


def _card_texts(bot: BotUnderTest) -> list[str]:
    return [c.get("text", "") for c in bot.cards()]


def test_pause_posts_a_card_and_a_verified_thread(bot: BotUnderTest) -> None:
    delivery = bot.driver.slash_command("pause automation:daily-welcome-send for 3d")
    assert delivery.status_code == 200
    card = wait_for(lambda: bot.cards(), what="a card")[0]
    thread = wait_for(
        lambda: [t for t in bot.thread_texts("C0OPS", card["ts"]) if "verified" in t.lower()],
        what="the verified reply",
    )
    assert thread

    def done() -> bool:  # card edits are paced apart from thread replies
        latest = bot.slack.message("C0OPS", card["ts"])
        return "Done" in latest["text"] or "verified" in str(latest["blocks"]).lower()

    wait_for(done, what="the card to show the verified result")
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


def test_status_answers_ephemerally(bot: BotUnderTest) -> None:
    bot.driver.slash_command("status journey:welcome-series")
    texts = wait_for(bot.reply_texts, what="an ephemeral answer")
    assert "welcome-series" in texts[0]
    assert bot.replies()[0]["response_type"] == "ephemeral"
    bot.settle()
    assert bot.cards() == []


def test_bad_input_is_acked_with_usage(bot: BotUnderTest) -> None:
    delivery = bot.driver.slash_command("pause journey:x for 3 fortnights")
    assert delivery.status_code == 200
    body = delivery.json()
    assert body["response_type"] == "ephemeral"
    assert "Usage" in str(body) or "usage" in str(body)
    assert bot.cards() == []


def test_help_is_instant(bot: BotUnderTest) -> None:
    delivery = bot.driver.slash_command("help pause")
    assert delivery.status_code == 200
    assert "pause" in delivery.text


def test_unknown_target_gets_suggestions(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause hourly-lead-sinc")
    texts = wait_for(bot.reply_texts, what="an error")
    assert 'automation:"Hourly Lead Sync"' in texts[0]
    bot.settle()
    assert bot.cards() == []


def test_a_wholly_quoted_kind_and_name_is_used_as_kind_and_name(bot: BotUnderTest) -> None:
    bot.driver.slash_command('pause "automation:Daily Welcome Email Send" for 1d')
    card = wait_for(lambda: bot.cards() or bot.reply_texts(), what="a card or an error")[0]
    assert isinstance(card, dict), card  # not an error text
    wait_for(
        lambda: [t for t in bot.thread_texts("C0OPS", card["ts"]) if "verified" in t.lower()],
        what="the verified reply",
    )
    assert bot.providers.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


def test_refused_transition_names_the_state(bot: BotUnderTest) -> None:
    bot.driver.slash_command("resume journey:cart-abandonment")
    texts = wait_for(bot.reply_texts, what="an error")
    assert "Published" in texts[0]


def test_bad_signature_and_stale_timestamp_are_refused(bot: BotUnderTest) -> None:
    wrong = bot.driver.slash_command("pause hourly-lead-sync", signing_secret_override="nope")
    stale = bot.driver.slash_command("pause hourly-lead-sync", timestamp_offset=-600)
    assert wrong.status_code == 401
    assert stale.status_code == 401
    bot.settle()
    assert bot.cards() == []
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 6


def test_slow_provider_still_acks_fast(bot: BotUnderTest) -> None:
    bot.providers.sfmc.knobs.set(latency_ms=5000)
    delivery = bot.driver.slash_command("pause automation:hourly-lead-sync for 1d")
    assert delivery.status_code == 200
    assert delivery.elapsed_s < 1.0
    bot.providers.sfmc.knobs.reset()


def test_production_waits_for_approval_on_a_card(bot: BotUnderTest) -> None:
    bot.driver.slash_command("pause prod/daily-welcome-send for 1d")
    card = wait_for(lambda: bot.cards(), what="a pending card")[0]
    assert "Waiting for approval" in card["text"]
    assert "Approval needed" in str(card["blocks"])
    wait_for(lambda: bot.thread_texts("C0OPS", card["ts"]), what="the approval ask")
    bot.settle()
    assert bot.reply_texts() == []
    assert bot.providers.sfmc.automation(PROD_MID, "daily-welcome-send").status == 6


def test_restart_between_request_and_completion_picks_up(bot: BotUnderTest) -> None:
    import asyncio

    from bot.domain.commands import PauseCommand, TargetRef
    from bot.domain.models import PauseOptions, TargetKind
    from bot.domain.requests import Via
    from bot.service.operations import OperationService
    from bot.service.requests import spec_for
    from bot.store import Store
    from providers.registry import ProviderRegistry

    async def record_only() -> str:
        # recorded two minutes before the restart, by a process that died meanwhile (a
        # younger request may still be in the hands of a live replica: it is left to it)
        registry = ProviderRegistry(bot.config)
        earlier = datetime.now(UTC) - timedelta(minutes=2)
        store = Store.from_url(bot.config.database_url, clock=lambda: earlier)
        try:
            ops = OperationService(environments=registry.environment)
            command = PauseCommand(
                target=TargetRef(kind=TargetKind.AUTOMATION, name="hourly-lead-sync"),
                options=PauseOptions(),
            )
            before = await ops.check(command)
            request = await store.create_request(
                spec=spec_for(command, before),
                requested_by="U0ALICE",
                via=Via.COMMAND,
                reason=None,
                channel=None,
            )
            return request.id
        finally:
            await registry.aclose()
            await store.close()

    request_id = asyncio.run(record_only())
    bot.restart()

    async def status() -> RequestStatus | None:
        from bot.store import Store

        store = Store.from_url(bot.config.database_url)
        try:
            request = await store.get_request(request_id)
            return request.status if request else None
        finally:
            await store.close()

    wait_for(lambda: asyncio.run(status()) is RequestStatus.SUCCEEDED, what="recovery")
    assert bot.providers.sfmc.automation(STAGING_MID, "hourly-lead-sync").status == 4


def test_a_bare_name_that_is_a_journey_is_refused_over_14_days(bot: BotUnderTest) -> None:
    """Found by name, a journey still pauses for 14 days at most: refused up front with the
    usage, like 'for 400d', and nothing is recorded (no card, no history)."""
    later = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%MZ")
    for text in ("pause welcome-series for 20d", f"pause welcome-series until {later}"):
        bot.driver.slash_command(text)
        answer = wait_for(
            lambda: [t for t in bot.reply_texts() if "14 days" in t], what=f"refusal of {text}"
        )[-1]
        assert "Journey Builder pauses a journey for at most 14 days" in answer
        assert answer.count("Usage") == 1, answer
    assert bot.cards() == []
    bot.driver.slash_command("history journey:welcome-series")
    history = wait_for(
        lambda: [t for t in bot.reply_texts() if "history" in t.lower()], what="the history"
    )
    assert "nothing yet" in history[0]
    assert bot.providers.sfmc.journey(STAGING_MID, "welcome-series").status == "Published"
