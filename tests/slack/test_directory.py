"""SlackDirectory against the Slack emulator over HTTP: members, the cache, one fetch for
concurrent callers, and Slack's errors as ProviderError."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.domain.errors import ProviderError
from bot.slack.app import create_web_client
from bot.slack.directory import SlackDirectory
from sandbox.clock import Clock
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator, SlackSettings


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, str]]:
    emulator = SlackEmulator(settings=SlackSettings(rate_limits_enabled=False))
    with ServerThread(emulator.app) as server:
        yield emulator, server.url + "/api/"


def calls(emulator: SlackEmulator) -> int:
    return len(emulator.calls("usergroups.users.list"))


def directory(url: str, clock: Clock, *, ttl: float = 60) -> SlackDirectory:
    client = create_web_client(token="xoxb-sandbox", base_url=url)
    return SlackDirectory(client, ttl=ttl, clock=clock.now)


async def test_members_are_cached_for_the_ttl(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    clock = Clock()
    groups = directory(url, clock, ttl=60)
    assert await groups.members("S0APPROVERS") == {"U0BOB", "U0CAROL"}
    emulator.set_usergroup("S0APPROVERS", ["U0BOB"])
    assert await groups.members("S0APPROVERS") == {"U0BOB", "U0CAROL"}  # cached
    assert calls(emulator) == 1
    clock.advance(timedelta(seconds=61))
    assert await groups.members("S0APPROVERS") == {"U0BOB"}
    assert calls(emulator) == 2
    groups.forget("S0APPROVERS")
    await groups.members("S0APPROVERS")
    assert calls(emulator) == 3


async def test_concurrent_callers_share_one_fetch(slack: tuple[SlackEmulator, str]) -> None:
    emulator, url = slack
    groups = directory(url, Clock())
    found = await asyncio.gather(*(groups.members("S0APPROVERS") for _ in range(20)))
    assert all(f == {"U0BOB", "U0CAROL"} for f in found)
    assert calls(emulator) == 1
    await asyncio.gather(groups.members("S0OPERATORS"), groups.members("S0ADMINS"))
    assert calls(emulator) == 3  # one per group


async def test_a_caller_giving_up_does_not_cancel_the_others(
    slack: tuple[SlackEmulator, str],
) -> None:
    emulator, url = slack
    groups = directory(url, Clock())
    first = asyncio.create_task(groups.members("S0APPROVERS"))
    second = asyncio.create_task(groups.members("S0APPROVERS"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == {"U0BOB", "U0CAROL"}
    assert calls(emulator) == 1


@pytest.mark.parametrize(
    ("setup", "code", "cached"),
    [
        ("free plan", "plan_upgrade_required", True),
        ("no group", "no_such_subteam", True),
        ("revoked", "invalid_auth", False),
    ],
)
async def test_slack_errors_become_provider_errors(
    slack: tuple[SlackEmulator, str], setup: str, code: str, cached: bool
) -> None:
    emulator, url = slack
    group = "S0APPROVERS"
    if setup == "free plan":
        emulator.settings.usergroups_enabled = False
    elif setup == "no group":
        group = "S0GONE"
    else:
        emulator.revoke_token(emulator.bot_token)
    groups = directory(url, Clock())
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await groups.members(group)
        assert caught.value.provider == "Slack"
        assert caught.value.code == code
        assert group in caught.value.user_message()
    assert calls(emulator) == (1 if cached else 2)
    assert caught.value.retryable is not cached
