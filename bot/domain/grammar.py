"""The command grammar (DESIGN §4, a public contract): text in, typed command out.

:func:`parse_command` is pure (no I/O): it turns what a person typed after ``/automation``
(or gave to ``automation-bot exec``) into one of the commands of :mod:`bot.domain.commands`,
or raises :class:`~bot.domain.errors.BadInput` with a short, specific message and the usage
line of the verb. It never raises anything else, whatever the text.

:func:`format_command` is its inverse: it renders a command as canonical text that parses
back to an equal command (for cards, logs and "you asked for" echoes).

Lexical rules:

- words are separated by whitespace (any Unicode space, so Slack's non-breaking spaces too);
- a quote opens a quoted part at the start of a word or right after ``=``, ``/``, ``:`` or
  another quoted part, so ``prod/journey:"Welcome Series"`` and ``--reason="a b"`` work and
  apostrophes inside words (``don't``) stay literal. Straight quotes and the typographic
  ("smart") quotes Slack clients produce both work; any quote of the same family closes
  (double: U+0022, U+201C-U+201F; single: U+0027, U+2018-U+201B). Inside quotes, a
  backslash escapes a quote of the family or a backslash;
- quoted text is never a keyword or an option, and is a ``env/`` / ``kind:`` prefix only
  when the whole target is quoted and starts with a kind: ``"automation:Daily Send"`` and
  ``"prod/automation:Daily Send"`` mean kind (and environment) plus name, as does
  ``automation:"Daily Send"``; ``"a/b:c"`` (no kind) stays a name;
- options start with ``--`` (also one dash, or the en/em dash Slack clients turn ``--``
  into); ``--name value`` and ``--name=value`` are the same; option names ignore case.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from pydantic import ValidationError

from bot.domain import rules
from bot.domain.bulk import BulkPattern, has_wildcards
from bot.domain.commands import (
    BulkCommand,
    Command,
    HelpCommand,
    HistoryCommand,
    ListCommand,
    ListScope,
    OpenPauseModal,
    PauseCommand,
    ResumeBatchCommand,
    ResumeCommand,
    RunCommand,
    StatusCommand,
    StopCommand,
    TargetRef,
)
from bot.domain.errors import BadInput
from bot.domain.help import GENERAL_USAGE, SLASH_COMMAND, USAGE
from bot.domain.models import (
    MAX_JOURNEY_PAUSED_DAYS,
    PauseOptions,
    TargetKind,
    ThenAction,
    Verb,
    VersionSelector,
)

__all__ = [
    "KIND_WORDS",
    "MAX_PAUSE",
    "VERB_ALIASES",
    "format_command",
    "format_duration",
    "format_target",
    "parse_command",
    "parse_pattern",
    "quote",
]

#: The longest pause the grammar accepts (``for`` or ``until``).
MAX_PAUSE = timedelta(days=365)

#: Words that name a verb (case-insensitive). ``start`` is the contract's alias of ``run``.
VERB_ALIASES: Mapping[str, Verb] = {**{v.value: v for v in Verb}, "start": Verb.RUN}

#: Words that name a kind, in ``kind:`` prefixes and ``list`` (plurals accepted).
KIND_WORDS: Mapping[str, TargetKind] = {
    **{k.value: k for k in TargetKind},
    **{f"{k.value}s": k for k in TargetKind},
}

_DOUBLE_QUOTES = '"\u201c\u201d\u201e\u201f'
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_OPENS_QUOTE_AFTER = "=/:"

_PAUSE_KEYWORDS = frozenset({"for", "until", "then"})
_SCOPES: Mapping[str, ListScope] = {s.value: s for s in ListScope}

_ENV_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_VERSION_RE = re.compile(r"[vV]?([0-9]{1,9})", re.ASCII)
_DURATION_RE = re.compile(
    r"(?:([0-9]+)(d|days?))?(?:([0-9]+)(h|hrs?|hours?))?(?:([0-9]+)(m|mins?|minutes?))?",
    re.ASCII | re.IGNORECASE,
)
_UNIT_RE = re.compile(r"d|days?|h|hrs?|hours?|m|mins?|minutes?", re.ASCII | re.IGNORECASE)
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_TIME_RE = re.compile(
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,6}))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII,
)
_DATETIME_RE = re.compile(
    _DATE_RE.pattern + r"(?:[Tt ]" + _TIME_RE.pattern + r"|([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?))?",
    re.ASCII,
)
_QUOTED_TARGET_RE = re.compile(
    r"(?:("
    + _ENV_RE.pattern
    + r")/)?("
    + "|".join(sorted(KIND_WORDS, key=len, reverse=True))
    + r"):(.*)",
    re.ASCII | re.IGNORECASE | re.DOTALL,
)
_SAFE_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@#+-]*", re.ASCII)

# Options: which take a value, and which verbs accept which.
_VALUE_OPTIONS = frozenset({"--version", "--reason", "--env"})
_FLAG_OPTIONS = frozenset({"--all-versions", "--extend-waits", "--queue-entries"})
_OPTIONS_BY_VERB: Mapping[Verb, frozenset[str]] = {
    Verb.HELP: frozenset(),
    Verb.STATUS: frozenset({"--env"}),
    Verb.PAUSE: frozenset(
        {"--version", "--all-versions", "--extend-waits", "--queue-entries", "--reason", "--env"}
    ),
    Verb.RESUME: frozenset({"--version", "--all-versions", "--env"}),
    Verb.STOP: frozenset({"--version", "--env"}),
    Verb.RUN: frozenset({"--env"}),
    Verb.LIST: frozenset({"--env"}),
    Verb.HISTORY: frozenset({"--env"}),
}
_JOURNEY_ONLY_OPTIONS = ("--version", "--all-versions", "--extend-waits", "--queue-entries")
_OPTION_EXAMPLES: Mapping[str, str] = {
    "--version": "--version 3",
    "--reason": '--reason "holiday freeze"',
    "--env": "--env prod",
}

_SHOW_MAX = 40


class _Invalid(Exception):
    """Internal: bad input whose usage line is added by :func:`parse_command`."""

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


@dataclass(frozen=True, slots=True)
class _Token:
    """One word: runs of unquoted and quoted text (an empty quoted run is kept)."""

    parts: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def has_quotes(self) -> bool:
        return any(quoted for _, quoted in self.parts)

    def word(self) -> str | None:
        """The lower-cased text of a wholly unquoted word (a keyword candidate)."""
        return None if self.has_quotes else self.text.lower()

    @property
    def is_option(self) -> bool:
        if not self.parts or self.parts[0][1]:
            return False
        first = self.parts[0][0]
        return len(self.text) > 1 and first[0] in _DASHES

    def split_option(self) -> tuple[str, _Token | None]:
        """``--name=value`` -> (normalised name, value token); the value is None without ``=``."""
        for index, (text, quoted) in enumerate(self.parts):
            if not quoted and "=" in text:
                head, _, tail = text.partition("=")
                name = "".join(t for t, _ in self.parts[:index]) + head
                rest = ((tail, False),) if tail else ()
                return _option_name(name), _Token(rest + self.parts[index + 1 :])
        return _option_name(self.text), None


def _option_name(raw: str) -> str:
    return "--" + raw.lstrip(_DASHES).lower()


def _show(text: str) -> str:
    """A user's word, quoted and shortened for a message."""
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 1] + "\u2026"
    return f"'{text}'"


