"""The command grammar (DESIGN §4): every verb, option and error, plus property tests."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.commands import (
    Command,
    HelpCommand,
    HistoryCommand,
    ListCommand,
    ListScope,
    OpenPauseModal,
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StatusCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import BadInput
from bot.domain.grammar import (
    MAX_PAUSE,
    format_command,
    format_duration,
    format_target,
    parse_command,
    quote,
)
from bot.domain.help import EXAMPLES, GENERAL_USAGE, USAGE, help_text
from bot.domain.models import (
    MAX_JOURNEY_PAUSED_DAYS,
    PauseOptions,
    TargetKind,
    ThenAction,
    Verb,
    VersionSelector,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

J = TargetKind.JOURNEY
A = TargetKind.AUTOMATION
S = TargetKind.SCRIP


def parse(text: str, *, now: datetime = NOW, default_tz: tzinfo = UTC) -> Command:
    return parse_command(text, now=now, default_tz=default_tz)


def t(name: str, kind: TargetKind | None = None, env: str | None = None) -> TargetRef:
    return TargetRef(environment=env, kind=kind, name=name)


def pause(
    target: TargetRef,
    *,
    versions: VersionSelector | None = None,
    **options: object,
) -> PauseCommand:
    return PauseCommand(
        target=target,
        options=PauseOptions.model_validate(options),
        versions=versions or VersionSelector(),
    )


def days(n: float) -> timedelta:
    return timedelta(days=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# -- valid commands ---------------------------------------------------------------------

VALID: list[tuple[str, Command]] = [
    # help
    ("", HelpCommand()),
    ("   \t ", HelpCommand()),
    ("/automation", HelpCommand()),
    ("help", HelpCommand()),
    ("HELP", HelpCommand()),
    ("help pause", HelpCommand(topic=Verb.PAUSE)),
    ("help START", HelpCommand(topic=Verb.RUN)),
    ("/automation help list", HelpCommand(topic=Verb.LIST)),
    ("pause --help", HelpCommand(topic=Verb.PAUSE)),
    ("stop x -h", HelpCommand(topic=Verb.STOP)),
    ("help --help", HelpCommand(topic=Verb.HELP)),
    # status
    ("status welcome-series", StatusCommand(target=t("welcome-series"))),
    ("Status journey:welcome", StatusCommand(target=t("welcome", J))),
    ("status prod/journey:welcome", StatusCommand(target=t("welcome", J, "prod"))),
    ("status prod/welcome", StatusCommand(target=t("welcome", None, "prod"))),
    ("status JOURNEY:welcome", StatusCommand(target=t("welcome", J))),
    ("status journeys:welcome", StatusCommand(target=t("welcome", J))),
    ('status "Welcome Series"', StatusCommand(target=t("Welcome Series"))),
    ("status 'Welcome Series'", StatusCommand(target=t("Welcome Series"))),
    ("status \u201cWelcome Series\u201d", StatusCommand(target=t("Welcome Series"))),
    ("status \u2018Welcome Series\u2019", StatusCommand(target=t("Welcome Series"))),
    ("status \u201dWelcome Series\u201d", StatusCommand(target=t("Welcome Series"))),
    (
        'status prod/automation:"Nightly Import"',
        StatusCommand(target=t("Nightly Import", A, "prod")),
    ),
    (
        "status prod/scrip:\u201cDaily digest\u201d",
        StatusCommand(target=t("Daily digest", S, "prod")),
    ),
    ("status don't-stop", StatusCommand(target=t("don't-stop"))),
    ("status l\u2019\u00e9t\u00e9", StatusCommand(target=t("l\u2019\u00e9t\u00e9"))),
    ('status "Mom\'s day"', StatusCommand(target=t("Mom's day"))),
    ('status "a/b:c"', StatusCommand(target=t("a/b:c"))),
    ('status "say \\"hi\\""', StatusCommand(target=t('say "hi"'))),
    ('status "back\\\\slash"', StatusCommand(target=t("back\\slash"))),
    ('status "for"', StatusCommand(target=t("for"))),
    ('status "--all-versions"', StatusCommand(target=t("--all-versions"))),
    ("status journey:a:b", StatusCommand(target=t("a:b", J))),
    # the whole target quoted, kind (and environment) inside
    (
        'resume "automation:Daily Welcome Email Send"',
        ResumeCommand(target=t("Daily Welcome Email Send", A)),
    ),
    (
        'resume "prod/automation:Daily Welcome Email Send"',
        ResumeCommand(target=t("Daily Welcome Email Send", A, "prod")),
    ),
    (
        'resume automation:"Daily Welcome Email Send"',
        ResumeCommand(target=t("Daily Welcome Email Send", A)),
    ),
    (
        "status \u201cJourney: Welcome Series\u201d",
        StatusCommand(target=t("Welcome Series", J)),
    ),
    ("status 'scrips:Nightly Points Expiry'", StatusCommand(target=t("Nightly Points Expiry", S))),
    ('status prod/"journey:Welcome Series"', StatusCommand(target=t("Welcome Series", J, "prod"))),
    ('status "Promo: Spring"', StatusCommand(target=t("Promo: Spring"))),
    ('status "automation"":x"', StatusCommand(target=t("automation:x"))),
    ("status x --env prod", StatusCommand(target=t("x", None, "prod"))),
    ("status x --env=prod", StatusCommand(target=t("x", None, "prod"))),
    ("status --env prod journey:x", StatusCommand(target=t("x", J, "prod"))),
    ("status prod/x --env prod", StatusCommand(target=t("x", None, "prod"))),
    ("status\u00a0x\u00a0\u2014env\u00a0prod", StatusCommand(target=t("x", None, "prod"))),
    ("/automation status x", StatusCommand(target=t("x"))),
    # pause
    ("pause", OpenPauseModal()),
    ("/automation pause", OpenPauseModal()),
    ("PAUSE", OpenPauseModal()),
    ("pause welcome-series", pause(t("welcome-series"))),
    ("pause welcome-series for 3d", pause(t("welcome-series"), duration=days(3))),
    (
        "pause welcome-series for 3d then resume",
        pause(t("welcome-series"), duration=days(3), then=ThenAction.RESUME),
    ),
    ("pause x for 12h then keep", pause(t("x"), duration=hours(12), then=ThenAction.KEEP)),
    ("pause x for 12H", pause(t("x"), duration=hours(12))),
    ("pause x for 90m", pause(t("x"), duration=timedelta(minutes=90))),
    ("pause x for 1d12h", pause(t("x"), duration=hours(36))),
    ("pause x for 1d12h30m", pause(t("x"), duration=timedelta(days=1, hours=12, minutes=30))),
    ("pause x for 3 days", pause(t("x"), duration=days(3))),
    ("pause x for 2hours", pause(t("x"), duration=hours(2))),
    ("pause x for 1 hour", pause(t("x"), duration=hours(1))),
    ("pause x for 365d", pause(t("x"), duration=days(365))),
    ("pause journey:x for 14d", pause(t("x", J), duration=days(14))),
    ("pause x for 20d", pause(t("x"), duration=days(20))),  # a bare name: checked once resolved
    ("pause x then keep for 2d", pause(t("x"), duration=days(2), then=ThenAction.KEEP)),
    (
        "pause journey:x for 2d then stop",
        pause(t("x", J), duration=days(2), then=ThenAction.STOP),
    ),
    ("pause x for 2d then STOP", pause(t("x"), duration=days(2), then=ThenAction.STOP)),
    (
        "pause x until 2026-12-01T09:00",
        pause(t("x"), until=datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ),
    (
        "pause x until 2026-12-01T09:00Z",
        pause(t("x"), until=datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ),
    (
        "pause x until 2026-12-01T09:00+01:00",
        pause(t("x"), until=datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ),
    (
        "pause x until 2026-12-01T09:00-0130",
        pause(t("x"), until=datetime(2026, 12, 1, 10, 30, tzinfo=UTC)),
    ),
    (
        "pause x until 2026-12-01T09:00:30.5+02",
        pause(t("x"), until=datetime(2026, 12, 1, 7, 0, 30, 500000, tzinfo=UTC)),
    ),
    ("pause x until 2026-12-01", pause(t("x"), until=datetime(2026, 12, 1, tzinfo=UTC))),
    (
        "pause x until 2026-12-01 09:00 then keep",
        pause(t("x"), until=datetime(2026, 12, 1, 9, tzinfo=UTC), then=ThenAction.KEEP),
    ),
    (
        "pause x until 2026-06-01T12:01",
        pause(t("x"), until=datetime(2026, 6, 1, 12, 1, tzinfo=UTC)),
    ),
    (
        "pause prod/journey:welcome until 2026-06-10T09:00 then stop --all-versions"
        ' --reason "holiday freeze"',
        pause(
            t("welcome", J, "prod"),
            until=datetime(2026, 6, 10, 9, tzinfo=UTC),
            then=ThenAction.STOP,
            reason="holiday freeze",
            versions=VersionSelector(all_versions=True),
        ),
    ),
    (
        "pause journey:w --version 3 --extend-waits --queue-entries",
        pause(
            t("w", J),
            extend_waits=True,
            queue_entries=True,
            versions=VersionSelector(version=3),
        ),
    ),
    ("pause x --version=v2", pause(t("x"), versions=VersionSelector(version=2))),
    ("pause x --VERSION 2", pause(t("x"), versions=VersionSelector(version=2))),
    ("pause x \u2014version 2", pause(t("x"), versions=VersionSelector(version=2))),
    ("pause x \u2013all-versions", pause(t("x"), versions=VersionSelector(all_versions=True))),
    ("pause x -all-versions", pause(t("x"), versions=VersionSelector(all_versions=True))),
    ('pause x --reason="a b"', pause(t("x"), reason="a b")),
    ("pause x --reason=\u201ca b\u201d", pause(t("x"), reason="a b")),
    ("pause x --reason maintenance", pause(t("x"), reason="maintenance")),
    ('pause x --reason "  padded  "', pause(t("x"), reason="padded")),
    ('pause x --reason "--all-versions"', pause(t("x"), reason="--all-versions")),
    (
        "pause --extend-waits x for 1d --env staging",
        pause(t("x", None, "staging"), duration=days(1), extend_waits=True),
    ),
    ("pause 3d", pause(t("3d"))),
    ('pause "for" for 1d', pause(t("for"), duration=days(1))),
    ('pause "Welcome Series" for 2d', pause(t("Welcome Series"), duration=days(2))),
    (
        "pause automation:x for 1d then keep",
        pause(t("x", A), duration=days(1), then=ThenAction.KEEP),
    ),
    # resume
    ("resume welcome-series", ResumeCommand(target=t("welcome-series"))),
    (
        "resume prod/journey:welcome --version 3",
        ResumeCommand(target=t("welcome", J, "prod"), versions=VersionSelector(version=3)),
    ),
    (
        "resume journey:welcome --all-versions",
        ResumeCommand(target=t("welcome", J), versions=VersionSelector(all_versions=True)),
    ),
    ("resume scrip:x --env dev", ResumeCommand(target=t("x", S, "dev"))),
    # stop
    ("stop scrip:reengagement", StopCommand(target=t("reengagement", S))),
    (
        "stop prod/journey:welcome --version 2",
        StopCommand(target=t("welcome", J, "prod"), versions=VersionSelector(version=2)),
    ),
    # run / start
    ('run automation:"Nightly Import"', RunCommand(target=t("Nightly Import", A))),
    ("start staging/scrip:daily-digest", RunCommand(target=t("daily-digest", S, "staging"))),
    ("START x", RunCommand(target=t("x"))),
    ("run x --env=prod", RunCommand(target=t("x", None, "prod"))),
    # history
    ("history journey:welcome", HistoryCommand(target=t("welcome", J))),
    ("history prod/scrip:x", HistoryCommand(target=t("x", S, "prod"))),
    # list
    ("list", ListCommand()),
    ("list paused", ListCommand(scope=ListScope.PAUSED)),
    ("list all", ListCommand(scope=ListScope.ALL)),
    ("LIST ALL JOURNEY", ListCommand(scope=ListScope.ALL, kind=J)),
    ("list journeys", ListCommand(kind=J)),
    ("list scrip", ListCommand(kind=S)),
    ("list welcome", ListCommand(filter="welcome")),
    (
        "list all journey welcome series --env prod",
        ListCommand(scope=ListScope.ALL, kind=J, filter="welcome series", environment="prod"),
    ),
    ('list "all"', ListCommand(filter="all")),
    ('list all "journey"', ListCommand(scope=ListScope.ALL, filter="journey")),
    ("list journey all", ListCommand(kind=J, filter="all")),
    ('list ""', ListCommand()),
    ("list --env=prod", ListCommand(environment="prod")),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text or "<empty>" for text, _ in VALID])
def test_valid_commands(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text or "<empty>" for text, _ in VALID])
def test_canonical_text_parses_back(text: str, expected: Command) -> None:
    assert parse(format_command(expected)) == expected


def test_naive_until_is_read_in_the_default_time_zone() -> None:
    plus_one = timezone(timedelta(hours=1))
    command = parse("pause x until 2026-12-01T09:00", default_tz=plus_one)
    assert isinstance(command, PauseCommand)
    assert command.options.until == datetime(2026, 12, 1, 8, tzinfo=UTC)
    # an explicit offset wins over the default
    command = parse("pause x until 2026-12-01T09:00Z", default_tz=plus_one)
    assert isinstance(command, PauseCommand)
    assert command.options.until == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_until_with_a_zoneinfo_default_follows_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    summer = parse("pause x until 2026-07-01T09:00", default_tz=paris)
    winter = parse("pause x until 2026-12-01T09:00", default_tz=paris)
    assert isinstance(summer, PauseCommand)
    assert isinstance(winter, PauseCommand)
    assert summer.options.until == datetime(2026, 7, 1, 7, tzinfo=UTC)
    assert winter.options.until == datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_a_naive_now_is_read_in_the_default_time_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    naive_now = datetime(2026, 12, 1, 10, 0)  # 08:00 UTC
    # 09:00 UTC is after 08:00 UTC: accepted even though 09:00 < 10:00 on the wall clock
    command = parse("pause x until 2026-12-01T09:00Z", now=naive_now, default_tz=plus_two)
    assert isinstance(command, PauseCommand)
    with pytest.raises(BadInput, match="in the past"):
        parse("pause x until 2026-12-01T07:59Z", now=naive_now, default_tz=plus_two)


# -- errors -----------------------------------------------------------------------------

ERRORS: list[tuple[str, str, str]] = [
    # unknown verbs
    ("pasue x", USAGE[Verb.PAUSE], "unknown command 'pasue'. Did you mean pause?"),
    ("reume x", USAGE[Verb.RESUME], "Did you mean resume?"),
    ("frobnicate", GENERAL_USAGE, "unknown command 'frobnicate'. Commands: help, status"),
    ("/automation frobnicate", GENERAL_USAGE, "unknown command 'frobnicate'"),
    # lexical
    ('status "a b', USAGE[Verb.STATUS], "unbalanced quotes"),
    ("status \u201ca b", USAGE[Verb.STATUS], "unbalanced quotes"),
    ("pause 'x for 3d", USAGE[Verb.PAUSE], "unbalanced quotes"),
    ('"unterminated', GENERAL_USAGE, "unbalanced quotes"),
    # help
    ("help pasue", USAGE[Verb.HELP], "no help on 'pasue'. Did you mean pause?"),
    ("help zzz", USAGE[Verb.HELP], "no help on 'zzz'. Topics:"),
    ("help pause extra", USAGE[Verb.HELP], "unexpected 'extra'"),
    ("help --env prod", USAGE[Verb.HELP], "--env is not an option of help"),
    ("help --bogus", USAGE[Verb.HELP], "help takes no options"),
    # targets
    ("status", USAGE[Verb.STATUS], "status needs a target"),
    ("status --env prod", USAGE[Verb.STATUS], "status needs a target"),
    (
        "status a b",
        USAGE[Verb.STATUS],
        "unexpected 'b' after the target: quote names with spaces, e.g. \"a b\"",
    ),
    (
        "status prod/x --env staging",
        USAGE[Verb.STATUS],
        "two environments given: 'prod' in the target and 'staging' in --env",
    ),
    ("status x --env", USAGE[Verb.STATUS], "--env needs a value"),
    ("status x --env=", USAGE[Verb.STATUS], "--env needs a value"),
    ("status x --env --env", USAGE[Verb.STATUS], "--env needs a value"),
    ("status x --env bad!env", USAGE[Verb.STATUS], "'bad!env' is not an environment name"),
    (
        "status bad!env/x",
        USAGE[Verb.STATUS],
        "'bad!env' before '/' in 'bad!env/x' is not an environment name",
    ),
    ("status /x", USAGE[Verb.STATUS], "'' before '/'"),
    ("status foo:x", USAGE[Verb.STATUS], "unknown kind 'foo' in 'foo:x'"),
    ("status prod/", USAGE[Verb.STATUS], "the target 'prod/' has no name"),
    ("status journey:", USAGE[Verb.STATUS], "has no name"),
    ('status ""', USAGE[Verb.STATUS], "has no name"),
    ('status "   "', USAGE[Verb.STATUS], "has no name"),
    (
        "status x --version 2",
        USAGE[Verb.STATUS],
        "--version is not an option of status (it works with pause, resume, stop)",
    ),
    ("status x --frob", USAGE[Verb.STATUS], "unknown option '--frob' for status"),
    ("status x --evn prod", USAGE[Verb.STATUS], "Did you mean --env?"),
    ("status x --env a --env a", USAGE[Verb.STATUS], "--env is given twice"),
    # pause: targets and clauses
    ("pause for 3d", USAGE[Verb.PAUSE], "pause needs a target"),
    ("pause then keep", USAGE[Verb.PAUSE], "pause needs a target"),
    ("pause --env prod", USAGE[Verb.PAUSE], "or just 'pause' to open the form"),
    ("pause x 3d", USAGE[Verb.PAUSE], "unexpected '3d': did you mean 'for 3d'?"),
    (
        "pause Welcome Series for 3d",
        USAGE[Verb.PAUSE],
        'quote names with spaces, e.g. "Welcome Series"',
    ),
    ("pause x for 1d extra", USAGE[Verb.PAUSE], "unexpected 'extra'"),
    ("pause x for", USAGE[Verb.PAUSE], "'for' needs a length"),
    ("pause x for 3x", USAGE[Verb.PAUSE], "'3x' is not a pause length"),
    ("pause x for 3", USAGE[Verb.PAUSE], "'3' is not a pause length"),
    ("pause x for d", USAGE[Verb.PAUSE], "'d' is not a pause length"),
    ("pause x for 1.5d", USAGE[Verb.PAUSE], "not a pause length"),
    ("pause x for 12h1d", USAGE[Verb.PAUSE], "not a pause length"),
    ("pause x for \u0663d", USAGE[Verb.PAUSE], "not a pause length"),
    ("pause x for 0d", USAGE[Verb.PAUSE], "the pause length must be more than zero"),
    ("pause x for 0h0m", USAGE[Verb.PAUSE], "must be more than zero"),
    ("pause x for 366d", USAGE[Verb.PAUSE], "a pause lasts at most 365 days"),
    ("pause x for 99999999999999999999d", USAGE[Verb.PAUSE], "a pause lasts at most 365 days"),
    ("pause x for 3d until 2026-12-01", USAGE[Verb.PAUSE], "give one pause length"),
    ("pause x for 3d for 4d", USAGE[Verb.PAUSE], "give one pause length"),
    ("pause x until", USAGE[Verb.PAUSE], "'until' needs a date-time"),
    ("pause x until tomorrow", USAGE[Verb.PAUSE], "'tomorrow' is not an ISO date-time"),
    ("pause x until 2026-12-1", USAGE[Verb.PAUSE], "not an ISO date-time"),
    ("pause x until 2026-02-30", USAGE[Verb.PAUSE], "'2026-02-30' is not a valid date"),
    ("pause x until 2026-12-01T25:00", USAGE[Verb.PAUSE], "is not a valid time of day"),
    ("pause x until 2026-12-01T09:00+25:00", USAGE[Verb.PAUSE], "invalid UTC offset '+25:00'"),
    ("pause x until 2026-01-01", USAGE[Verb.PAUSE], "'2026-01-01' is in the past"),
    # Journey Builder pauses last at most 14 days (like 'for 400d', refused before anything)
    (
        "pause journey:x for 20d",
        USAGE[Verb.PAUSE],
        "Journey Builder pauses a journey for at most 14 days and this pause would last 20",
    ),
    ("pause journey:x for 14d1h", USAGE[Verb.PAUSE], "this pause would last 15"),
    (
        "pause prod/journey:x until 2026-06-20T12:00Z then stop",
        USAGE[Verb.PAUSE],
        "at most 14 days and this pause would last 19",
    ),
    ("pause x until 2026-06-01T12:00Z", USAGE[Verb.PAUSE], "is in the past"),
    ("pause x until 2028-01-01", USAGE[Verb.PAUSE], "a pause lasts at most 365 days"),
    ("pause x until 9999-12-31T23:59-23:59", USAGE[Verb.PAUSE], "at most 365 days"),
    ("pause x until 0001-01-01T00:00+23:59", USAGE[Verb.PAUSE], "is in the past"),
    ("pause x then keep", USAGE[Verb.PAUSE], "'then' needs a pause length"),
    ("pause x then resume", USAGE[Verb.PAUSE], "'then' needs a pause length"),
    ("pause x for 1d then", USAGE[Verb.PAUSE], "'then' needs resume, stop or keep"),
    (
        "pause x for 1d then explode",
        USAGE[Verb.PAUSE],
        "then 'explode': use then resume, then stop or then keep",
    ),
    ("pause x for 1d then keep then stop", USAGE[Verb.PAUSE], "'then' is given twice"),
    (
        "pause automation:x for 1d then stop",
        USAGE[Verb.PAUSE],
        "'then stop' is only for journeys, not for automation targets",
    ),
    ("pause scrip:x for 1d then stop", USAGE[Verb.PAUSE], "'then stop' is only for journeys"),
    # pause: options
    (
        "pause scrip:x --version 2",
        USAGE[Verb.PAUSE],
        "--version is only for journeys, not for scrip targets",
    ),
    ("pause automation:x --extend-waits", USAGE[Verb.PAUSE], "--extend-waits is only for journeys"),
    (
        "pause automation:x --queue-entries",
        USAGE[Verb.PAUSE],
        "--queue-entries is only for journeys",
    ),
    ("pause automation:x --all-versions", USAGE[Verb.PAUSE], "--all-versions is only for journeys"),
    (
        "pause x --version 2 --all-versions",
        USAGE[Verb.PAUSE],
        "choose either --version N or --all-versions, not both",
    ),
    ("pause x --version 0", USAGE[Verb.PAUSE], "--version takes a positive whole number, got '0'"),
    (
        "pause x --version abc",
        USAGE[Verb.PAUSE],
        "--version takes a positive whole number, got 'abc'",
    ),
    ("pause x --version 1.5", USAGE[Verb.PAUSE], "positive whole number"),
    ("pause x --version -1", USAGE[Verb.PAUSE], "--version needs a value"),
    ("pause x --version", USAGE[Verb.PAUSE], "--version needs a value, e.g. --version 3"),
    ("pause x --version 2 --version 3", USAGE[Verb.PAUSE], "--version is given twice"),
    ("pause x --extend-waits --extend-waits", USAGE[Verb.PAUSE], "--extend-waits is given twice"),
    ("pause x --extend-waits=yes", USAGE[Verb.PAUSE], "--extend-waits takes no value"),
    ("pause x --reason", USAGE[Verb.PAUSE], "--reason needs a value"),
    ('pause x --reason ""', USAGE[Verb.PAUSE], "--reason needs some text"),
    ('pause x --reason=""', USAGE[Verb.PAUSE], "--reason needs some text"),
    ("pause x --reason two words", USAGE[Verb.PAUSE], "unexpected 'words'"),
    ("pause x --extend-wait", USAGE[Verb.PAUSE], "Did you mean --extend-waits?"),
    # resume
    ("resume", USAGE[Verb.RESUME], "resume needs a target"),
    (
        "resume x --extend-waits",
        USAGE[Verb.RESUME],
        "--extend-waits is not an option of resume (it works with pause)",
    ),
    ("resume x --reason why", USAGE[Verb.RESUME], "--reason is not an option of resume"),
    (
        "resume automation:x --all-versions",
        USAGE[Verb.RESUME],
        "--all-versions is only for journeys",
    ),
    ("resume x --version 1 --all-versions", USAGE[Verb.RESUME], "not both"),
    ("resume x for 3d", USAGE[Verb.RESUME], "unexpected 'for'"),
    # stop
    ("stop", USAGE[Verb.STOP], "stop needs a target"),
    (
        "stop x --all-versions",
        USAGE[Verb.STOP],
        "stop works on one version at a time: use --version N",
    ),
    ("stop x y", USAGE[Verb.STOP], "unexpected 'y'"),
    ("stop scrip:x --version 2", USAGE[Verb.STOP], "--version is only for journeys"),
    ("stop x --queue-entries", USAGE[Verb.STOP], "--queue-entries is not an option of stop"),
    # run
    ("run", USAGE[Verb.RUN], "run needs a target"),
    ("start", USAGE[Verb.RUN], "run needs a target"),
    ("run x --version 1", USAGE[Verb.RUN], "--version is not an option of run"),
    ("run x now", USAGE[Verb.RUN], "unexpected 'now'"),
    # history
    ("history", USAGE[Verb.HISTORY], "history needs a target"),
    ("history x --all-versions", USAGE[Verb.HISTORY], "--all-versions is not an option of history"),
    # list
    ("list --version 2", USAGE[Verb.LIST], "--version is not an option of list"),
    ("list --env", USAGE[Verb.LIST], "--env needs a value"),
    ("list --env prod --env prod", USAGE[Verb.LIST], "--env is given twice"),
    ("list --env a/b", USAGE[Verb.LIST], "'a/b' is not an environment name"),
    ('list "open', USAGE[Verb.LIST], "unbalanced quotes"),
]


@pytest.mark.parametrize(("text", "usage", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_specific_and_shows_usage(text: str, usage: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(text)
    error = caught.value
    assert message in error.message
    assert error.usage == usage
    assert "\n" not in error.message
    assert len(error.message) <= 200
    assert error.user_message() == f"{error.message}\nUsage: {usage}"


def test_long_words_are_shortened_in_messages() -> None:
    with pytest.raises(BadInput) as caught:
        parse("x" * 500)
    assert len(caught.value.message) < 150
    assert "\u2026" in caught.value.message


# -- help -------------------------------------------------------------------------------


def test_every_verb_has_a_usage_line_and_examples_that_parse() -> None:
    assert set(USAGE) == set(Verb)
    assert set(EXAMPLES) == set(Verb)
    for verb in Verb:
        assert USAGE[verb].startswith(f"/automation {verb.value}")
        assert "\n" not in USAGE[verb]
        assert 2 <= len(EXAMPLES[verb]) <= 3
        for example in EXAMPLES[verb]:
            # the examples' dates are a few days ahead (a journey pauses for 14 days at most)
            command = parse(example, now=datetime(2026, 11, 25, tzinfo=UTC))
            expected = "pause-modal" if example == "/automation pause" else verb
            assert command.verb == expected, example


def test_usage_lines_follow_the_contract() -> None:
    assert USAGE[Verb.PAUSE] == (
        "/automation pause <target> [for <N>d|<N>h | until <ISO date-time>]"
        " [then resume|stop|keep] [--version N | --all-versions] [--extend-waits]"
        ' [--queue-entries] [--reason "..."]'
    )
    assert USAGE[Verb.RESUME] == "/automation resume <target> [--version N | --all-versions]"
    assert USAGE[Verb.STOP] == "/automation stop <target> [--version N]"
    assert USAGE[Verb.LIST].startswith("/automation list [paused|all] [<kind>] [<filter>]")


def test_overview_lists_every_verb_with_an_example() -> None:
    text = help_text(None)
    for verb in Verb:
        assert f"`{verb.value}`" in text
        assert EXAMPLES[verb][0] in text
    assert "[<env>/][<kind>:]<key-or-name>" in text
    assert "approver" in text


@pytest.mark.parametrize("verb", list(Verb))
def test_verb_help_shows_usage_and_examples(verb: Verb) -> None:
    text = help_text(verb)
    assert USAGE[verb] in text
    for example in EXAMPLES[verb]:
        assert example in text


def test_verb_help_notes() -> None:
    assert "does NOT unpause" in help_text(Verb.RUN)
    assert "start" in help_text(Verb.RUN)
    assert "Journeys only" in help_text(Verb.PAUSE)
    assert "then stop" in help_text(Verb.PAUSE)
    assert "14 days" in help_text(Verb.PAUSE)
    assert "form" in help_text(Verb.PAUSE)
    for verb in (Verb.PAUSE, Verb.RESUME, Verb.STOP, Verb.RUN):
        assert "production" in help_text(verb)
    assert "production" not in help_text(Verb.STATUS)


# -- rendering --------------------------------------------------------------------------


def test_format_helpers() -> None:
    assert quote("welcome-series") == "welcome-series"
    assert quote("Welcome Series") == '"Welcome Series"'
    assert quote("for") == '"for"'
    assert quote("say \u201chi\u201d \\") == '"say \\\u201chi\\\u201d \\\\"'
    assert format_target(t("Nightly Import", A, "prod")) == 'prod/automation:"Nightly Import"'
    assert format_duration(days(3)) == "3d"
    assert format_duration(timedelta(days=1, hours=12, minutes=30)) == "1d12h30m"
    assert format_duration(timedelta(seconds=61)) == "2m"
    command = pause(
        t("welcome", J, "prod"),
        until=datetime(2026, 12, 1, 9, tzinfo=timezone(timedelta(hours=1))),
        then=ThenAction.STOP,
        reason="holiday freeze",
        versions=VersionSelector(all_versions=True),
    )
    assert format_command(command) == (
        "pause prod/journey:welcome until 2026-12-01T09:00+01:00 then stop --all-versions"
        ' --reason "holiday freeze"'
    )


# -- property tests ---------------------------------------------------------------------

FRAGMENTS = [
    *[v.value for v in Verb],
    "start",
    "/automation",
    "for",
    "until",
    "then",
    "resume",
    "stop",
    "keep",
    "paused",
    "all",
    "3d",
    "12h",
    "0d",
    "1d12h",
    "3",
    "days",
    "2026-12-01",
    "09:00",
    "2026-12-01T09:00Z",
    "2026-12-01T09:00+01:00",
    "9999-12-31T23:59-23:59",
    "--version",
    "--version=0",
    "--version=3",
    "--all-versions",
    "--extend-waits",
    "--queue-entries",
    "--reason",
    "--reason=",
    "--env",
    "--env=prod",
    "--help",
    "\u2014version",
    "-",
    "--",
    "prod/",
    "journey:",
    "prod/journey:x",
    "automation:x",
    "scrip:",
    ":",
    "/",
    "=",
    '"',
    "'",
    "\u201c",
    "\u201d",
    "\u2018",
    "\u2019",
    "\\",
    '"a b"',
    "\u201ca b\u201d",
    "x",
]

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_only_bad_input(text: str) -> None:
    error: BadInput | None = None
    try:
        command = parse(text)
    except BadInput as exc:
        error = exc
    if error is not None:
        assert error.message
        assert error.usage
        return
    # whatever parses renders to canonical text that parses back equal
    assert parse(format_command(command)) == command


@FUZZ
@given(st.text())
def test_any_text_gives_a_command_or_bad_input(text: str) -> None:
    _assert_only_bad_input(text)


@FUZZ
@given(
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)),
        max_size=10,
    ),
    st.lists(st.sampled_from(["", " ", "  ", "\t", "\u00a0"]), min_size=10, max_size=10),
)
def test_grammar_like_text_gives_a_command_or_bad_input(
    words: list[str], separators: list[str]
) -> None:
    text = "".join(w + (separators[i] or " ") for i, w in enumerate(words))
    _assert_only_bad_input(text)
    # also glued together (quotes and prefixes inside words)
    _assert_only_bad_input("".join(w + separators[i] for i, w in enumerate(words)))


# Round trip: valid commands -> text (with the many ways people type it) -> equal command.

TRICKY_NAMES = [
    "Welcome Series",
    "a/b",
    "x:y",
    "journey:x",
    "for",
    "until",
    "THEN",
    "all",
    "paused",
    "journeys",
    "--all-versions",
    "-x",
    '"quoted"',
    "don't",
    "l\u2019\u00e9t\u00e9",
    "\u201csmart\u201d",
    "\u2018single\u2019",
    "back\\slash",
    "ends with \\",
    "a=b",
    "/automation",
    "\u00c9t\u00e9 \u2014 2026",
    "journey:welcome",
    "prod/Automation:Daily Send",
]

names = (
    st.one_of(
        st.sampled_from(TRICKY_NAMES),
        st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
            min_size=1,
            max_size=16,
        ),
    )
    .map(str.strip)
    .filter(bool)
)
environments = st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)
kinds = st.none() | st.sampled_from(list(TargetKind))
targets = st.builds(TargetRef, environment=environments, kind=kinds, name=names)
positive_versions = st.integers(min_value=1, max_value=10**6)
MINUTE = timedelta(minutes=1)
JOURNEY_MAX = timedelta(days=MAX_JOURNEY_PAUSED_DAYS)
minutes = st.integers(min_value=1, max_value=MAX_PAUSE // MINUTE)
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@st.composite
def pause_commands(draw: st.DrawFn) -> PauseCommand:
    target = draw(targets)
    journey_ok = target.kind in (None, TargetKind.JOURNEY)
    length = draw(st.sampled_from(["none", "for", "until"]))
    duration = until = None
    # Journey Builder pauses last at most 14 days: longer journey pauses are bad input.
    longest = JOURNEY_MAX if target.kind is TargetKind.JOURNEY else MAX_PAUSE
    if length == "for":
        duration = timedelta(minutes=draw(minutes.filter(lambda m: m <= longest // MINUTE)))
    elif length == "until":
        zone = draw(offsets)
        seconds = draw(st.integers(min_value=60, max_value=int(longest.total_seconds())))
        until = (NOW + timedelta(seconds=seconds)).astimezone(zone)
    then = ThenAction.RESUME
    if length != "none":
        choices = list(ThenAction) if journey_ok else [ThenAction.RESUME, ThenAction.KEEP]
        then = draw(st.sampled_from(choices))
    versions = VersionSelector()
    extend = queue = False
    if journey_ok:
        versions = draw(
            st.one_of(
                st.just(VersionSelector()),
                st.builds(VersionSelector, version=positive_versions),
                st.just(VersionSelector(all_versions=True)),
            )
        )
        extend, queue = draw(st.booleans()), draw(st.booleans())
    reason = draw(st.none() | names)
    return PauseCommand(
        target=target,
        options=PauseOptions(
            duration=duration,
            until=until,
            then=then,
            extend_waits=extend,
            queue_entries=queue,
            reason=reason,
        ),
        versions=versions,
    )


@st.composite
def version_commands(draw: st.DrawFn) -> ResumeCommand | StopCommand:
    target = draw(targets)
    stop = draw(st.booleans())
    versions = VersionSelector()
    if target.kind in (None, TargetKind.JOURNEY):
        options = [
            st.just(VersionSelector()),
            st.builds(VersionSelector, version=positive_versions),
        ]
        if not stop:
            options.append(st.just(VersionSelector(all_versions=True)))
        versions = draw(st.one_of(*options))
    if stop:
        return StopCommand(target=target, versions=versions)
    return ResumeCommand(target=target, versions=versions)


commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(HelpCommand, topic=st.none() | st.sampled_from(list(Verb))),
    st.just(OpenPauseModal()),
    st.builds(StatusCommand, target=targets),
    st.builds(RunCommand, target=targets),
    st.builds(HistoryCommand, target=targets),
    pause_commands(),
    version_commands(),
    st.builds(
        ListCommand,
        scope=st.sampled_from(list(ListScope)),
        kind=kinds,
        filter=st.none() | names,
        environment=environments,
    ),
)

_BARE_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.ASCII)
_RESERVED = {"for", "until", "then", "paused", "all", "automation", "journey", "scrip"}
_RESERVED |= {f"{k}s" for k in ("automation", "journey", "scrip")}
_KIND_PREFIXED = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?(?:automation|journey|scrip)s?:.*",
    re.ASCII | re.IGNORECASE | re.DOTALL,
)
_QUOTE_STYLES = [
    ('"', '"', '"\u201c\u201d\u201e\u201f'),
    ("\u201c", "\u201d", '"\u201c\u201d\u201e\u201f'),
    ("'", "'", "'\u2018\u2019\u201a\u201b"),
    ("\u2018", "\u2019", "'\u2018\u2019\u201a\u201b"),
]


class Typist:
    """Renders a command the way a person might type it, with a seeded random choice."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def word(self, text: str) -> str:
        if _BARE_RE.fullmatch(text) and text.lower() not in _RESERVED and self.rnd.random() < 0.7:
            return text
        return self.quoted(text)

    def quoted(self, text: str) -> str:
        opening, closing, family = self.rnd.choice(_QUOTE_STYLES)
        body = "".join(f"\\{c}" if c == "\\" or c in family else c for c in text)
        return f"{opening}{body}{closing}"

    def case(self, text: str) -> str:
        return self.rnd.choice([text, text.upper(), text.capitalize()])

    def option(self, name: str, value: str | None = None) -> list[str]:
        dash = self.rnd.choice(["--", "--", "\u2014", "-"])
        head = dash + self.case(name)
        if value is None:
            return [head]
        if self.rnd.random() < 0.5:
            return [f"{head}={value}"]
        return [head, value]

    def target(self, target: TargetRef, env_option: list[list[str]]) -> str:
        environment = ""
        if target.environment is not None:
            where = self.rnd.choice(["target", "option", "both"])
            if where != "target":
                env_option.append(self.option("env", target.environment))
            if where != "option":
                environment = f"{target.environment}/"
        kind = f"{self.case(target.kind.value)}:" if target.kind else ""
        if target.kind is None and _KIND_PREFIXED.fullmatch(target.name.strip()):
            # a name that reads "kind:..." is quoted in two parts, else it means kind + name
            head, _, tail = target.name.partition(":")
            return f"{environment}{self.quoted(head)}{self.quoted(':' + tail)}"
        return f"{environment}{kind}{self.word(target.name)}"

    def versions(self, versions: VersionSelector) -> list[list[str]]:
        if versions.all_versions:
            return [self.option("all-versions")]
        if versions.version is not None:
            number = self.rnd.choice(["", "v"]) + str(versions.version)
            return [self.option("version", number)]
        return []

    def duration(self, length: timedelta) -> list[str]:
        total = length // timedelta(minutes=1)
        d, rest = divmod(total, 24 * 60)
        h, m = divmod(rest, 60)
        if not h and not m and self.rnd.random() < 0.5:
            return [str(d), self.rnd.choice(["d", "days", "day"])]
        if not m and self.rnd.random() < 0.5:
            return [f"{total // 60}h"]
        if self.rnd.random() < 0.3:
            return [f"{total}m"]
        return ["".join(f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m")) if n)]

    def until(self, end: datetime, default_tz: tzinfo) -> list[str]:
        style = self.rnd.choice(["iso", "z", "naive", "space"])
        if style == "z":
            return [end.astimezone(UTC).isoformat().replace("+00:00", "Z")]
        if style == "naive":
            return [end.astimezone(default_tz).replace(tzinfo=None).isoformat()]
        if style == "space":
            day, _, clock = end.isoformat().partition("T")
            return [day, clock]
        return [end.isoformat()]

    def render(self, command: Command, default_tz: tzinfo) -> str:
        words: list[str] = []
        options: list[list[str]] = []
        match command:
            case HelpCommand(topic=topic):
                words = ["help"] + ([self.case(topic.value)] if topic else [])
            case OpenPauseModal():
                words = ["pause"]
            case PauseCommand(target=target, options=opts, versions=versions):
                words = ["pause", self.target(target, options)]
                clauses: list[list[str]] = []
                if opts.duration is not None:
                    clauses.append(["for", *self.duration(opts.duration)])
                if opts.until is not None:
                    clauses.append(["until", *self.until(opts.until, default_tz)])
                if opts.timed and (opts.then is not ThenAction.RESUME or self.rnd.random() < 0.5):
                    clauses.append(["then", self.case(opts.then.value)])
                self.rnd.shuffle(clauses)
                for clause in clauses:
                    words += clause
                options += self.versions(versions)
                if opts.extend_waits:
                    options.append(self.option("extend-waits"))
                if opts.queue_entries:
                    options.append(self.option("queue-entries"))
                if opts.reason is not None:
                    options.append(self.option("reason", self.word(opts.reason)))
            case (
                ResumeCommand(target=target, versions=versions)
                | StopCommand(target=target, versions=versions)
            ):
                words = [command.verb.value, self.target(target, options)]
                options += self.versions(versions)
            case (
                StatusCommand(target=target)
                | RunCommand(target=target)
                | HistoryCommand(target=target)
            ):
                verb = command.verb.value
                if verb == "run" and self.rnd.random() < 0.3:
                    verb = "start"
                words = [verb, self.target(target, options)]
            case ListCommand(scope=scope, kind=kind, filter=text_filter, environment=environment):
                words = ["list"]
                if scope is not ListScope.PAUSED or kind or text_filter or self.rnd.random() < 0.5:
                    words.append(self.case(scope.value))
                if kind:
                    words.append(self.case(kind.value + self.rnd.choice(["", "s"])))
                if text_filter:
                    words.append(self.word(text_filter))
                if environment:
                    options.append(self.option("env", environment))
        words[0] = self.case(words[0])
        head, tail = words[:1], words[1:]
        if isinstance(command, PauseCommand | ResumeCommand | StopCommand | StatusCommand):
            # options may go anywhere after the target
            pieces: list[list[str]] = [[w] for w in tail]
            for option in options:
                pieces.insert(self.rnd.randint(1 if pieces else 0, len(pieces)), option)
            tail = [w for piece in pieces for w in piece]
        else:
            tail += [w for option in options for w in option]
        if self.rnd.random() < 0.3:
            head = ["/automation", *head]
        text = ""
        for word in head + tail:
            text += word + self.rnd.choice([" ", " ", "  ", "\t", "\u00a0"])
        return text


ROUND_TRIP = settings(max_examples=300, deadline=None)


@ROUND_TRIP
@given(commands, st.randoms(use_true_random=False), offsets)
def test_typed_text_parses_back_to_the_command(
    command: Command, rnd: random.Random, default_tz: tzinfo
) -> None:
    text = Typist(rnd).render(command, default_tz)
    assert parse(text, default_tz=default_tz) == command, text


@ROUND_TRIP
@given(commands)
def test_canonical_text_round_trips(command: Command) -> None:
    text = format_command(command)
    assert parse(text) == command, text
    assert format_command(parse(text)) == text
