"""Bulk requests in the console: the preview, then ``confirm`` / ``cancel`` by batch id,
and ``approve batch`` on production."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.console import ConsoleNotifier, run_console
from bot.runtime import build_runtime
from bot.store import Store, upgrade
from sandbox.campaign import add_campaign
from sandbox.sfmc import PROD_MID, STAGING_MID
from tests.conftest import Sandbox


def _script(out: list[str], steps: list[str]) -> Callable[[str], Awaitable[str | None]]:
    """Lines to type; ``{batch}`` is the id of the last batch the console printed."""
    left = list(steps)

    async def read(_: str) -> str | None:
        if not left:
            return None
        ids = re.findall(r"Batch ([0-9a-f]{12})", "\n".join(out))
        return left.pop(0).format(batch=ids[-1] if ids else "none")

    return read


async def _console(sandbox: Sandbox, tmp_path: Path, steps: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    out: list[str] = []
    runtime = build_runtime(
        sandbox.config.model_copy(update={"database_url": url}),
        store=Store.from_url(url),
        notifier=ConsoleNotifier(out.append),
    )
    try:
        await run_console(runtime, read=_script(out, steps), write=out.append)
    finally:
        await runtime.aclose()
    return "\n".join(out)


async def test_preview_then_confirm_by_batch_id(sandbox: Sandbox, tmp_path: Path) -> None:
    text = await _console(
        sandbox,
        tmp_path,
        [
            "pause staging/automation:daily-welcome-*",
            "cancel {batch}",
            "pause staging/automation:daily-welcome-*",
            "confirm {batch}",
            "confirm",
        ],
    )
    assert "preview: nothing was changed yet" in text
    assert "cancelled: nothing was changed" in text
    assert "2 done, 0 failed, 0 left, 1 skipped" in text
    assert "Usage: confirm <batch-id>" in text
    assert sandbox.sfmc.automation(STAGING_MID, "daily-welcome-send").status == 4


async def test_approve_batch_on_production(sandbox: Sandbox, tmp_path: Path) -> None:
    add_campaign(sandbox.sfmc, None, mids=(PROD_MID,), automations=3, journeys=0)
    text = await _console(
        sandbox,
        tmp_path,
        [
            "as U0ALICE",
            "pause prod/automation:bf25-*",
            "confirm {batch}",
            "approve batch {batch}",
            "as U0ADMIN",
            "approve batch {batch}",
        ],
    )
    assert "awaits one approval" in text
    assert "Only approvers for prod can approve" in text  # U0ALICE is not one
    assert "3 done, 0 failed, 0 left" in text
    assert sandbox.sfmc.automation(PROD_MID, "bf25-send-003").status == 4