def _quote_family(char: str) -> str | None:
    if char in _DOUBLE_QUOTES:
        return _DOUBLE_QUOTES
    if char in _SINGLE_QUOTES:
        return _SINGLE_QUOTES
    return None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        parts: list[tuple[str, bool]] = []
        plain: list[str] = []
        can_open = True
        while i < n and not text[i].isspace():
            char = text[i]
            family = _quote_family(char) if can_open else None
            if family is None:
                plain.append(char)
                can_open = char in _OPENS_QUOTE_AFTER
                i += 1
                continue
            if plain:
                parts.append(("".join(plain), False))
                plain = []
            i += 1
            quoted: list[str] = []
            while True:
                if i >= n:
                    raise _Invalid(
                        f"unbalanced quotes: the {char} has no closing quote"
                        f' (quote names with spaces like "Welcome Series")'
                    )
                c = text[i]
                if c == "\\" and i + 1 < n and (text[i + 1] == "\\" or text[i + 1] in family):
                    quoted.append(text[i + 1])
                    i += 2
                elif c in family:
                    i += 1
                    break
                else:
                    quoted.append(c)
                    i += 1
            parts.append(("".join(quoted), True))
            can_open = True
        if plain:
            parts.append(("".join(plain), False))
        tokens.append(_Token(tuple(parts)))
    return tokens


@dataclass(frozen=True, slots=True)
class _Context:
    now: datetime
    default_tz: tzinfo


