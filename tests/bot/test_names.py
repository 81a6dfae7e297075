"""Names as people type them: normalising, matching and ranking (pure)."""

from __future__ import annotations

from bot.domain.models import TargetKind, TargetSummary
from bot.domain.names import SUGGESTIONS_MAX, normalize, rank, same_name, suggestion_text

A, J, S = TargetKind.AUTOMATION, TargetKind.JOURNEY, TargetKind.SCRIP


def summary(kind: TargetKind, key: str, name: str) -> TargetSummary:
    return TargetSummary(kind=kind, key=key, name=name, id=key)


CATALOGUE = [
    summary(A, "daily-welcome-send", "Daily Welcome Email Send"),
    summary(A, "daily-welcome-resend", "Daily Welcome Email Resend"),
    summary(A, "hourly-lead-sync", "Hourly Lead Sync"),
    summary(J, "welcome-series", "Welcome Series"),
    summary(J, "cart-abandonment", "Cart Abandonment"),
    summary(S, "a1f0c6d2-3b4e-4c5d-8e6f-101010101001", "Nightly Points Expiry"),
]


def test_normalize_folds_case_spaces_and_separators() -> None:
    assert normalize("  Daily-Welcome_email \u00a0 SEND ") == "daily welcome email send"
    assert normalize("Spring \u2014 Sale") == "spring sale"
    assert normalize("\uff37elcome") == "welcome"  # a full-width letter


def test_same_name() -> None:
    assert same_name("daily_welcome-email send", "Daily Welcome Email Send")
    assert not same_name("daily welcome", "Daily Welcome Email Send")
    assert not same_name("  ", "")


def test_rank_puts_the_closest_name_first_and_drops_the_unrelated() -> None:
    found = rank("daily welcome emial send", CATALOGUE)
    assert [s.key for s in found[:2]] == ["daily-welcome-send", "daily-welcome-resend"]
    assert all(s.kind is A for s in found)


def test_rank_matches_scrip_automations_by_name() -> None:
    assert [s.name for s in rank("nightly point expiry", CATALOGUE)] == ["Nightly Points Expiry"]


def test_rank_keeps_a_handful() -> None:
    many = [summary(A, f"promo-{i}", f"Promo {i}") for i in range(20)]
    assert len(rank("promo", many)) == SUGGESTIONS_MAX


def test_suggestion_text_is_what_to_type() -> None:
    scrip = CATALOGUE[-1]
    assert suggestion_text(scrip, environment=None, others=CATALOGUE) == (
        'scrip:"Nightly Points Expiry"'
    )
    assert suggestion_text(CATALOGUE[2], environment="prod", others=CATALOGUE) == (
        'prod/automation:"Hourly Lead Sync"'
    )
    twin = summary(A, "hourly-lead-sync-2", "Hourly  Lead Sync")
    assert suggestion_text(twin, environment=None, others=[*CATALOGUE, twin]) == (
        "automation:hourly-lead-sync-2"
    )
