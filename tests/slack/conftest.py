"""Slack adapter fixtures: in-memory stores for notifiers (their outbox), closed after
each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.slack.notifier import SlackNotifier
from bot.store.repository import Store

_opened: list[Store] = []
_notifiers: list[SlackNotifier] = []


def closed_after_test(notifier: SlackNotifier) -> SlackNotifier:
    """``notifier``, stopped (its sender and timers) when the test ends."""
    _notifiers.append(notifier)
    return notifier


def memory_store() -> Store:
    """An empty in-memory store (closed when the test ends)."""
    store = Store.from_url("sqlite://")
    _opened.append(store)
    return store


@pytest.fixture(autouse=True)
async def _close_memory_stores() -> AsyncIterator[None]:
    yield
    while _notifiers:
        await _notifiers.pop().aclose()
    # what the test's notifiers left running (a notice window's timer, a Home refresh)
    # ends before the stores it uses are closed
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    while _opened:
        await _opened.pop().close()