def parse_command(text: str, *, now: datetime, default_tz: tzinfo = UTC) -> Command:
    """Parse one command line (with or without the leading ``/automation``).

    ``now`` is the reference for ``until`` (which must be in the future); naive date-times
    (and a naive ``now``) are read in ``default_tz``. Raises :class:`BadInput` (with
    ``usage``) on anything that is not a valid command, and nothing else.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        now = now.replace(tzinfo=default_tz)
    ctx = _Context(now=now, default_tz=default_tz)
    try:
        tokens = _tokenize(text)
    except _Invalid as exc:
        raise BadInput(exc.message, usage=_usage_from_raw(text)) from None
    if tokens and tokens[0].word() == SLASH_COMMAND:
        tokens = tokens[1:]
    if not tokens:
        return HelpCommand()
    verb = _verb(tokens[0])
    rest = tokens[1:]
    try:
        if any(_is_help_option(token) for token in rest):
            return HelpCommand(topic=verb)
        return _PARSERS[verb](rest, ctx)
    except _Invalid as exc:
        raise BadInput(exc.message, usage=exc.usage or USAGE[verb]) from None
    except (ValidationError, ValueError, OverflowError) as exc:  # a safety net: never leak
        raise BadInput(
            f"invalid {verb.value} command: {_first_line(exc)}", usage=USAGE[verb]
        ) from None


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors()[0].get("msg", "invalid value"))
    return (str(exc).splitlines() or ["invalid value"])[0]


def _usage_from_raw(text: str) -> str:
    words = text.split()
    if words and words[0].lower() == SLASH_COMMAND:
        words = words[1:]
    if words and words[0].lower() in VERB_ALIASES:
        return USAGE[VERB_ALIASES[words[0].lower()]]
    return GENERAL_USAGE


def _verb(token: _Token) -> Verb:
    word = token.text.lower()
    if word in VERB_ALIASES:
        return VERB_ALIASES[word]
    names = ", ".join(v.value for v in Verb)
    close = difflib.get_close_matches(word, list(VERB_ALIASES), n=1, cutoff=0.6)
    if close:
        raise BadInput(
            f"unknown command {_show(token.text)}. Did you mean {close[0]}? Commands: {names}.",
            usage=USAGE[VERB_ALIASES[close[0]]],
        )
    raise BadInput(f"unknown command {_show(token.text)}. Commands: {names}.", usage=GENERAL_USAGE)


def _is_help_option(token: _Token) -> bool:
    return token.is_option and token.split_option()[0] in ("--help", "--h")


# -- options ----------------------------------------------------------------------------


def _split_options(
    verb: Verb, tokens: Sequence[_Token]
) -> tuple[list[_Token], dict[str, _Token | None]]:
    """Separate positional words from options; values of value options are tokens."""
    allowed = _OPTIONS_BY_VERB[verb]
    positionals: list[_Token] = []
    options: dict[str, _Token | None] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.is_option:
            positionals.append(token)
            continue
        name, value = token.split_option()
        if name not in allowed:
            raise _Invalid(_option_refusal(verb, name, token.text))
        if name in options:
            raise _Invalid(f"{name} is given twice")
        if name in _VALUE_OPTIONS:
            if value is None:
                if i >= len(tokens) or tokens[i].is_option:
                    raise _Invalid(f"{name} needs a value, e.g. {_OPTION_EXAMPLES[name]}")
                value = tokens[i]
                i += 1
            elif not value.parts:
                raise _Invalid(f"{name} needs a value, e.g. {_OPTION_EXAMPLES[name]}")
            options[name] = value
        else:
            if value is not None:
                raise _Invalid(f"{name} takes no value")
            options[name] = None
    return positionals, options


def _option_refusal(verb: Verb, name: str, raw: str) -> str:
    if verb is Verb.STOP and name == "--all-versions":
        return "stop works on one version at a time: use --version N (default: the latest)"
    known = _VALUE_OPTIONS | _FLAG_OPTIONS
    if name in known:
        verbs = [v.value for v in Verb if name in _OPTIONS_BY_VERB[v]]
        return f"{name} is not an option of {verb.value} (it works with {', '.join(verbs)})"
    allowed = sorted(_OPTIONS_BY_VERB[verb])
    if not allowed:
        return f"{verb.value} takes no options, got {_show(raw)}"
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else ""
    return f"unknown option {_show(raw)} for {verb.value}.{hint} Options: {', '.join(allowed)}."


def _environment(value: str) -> str:
    if not _ENV_RE.fullmatch(value):
        raise _Invalid(
            f"{_show(value)} is not an environment name (letters, digits, '_', '.', '-')"
        )
    return value


def _version(token: _Token) -> int:
    match = _VERSION_RE.fullmatch(token.text)
    if match is None or int(match.group(1)) < 1:
        raise _Invalid(f"--version takes a positive whole number, got {_show(token.text)}")
    return int(match.group(1))


def _versions(options: Mapping[str, _Token | None]) -> VersionSelector:
    version_token = options.get("--version")
    all_versions = "--all-versions" in options
    if version_token is not None and all_versions:
        raise _Invalid("choose either --version N or --all-versions, not both")
    if version_token is not None:
        return VersionSelector(version=_version(version_token))
    return VersionSelector(all_versions=all_versions)


# -- targets ----------------------------------------------------------------------------


def _target(token: _Token) -> TargetRef:
    parts = list(token.parts)
    environment: str | None = None
    kind: TargetKind | None = None
    if parts and not parts[0][1] and "/" in parts[0][0].partition(":")[0]:
        # a '/' after 'kind:' is in the name: automation:emea/welcome (a business unit)
        head, _, tail = parts[0][0].partition("/")
        if not _ENV_RE.fullmatch(head):
            raise _Invalid(
                f"{_show(head)} before '/' in {_show(token.text)} is not an environment name"
                " (quote the name if '/' is part of it)"
            )
        environment = head
        parts[0] = (tail, False)
    if parts and not parts[0][1] and ":" in parts[0][0]:
        head, _, tail = parts[0][0].partition(":")
        if head.lower() not in KIND_WORDS:
            raise _Invalid(
                f"unknown kind {_show(head)} in {_show(token.text)}: kinds are "
                f"{', '.join(k.value for k in TargetKind)} (quote the name if ':' is part of it)"
            )
        kind = KIND_WORDS[head.lower()]
        parts[0] = (tail, False)
    rest = [part for part in parts if part[0] or part[1]]
    if kind is None and len(rest) == 1 and rest[0][1]:
        # the whole target quoted: "automation:Daily Send", "prod/automation:Daily Send"
        prefixed = _quoted_prefix(rest[0][0], allow_environment=environment is None)
        if prefixed is not None:
            quoted_environment, kind, tail = prefixed
            environment = environment or quoted_environment
            parts = [(tail, True)]
    name = "".join(text for text, _ in parts).strip()
    if not name:
        raise _Invalid(f"the target {_show(token.text)} has no name")
    return TargetRef(environment=environment, kind=kind, name=name)


BULK_USAGE = (
    f"{SLASH_COMMAND} pause|resume|stop <env>/<kind>:<pattern> (or <env>/*:<pattern>)"
    " [for <N>d|<N>h | until <date-time>] [then resume|stop|keep]"
    " (* matches any text, ? one character)"
)


def _pattern(token: _Token, env_option: _Token | None) -> BulkPattern | None:
    """A bulk target (``prod/automation:bf25-*``, ``prod/*:bf25-*``), or None when
    ``token`` names one target. Wildcards count in unquoted text; once they do, ``*`` and
    ``?`` anywhere in the pattern are wildcards."""
    unquoted = "".join(text for text, quoted in token.parts if not quoted)
    if not has_wildcards(unquoted):
        return None
    text = token.text
    environment: str | None = None
    head, slash, rest = text.partition("/")
    if slash and _ENV_RE.fullmatch(head):
        environment, text = head, rest
    kind_word, colon, glob = text.partition(":")
    if not colon:
        raise _Invalid(
            f"{_show(token.text)} looks like a bulk pattern: give its environment and kind,"
            " e.g. prod/automation:bf25-* or prod/*:bf25-* (quote a name with '*' or '?')",
            usage=BULK_USAGE,
        )
    kind: TargetKind | None = None
    if kind_word != "*":
        if kind_word.lower() not in KIND_WORDS:
            raise _Invalid(
                f"unknown kind {_show(kind_word)} in {_show(token.text)}: kinds are "
                f"{', '.join(k.value for k in TargetKind)}, or * for every kind",
                usage=BULK_USAGE,
            )
        kind = KIND_WORDS[kind_word.lower()]
    if not glob.strip() or not glob.strip("*?").strip():
        raise _Invalid(
            f"the pattern {_show(token.text)} has no name part: say which names it matches,"
            " e.g. bf25-*",
            usage=BULK_USAGE,
        )
    if env_option is not None:
        option = _environment(env_option.text)
        if environment is not None and environment != option:
            raise _Invalid(
                f"two environments given: {_show(environment)} in the pattern and"
                f" {_show(option)} in --env"
            )
        environment = option
    if environment is None:
        raise _Invalid(
            f"a bulk pattern names its environment: e.g. prod/{kind_word}:{glob}"
            " (or add --env prod)",
            usage=BULK_USAGE,
        )
    return BulkPattern(environment=environment, kind=kind, glob=glob.strip())


def parse_pattern(text: str, *, environment: str) -> BulkPattern:
    """A bulk pattern typed in a form field next to a chosen environment: ``bf25-*`` (every
    kind), ``automation:bf25-*``, ``*:bf25-*`` or ``prod/journey:bf25-*``. Raises
    :class:`BadInput` on a pattern without a wildcard or one that names another environment."""
    text = text.strip()
    head, colon, _ = text.partition(":")
    bare_head = head.rpartition("/")[2]
    if not colon or (bare_head != "*" and bare_head.lower() not in KIND_WORDS):
        text = f"*:{text}"  # no kind given: every kind
    if not has_wildcards(text.partition(":")[2]):
        raise BadInput(
            "A pattern uses * (any text) or ? (one character), e.g. bf25-*; "
            "to act on one target, pick it above."
        )
    try:
        pattern = _pattern(_Token(((text, False),)), _Token(((environment, False),)))
    except _Invalid as exc:
        raise BadInput(exc.message) from None
    assert pattern is not None  # it has wildcards
    return pattern


def _bulk(
    verb: Verb, positionals: Sequence[_Token], options: Mapping[str, _Token | None]
) -> BulkPattern | None:
    """The pattern of a bulk command (checked against its options), or None."""
    if not positionals:
        return None
    pattern = _pattern(positionals[0], options.get("--env"))
    if pattern is None:
        return None
    for option in ("--version", "--all-versions"):
        if option in options:
            raise _Invalid(
                f"{option} does not apply to a bulk {verb.value}: it acts on each journey's"
                " latest version",
                usage=BULK_USAGE,
            )
    return pattern


def _quoted_prefix(
    text: str, *, allow_environment: bool
) -> tuple[str | None, TargetKind, str] | None:
    """``[env/]kind:name`` inside one quoted target, or None when it is a plain name."""
    match = _QUOTED_TARGET_RE.fullmatch(text.strip())
    if match is None:
        return None
    environment, kind_word, name = match.groups()
    if environment is not None and not allow_environment:
        return None
    return environment, KIND_WORDS[kind_word.lower()], name


def _with_environment(target: TargetRef, option: _Token | None) -> TargetRef:
    if option is None:
        return target
    environment = _environment(option.text)
    if target.environment is not None and target.environment != environment:
        raise _Invalid(
            f"two environments given: {_show(target.environment)} in the target and"
            f" {_show(environment)} in --env"
        )
    return TargetRef(environment=environment, kind=target.kind, name=target.name)


def _missing_target(verb: Verb) -> _Invalid:
    extra = " (or just 'pause' to open the form)" if verb is Verb.PAUSE else ""
    return _Invalid(f"{verb.value} needs a target, e.g. journey:welcome-series{extra}")


def _unexpected(token: _Token, target: TargetRef | None, *, after_target: bool) -> _Invalid:
    if after_target and target is not None and _DURATION_RE.fullmatch(token.text):
        return _Invalid(f"unexpected {_show(token.text)}: did you mean 'for {token.text}'?")
    if after_target and target is not None:
        example = quote(f"{target.name} {token.text}")
        return _Invalid(
            f"unexpected {_show(token.text)} after the target: quote names with spaces,"
            f" e.g. {example}"
        )
    return _Invalid(f"unexpected {_show(token.text)}")


def _single_target(
    verb: Verb, tokens: Sequence[_Token]
) -> tuple[TargetRef, dict[str, _Token | None]]:
    positionals, options = _split_options(verb, tokens)
    if not positionals:
        raise _missing_target(verb)
    target = _with_environment(_target(positionals[0]), options.get("--env"))
    if len(positionals) > 1:
        raise _unexpected(positionals[1], target, after_target=True)
    return target, options


def _journey_only(target: TargetRef, what: Iterable[str]) -> None:
    if target.kind is None or target.kind is TargetKind.JOURNEY:
        return
    first = next(iter(what), None)
    if first is not None:
        raise _Invalid(f"{first} is only for journeys, not for {target.kind.value} targets")


# -- pause lengths and ends -------------------------------------------------------------


def _duration(positionals: Sequence[_Token], i: int) -> tuple[timedelta, int]:
    if i >= len(positionals):
        raise _Invalid("'for' needs a length, e.g. for 3d or for 12h")
    text = positionals[i].text
    i += 1
    if (
        text.isascii()
        and text.isdigit()
        and i < len(positionals)
        and _UNIT_RE.fullmatch(positionals[i].text)  # "for 3 days"
    ):
        text += positionals[i].text
        i += 1
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise _Invalid(f"{_show(text)} is not a pause length: use e.g. 3d, 12h or 1d12h")
    days, hours, minutes = (match.group(g) for g in (1, 3, 5))
    if any(value is not None and len(value) > 6 for value in (days, hours, minutes)):
        raise _Invalid(f"a pause lasts at most {MAX_PAUSE.days} days")
    length = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
    if length <= timedelta(0):
        raise _Invalid(f"the pause length must be more than zero, got {_show(text)}")
    if length > MAX_PAUSE:
        raise _Invalid(f"a pause lasts at most {MAX_PAUSE.days} days, got {_show(text)}")
    return length, i


def _until(positionals: Sequence[_Token], i: int, ctx: _Context) -> tuple[datetime, int]:
    if i >= len(positionals):
        raise _Invalid("'until' needs a date-time, e.g. until 2026-12-01T09:00")
    text = positionals[i].text
    i += 1
    if (
        _DATE_RE.fullmatch(text)
        and i < len(positionals)
        and _TIME_RE.fullmatch(positionals[i].text)  # "until 2026-12-01 09:00"
    ):
        text += "T" + positionals[i].text
        i += 1
    end = _parse_datetime(text, ctx.default_tz)
    try:
        if end <= ctx.now:
            raise _Invalid(f"{_show(text)} is in the past: 'until' needs a time in the future")
        if end - ctx.now > MAX_PAUSE:
            raise _Invalid(f"a pause lasts at most {MAX_PAUSE.days} days, {_show(text)} is later")
    except OverflowError:
        raise _Invalid(f"{_show(text)} is out of range") from None
    return end, i


def _parse_datetime(text: str, default_tz: tzinfo) -> datetime:
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise _Invalid(
            f"{_show(text)} is not an ISO date-time: use e.g. 2026-12-01T09:00,"
            " 2026-12-01T09:00Z or 2026-12-01T09:00+01:00"
        )
    year, month, day, hour, minute, second, fraction, offset, date_offset = match.groups()
    try:
        day_part = date(int(year), int(month), int(day))
    except ValueError:
        raise _Invalid(f"{_show(text)} is not a valid date") from None
    try:
        time_part = time(
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise _Invalid(f"{_show(text)} is not a valid time of day") from None
    zone = _offset(offset or date_offset, text) or default_tz
    return datetime.combine(day_part, time_part, tzinfo=zone)


def _offset(text: str | None, whole: str) -> tzinfo | None:
    if text is None:
        return None
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise _Invalid(f"{_show(whole)} has an invalid UTC offset {_show(text)}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


# -- one parser per verb ----------------------------------------------------------------


def _parse_help(tokens: Sequence[_Token], ctx: _Context) -> Command:
    positionals, _ = _split_options(Verb.HELP, tokens)
    if not positionals:
        return HelpCommand()
    word = positionals[0].text.lower()
    if word not in VERB_ALIASES:
        close = difflib.get_close_matches(word, list(VERB_ALIASES), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        topics = ", ".join(v.value for v in Verb)
        raise _Invalid(f"no help on {_show(positionals[0].text)}.{hint} Topics: {topics}.")
    if len(positionals) > 1:
        raise _unexpected(positionals[1], None, after_target=False)
    return HelpCommand(topic=VERB_ALIASES[word])


def _parse_status(tokens: Sequence[_Token], ctx: _Context) -> Command:
    target, _ = _single_target(Verb.STATUS, tokens)
    return StatusCommand(target=target)


def _parse_run(tokens: Sequence[_Token], ctx: _Context) -> Command:
    target, _ = _single_target(Verb.RUN, tokens)
    return RunCommand(target=target)


def _parse_history(tokens: Sequence[_Token], ctx: _Context) -> Command:
    target, _ = _single_target(Verb.HISTORY, tokens)
    return HistoryCommand(target=target)


def _parse_resume(tokens: Sequence[_Token], ctx: _Context) -> Command:
    positionals, options = _split_options(Verb.RESUME, tokens)
    if len(positionals) == 2 and positionals[0].word() == "batch" and not options:
        return ResumeBatchCommand(batch_id=positionals[1].text)
    bulk = _bulk_simple(Verb.RESUME, positionals, options)
    if bulk is not None:
        return bulk
    target, options = _single_target(Verb.RESUME, tokens)
    _journey_only(target, (o for o in _JOURNEY_ONLY_OPTIONS if o in options))
    return ResumeCommand(target=target, versions=_versions(options))


def _parse_stop(tokens: Sequence[_Token], ctx: _Context) -> Command:
    positionals, options = _split_options(Verb.STOP, tokens)
    bulk = _bulk_simple(Verb.STOP, positionals, options)
    if bulk is not None:
        return bulk
    target, options = _single_target(Verb.STOP, tokens)
    _journey_only(target, (o for o in _JOURNEY_ONLY_OPTIONS if o in options))
    return StopCommand(target=target, versions=_versions(options))


def _bulk_simple(
    verb: Verb, positionals: Sequence[_Token], options: Mapping[str, _Token | None]
) -> BulkCommand | None:
    pattern = _bulk(verb, positionals, options)
    if pattern is None:
        return None
    if len(positionals) > 1:
        raise _unexpected(positionals[1], None, after_target=False)
    action = Verb.RESUME if verb is Verb.RESUME else Verb.STOP
    return BulkCommand(action=action, pattern=pattern)


def _parse_pause(tokens: Sequence[_Token], ctx: _Context) -> Command:
    if not tokens:
        return OpenPauseModal()
    positionals, options = _split_options(Verb.PAUSE, tokens)
    if not positionals or positionals[0].word() in _PAUSE_KEYWORDS:
        raise _missing_target(Verb.PAUSE)
    pattern = _bulk(Verb.PAUSE, positionals, options)
    if pattern is None:
        target = _with_environment(_target(positionals[0]), options.get("--env"))
    else:
        target = TargetRef(environment=pattern.environment, kind=pattern.kind, name=pattern.glob)
    length: timedelta | None = None
    end: datetime | None = None
    then: ThenAction | None = None
    i = 1
    while i < len(positionals):
        token = positionals[i]
        word = token.word()
        i += 1
        if word in ("for", "until"):
            if length is not None or end is not None:
                raise _Invalid("give one pause length: either 'for ...' or 'until ...'")
            if word == "for":
                length, i = _duration(positionals, i)
            else:
                end, i = _until(positionals, i, ctx)
        elif word == "then":
            if then is not None:
                raise _Invalid("'then' is given twice")
            if i >= len(positionals):
                raise _Invalid("'then' needs resume, stop or keep")
            action = positionals[i].text.lower()
            if action not in {a.value for a in ThenAction}:
                raise _Invalid(
                    f"then {_show(positionals[i].text)}: use then resume, then stop or then keep"
                )
            then = ThenAction(action)
            i += 1
        else:
            raise _unexpected(token, target, after_target=i == 2)
    if then is not None and length is None and end is None:
        raise _Invalid(
            "'then' needs a pause length: add 'for 3d' or 'until <date-time>'"
            " (a pause without one has no end)"
        )
    journey_only = [o for o in _JOURNEY_ONLY_OPTIONS if o in options]
    if then is ThenAction.STOP:
        journey_only.insert(0, "'then stop'")
    _journey_only(target, journey_only)
    reason: str | None = None
    reason_token = options.get("--reason")
    if reason_token is not None:
        reason = reason_token.text.strip()
        if not reason:
            raise _Invalid('--reason needs some text, e.g. --reason "holiday freeze"')
    pause_options = PauseOptions(
        duration=length,
        until=end,
        then=then or ThenAction.RESUME,
        extend_waits="--extend-waits" in options,
        queue_entries="--queue-entries" in options,
        reason=reason,
    )
    if target.kind is TargetKind.JOURNEY:
        # the grammar's own kind word: refused before any provider is asked (the service
        # checks the declared traits again once the target is resolved)
        too_long = rules.pause_longer_than(
            MAX_JOURNEY_PAUSED_DAYS, "Journey Builder", "journey", pause_options, ctx.now
        )
        if too_long is not None:
            raise _Invalid(too_long)
    if pattern is not None:
        return BulkCommand(action=Verb.PAUSE, pattern=pattern, options=pause_options)
    return PauseCommand(target=target, options=pause_options, versions=_versions(options))


def _parse_list(tokens: Sequence[_Token], ctx: _Context) -> Command:
    positionals, options = _split_options(Verb.LIST, tokens)
    scope = ListScope.PAUSED
    kind: TargetKind | None = None
    i = 0
    if i < len(positionals) and positionals[i].word() in _SCOPES:
        scope = _SCOPES[positionals[i].text.lower()]
        i += 1
    if i < len(positionals) and positionals[i].word() in KIND_WORDS:
        kind = KIND_WORDS[positionals[i].text.lower()]
        i += 1
    text_filter = " ".join(token.text for token in positionals[i:]).strip() or None
    env_token = options.get("--env")
    environment = _environment(env_token.text) if env_token is not None else None
    return ListCommand(scope=scope, kind=kind, filter=text_filter, environment=environment)


_PARSERS: Mapping[Verb, Callable[[Sequence[_Token], _Context], Command]] = {
    Verb.HELP: _parse_help,
    Verb.STATUS: _parse_status,
    Verb.PAUSE: _parse_pause,
    Verb.RESUME: _parse_resume,
    Verb.STOP: _parse_stop,
    Verb.RUN: _parse_run,
    Verb.LIST: _parse_list,
    Verb.HISTORY: _parse_history,
}


# -- rendering --------------------------------------------------------------------------

_RESERVED_WORDS = frozenset(_PAUSE_KEYWORDS | set(_SCOPES) | set(KIND_WORDS))


def quote(text: str) -> str:
    """``text`` as one word: bare when that parses back the same, else double-quoted."""
    if _SAFE_WORD_RE.fullmatch(text) and text.lower() not in _RESERVED_WORDS:
        return text
    return quote_always(text)


def quote_always(text: str) -> str:
    """``text`` double-quoted (quotes and backslashes escaped)."""
    escaped = "".join(f"\\{c}" if c == "\\" or c in _DOUBLE_QUOTES else c for c in text)
    return f'"{escaped}"'


def format_target(target: TargetRef) -> str:
    """``[<env>/][<kind>:]<name>``, the name quoted when needed."""
    environment = f"{target.environment}/" if target.environment else ""
    kind = f"{target.kind.value}:" if target.kind else ""
    name = target.name
    if target.kind is None and _quoted_prefix(name, allow_environment=True) is not None:
        # a name that looks like "kind:..." is quoted in two parts so it stays a name
        head, _, tail = name.partition(":")
        return f"{environment}{quote_always(head)}{quote_always(':' + tail)}"
    unit, slash, rest = name.partition("/")
    if target.kind is not None and slash and rest and _SAFE_WORD_RE.fullmatch(unit):
        # a business unit before the key: automation:emea/welcome-send
        return f"{environment}{kind}{unit}/{quote(rest)}"
    return f"{environment}{kind}{quote(name)}"


def format_duration(length: timedelta) -> str:
    """``3d``, ``12h``, ``1d12h30m``; seconds round up to the next minute."""
    minutes = -(-length // timedelta(minutes=1))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def _format_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None or offset % timedelta(minutes=1):
        value = value.astimezone(UTC)
        offset = timedelta(0)
    spec = "minutes" if not (value.second or value.microsecond) else "auto"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if offset == timedelta(0) else text


def _format_versions(versions: VersionSelector) -> list[str]:
    if versions.all_versions:
        return ["--all-versions"]
    if versions.version is not None:
        return [f"--version {versions.version}"]
    return []


def format_command(command: Command) -> str:
    """Canonical text of a command (without ``/automation``) that parses back equal."""
    words: list[str]
    match command:
        case HelpCommand(topic=topic):
            words = ["help"] + ([topic.value] if topic else [])
        case OpenPauseModal():
            words = ["pause"]
        case PauseCommand(target=target, options=options, versions=versions):
            words = ["pause", format_target(target)]
            if options.duration is not None:
                words += ["for", format_duration(options.duration)]
            if options.until is not None:
                words += ["until", _format_datetime(options.until)]
            if options.timed or options.then is not ThenAction.RESUME:
                words += ["then", options.then.value]
            words += _format_versions(versions)
            words += ["--extend-waits"] if options.extend_waits else []
            words += ["--queue-entries"] if options.queue_entries else []
            if options.reason is not None:
                words += ["--reason", quote(options.reason)]
        case (
            ResumeCommand(target=target, versions=versions)
            | StopCommand(target=target, versions=versions)
        ):
            words = [command.verb.value, format_target(target), *_format_versions(versions)]
        case (
            StatusCommand(target=target) | RunCommand(target=target) | HistoryCommand(target=target)
        ):
            words = [command.verb.value, format_target(target)]
        case BulkCommand(action=action, pattern=pattern, options=options):
            words = [action.value, pattern.label()]
            if options is not None:
                pause = format_command(
                    PauseCommand(target=TargetRef(name="x"), options=options)
                ).split(" ", 2)
                words += pause[2:]
        case ResumeBatchCommand(batch_id=batch_id):
            words = ["resume", "batch", quote(batch_id)]
        case ListCommand(scope=scope, kind=kind, filter=text_filter, environment=environment):
            words = ["list", scope.value]
            words += [kind.value] if kind else []
            words += [quote(text_filter)] if text_filter else []
            words += ["--env", environment] if environment else []
    return " ".join(words)
