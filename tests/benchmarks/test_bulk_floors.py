"""The bulk benchmark: its provider rate-limit floor, its target mix, and a tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bulk import Limits, mix, provider_floor, run


def test_the_floor_is_the_slowest_provider() -> None:
    limits = Limits(sfmc_concurrency=20, sfmc_latency_s=0.05, scrip_rate_per_s=10, scrip_burst=30)
    floor, by, floors = provider_floor({5100001: 2000, 5100002: 1000}, 152, limits)
    # SFMC per business unit: 2000 x 50 ms / 20 = 5 s and 2.5 s; scrip: 122 past 30 at 10/s
    assert sorted(floors.values()) == pytest.approx([2.5, 5.0, 12.2])
    assert floor == pytest.approx(12.2)
    assert by.startswith("scrip (152 calls")


def test_a_busy_business_unit_can_set_the_floor() -> None:
    floor, by, _ = provider_floor({5100001: 8000}, 20, Limits(sfmc_latency_s=0.1))
    assert floor == pytest.approx(40.0)  # 8000 x 0.1 s / 20; scrip within its burst: 0 s
    assert by.startswith("SFMC business unit 5100001")


def test_the_mix_is_the_issue_s_at_500() -> None:
    assert mix(500) == (300, 150, 50)
    assert mix(50) == (30, 15, 5)
    assert mix(6) == (3, 2, 1)
    assert sum(mix(7)) == 7


def test_a_tiny_bulk_pause_end_to_end(tmp_path: Path) -> None:
    result = run(6, 10, tmp_path, cap_s=20)
    assert not result.capped
    assert result.batch_status == "done"
    assert (result.verified, result.failed, result.emulator_paused) == (6, 0, 6)
    assert result.preview_s <= result.done_s <= result.card_s
    # one card posted, then edited: no Slack call per target
    assert result.slack_calls.get("chat.postMessage") == 1
    assert result.slack_total <= 5
    assert result.sfmc_calls
    assert result.scrip_calls > 0
    assert result.floor_s > 0
