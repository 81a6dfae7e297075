"""Help texts for the command grammar (DESIGN §4): usage lines, examples, explanations.

Pure text, shared by the grammar parser (every :class:`~bot.domain.errors.BadInput` carries
the usage line of its verb), the Slack layer and the console.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.domain.models import Verb

SLASH_COMMAND = "/automation"

TARGET_SYNTAX = "[<env>/][<kind>:]<key-or-name>"

#: One usage line per verb, exactly as DESIGN §4 states the public grammar.
USAGE: Mapping[Verb, str] = {
    Verb.HELP: f"{SLASH_COMMAND} help [verb]",
    Verb.STATUS: f"{SLASH_COMMAND} status <target>",
    Verb.PAUSE: (
        f"{SLASH_COMMAND} pause <target> [for <N>d|<N>h | until <ISO date-time>]"
        " [then resume|stop|keep] [--version N | --all-versions] [--extend-waits]"
        ' [--queue-entries] [--reason "..."]'
    ),
    Verb.RESUME: f"{SLASH_COMMAND} resume <target> [--version N | --all-versions]",
    Verb.STOP: f"{SLASH_COMMAND} stop <target> [--version N]",
    Verb.RUN: f"{SLASH_COMMAND} run <target>",
    Verb.LIST: f"{SLASH_COMMAND} list [paused|all] [<kind>] [<filter>] [--env <env>]",
    Verb.HISTORY: f"{SLASH_COMMAND} history <target>",
}

#: Used when the verb itself is unknown.
GENERAL_USAGE = (
    f"{SLASH_COMMAND} <{'|'.join(v.value for v in Verb)}> ...  (try `{SLASH_COMMAND} help`)"
)

#: One line per verb, for the overview.
SUMMARY: Mapping[Verb, str] = {
    Verb.HELP: "this help, or the details of one command",
    Verb.STATUS: "show a target's current state as the provider reports it",
    Verb.PAUSE: "pause a target, for a while or until a time; no arguments opens a form",
    Verb.RESUME: "resume a paused target",
    Verb.STOP: "stop a target (a journey version, an automation's schedule, a scrip run)",
    Verb.RUN: "run an automation or scrip automation once, now (alias: start)",
    Verb.LIST: "list paused (or all) targets",
    Verb.HISTORY: "show what the bot did to a target, newest first",
}

#: Two or three examples per verb; the first one is shown in the overview.
EXAMPLES: Mapping[Verb, tuple[str, ...]] = {
    Verb.HELP: (f"{SLASH_COMMAND} help pause", f"{SLASH_COMMAND} help"),
    Verb.STATUS: (
        f"{SLASH_COMMAND} status journey:welcome-series",
        f'{SLASH_COMMAND} status prod/automation:"Nightly Import"',
        f"{SLASH_COMMAND} status daily-digest --env staging",
    ),
    Verb.PAUSE: (
        f"{SLASH_COMMAND} pause welcome-series for 3d then resume",
        f"{SLASH_COMMAND} pause prod/journey:welcome until 2026-12-01T09:00 then stop"
        f' --all-versions --reason "holiday freeze"',
        f"{SLASH_COMMAND} pause",
    ),
    Verb.RESUME: (
        f"{SLASH_COMMAND} resume welcome-series",
        f"{SLASH_COMMAND} resume prod/journey:welcome --version 3",
    ),
    Verb.STOP: (
        f"{SLASH_COMMAND} stop scrip:reengagement",
        f"{SLASH_COMMAND} stop prod/journey:welcome --version 2",
    ),
    Verb.RUN: (
        f'{SLASH_COMMAND} run automation:"Nightly Import"',
        f"{SLASH_COMMAND} start staging/scrip:daily-digest",
    ),
    Verb.LIST: (
        f"{SLASH_COMMAND} list",
        f"{SLASH_COMMAND} list all journey welcome --env prod",
    ),
    Verb.HISTORY: (
        f"{SLASH_COMMAND} history journey:welcome-series",
        f"{SLASH_COMMAND} history prod/scrip:daily-digest",
    ),
}

_EXPLANATION: Mapping[Verb, str] = {
    Verb.HELP: "Shows every command, or the usage, examples and notes of one command.",
    Verb.STATUS: (
        "Reads the target's state from its provider (SFMC Automation Studio, Journey Builder "
        "or scrip) and shows it with the schedule, last and next run, and journey versions."
    ),
    Verb.PAUSE: (
        "Pauses the target. `for <N>d` / `for <N>h` (also `90m`, `1d12h`) or "
        "`until <date-time>` makes it a timed pause; `then` says what happens when it ends: "
        "`resume` (the default), `stop` (journeys only) or `keep` (stay paused; the bot "
        "only reminds). Without a length the pause has no end. "
        "Type just `pause` to open a form instead."
    ),
    Verb.RESUME: (
        "Resumes a paused target: an automation goes back onto the schedule it had before "
        "the pause, a journey version starts accepting contacts again."
    ),
    Verb.STOP: (
        "Stops the target: a journey version is stopped for good, an automation's schedule "
        "or current run is stopped, a scrip automation's current run is cancelled."
    ),
    Verb.RUN: (
        "Runs an automation (or a scrip automation) once, right now. It does NOT unpause: "
        "a paused automation stays paused; use `resume` for that."
    ),
    Verb.LIST: (
        "Lists paused targets (`paused`, the default) or every target (`all`), optionally "
        "only one kind and only names containing <filter>."
    ),
    Verb.HISTORY: "Shows the requests, approvals and actions on the target, newest first.",
}

_NOTES: Mapping[Verb, tuple[str, ...]] = {
    Verb.HELP: (),
    Verb.STATUS: (),
    Verb.PAUSE: (
        "Journeys only: `then stop`, `--version N` / `--all-versions` (default: the latest "
        "version), `--extend-waits` (extend *Wait by Duration* steps by the pause length) "
        "and `--queue-entries` (queue new entries while paused and process them on resume; "
        "without it they are dropped).",
        "`until` takes an ISO 8601 date-time (`2026-12-01T09:00`, `2026-12-01T09:00Z`, "
        "`2026-12-01T09:00+01:00`, or a date alone for midnight); without an offset it is "
        "read in the bot's time zone. It must be in the future.",
        "`then` needs a length (`for` or `until`). Journey pauses last at most 14 days.",
        "A pause lasts at most 365 days.",
    ),
    Verb.RESUME: ("Journeys only: `--version N` or `--all-versions`.",),
    Verb.STOP: (
        "Journeys only: `--version N` (default: the latest version); "
        "stop works on one version at a time.",
        "Stopping a journey version ejects every contact in it and cannot be undone.",
    ),
    Verb.RUN: ("Journeys cannot be run. `start` is the same command.",),
    Verb.LIST: ("<kind> is automation, journey or scrip.",),
    Verb.HISTORY: (),
}

_TARGET_NOTE = (
    f"<target> is `{TARGET_SYNTAX}`: kinds are automation, journey and scrip; quote names "
    'with spaces (automation:"Nightly Import", or the whole target: "automation:Nightly '
    'Import"); `--env <env>` also sets the environment. A bare name is looked up in the '
    "environment's providers; case, extra spaces, '-' and '_' do not matter. Where an "
    "environment has several SFMC business units, a key names its unit: "
    "`automation:emea/welcome-send`."
)

_BULK_NOTE = (
    "Many targets at once: `pause|resume|stop <env>/<kind>:<pattern>` (or `<env>/*:<pattern>` "
    "for every kind), e.g. `pause prod/*:bf25-* for 2d`: `*` matches any text and `?` one "
    "character, in names and keys. The bot shows a preview first (each target, its state, "
    "what is skipped and why); confirming acts on exactly that set (one approval on "
    "production). `resume batch <id>` puts back exactly what a batch paused."
)

_APPROVAL_NOTE = (
    "Changes (pause, resume, stop, run) on a production environment need an approver: "
    "the bot posts a request card and acts once it is approved."
)

_TARGET_VERBS = frozenset({Verb.STATUS, Verb.PAUSE, Verb.RESUME, Verb.STOP, Verb.RUN, Verb.HISTORY})
_MUTATING = frozenset({Verb.PAUSE, Verb.RESUME, Verb.STOP, Verb.RUN})
_BULK_VERBS = frozenset({Verb.PAUSE, Verb.RESUME, Verb.STOP})


def help_text(topic: Verb | None = None, *, plain: bool = False) -> str:
    """The overview (``topic=None``) or the full help of one verb, as Slack mrkdwn; or,
    with ``plain``, as plain text for a terminal: no markup, no slash command, no form."""
    text = _overview(plain) if topic is None else _topic(topic, plain)
    return _as_plain(text) if plain else text


def _topic(topic: Verb, plain: bool) -> str:
    summary = SUMMARY[topic]
    if plain and topic is Verb.PAUSE:
        summary = summary.replace(_FORM_SUMMARY, "")
    lines = [f"*{topic.value}*: {summary}", f"Usage: `{USAGE[topic]}`", ""]
    explanation = _EXPLANATION[topic]
    if plain:
        explanation = explanation.replace(_FORM_EXPLANATION, "").rstrip()
    lines.append(explanation)
    lines.append("")
    lines.append("Examples:")
    examples = EXAMPLES[topic]
    if plain:
        examples = tuple(e for e in examples if e != f"{SLASH_COMMAND} pause")
    lines.extend(f"• `{example}`" for example in examples)
    notes = list(_NOTES[topic])
    if topic in _TARGET_VERBS:
        notes.append(_TARGET_NOTE)
    if topic in _BULK_VERBS:
        notes.append(_BULK_NOTE)
    if topic in _MUTATING:
        notes.append(_PLAIN_APPROVAL_NOTE if plain else _APPROVAL_NOTE)
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"• {note}" for note in notes)
    return "\n".join(lines)


def _overview(plain: bool) -> str:
    lines = [
        f"*{SLASH_COMMAND}*: pause, resume, stop, run and inspect marketing automations."
        if not plain
        else "Pause, resume, stop, run and inspect marketing automations.",
        "",
    ]
    for verb in Verb:
        summary = SUMMARY[verb].replace(_FORM_SUMMARY, "") if plain else SUMMARY[verb]
        lines.append(f"• `{verb.value}`: {summary}. e.g. `{EXAMPLES[verb][0]}`")
    lines.extend(
        [
            "",
            _TARGET_NOTE,
            _BULK_NOTE,
            _PLAIN_APPROVAL_NOTE if plain else _APPROVAL_NOTE,
            f"`{SLASH_COMMAND} help <verb>` shows the options of one command.",
        ]
    )
    return "\n".join(lines)


_FORM_SUMMARY = "; no arguments opens a form"
_FORM_EXPLANATION = "Type just `pause` to open a form instead."
_PLAIN_APPROVAL_NOTE = (
    "Changes (pause, resume, stop, run) on a production environment need an approver: "
    "the bot records a request and acts once an approver approves it."
)


_BOLD_RE = re.compile(r"\*([A-Za-z/][\w /-]*)\*")


def _as_plain(text: str) -> str:
    """Slack mrkdwn to plain text: no slash command, no bold, no code marks, plain bullets."""
    text = text.replace(f"{SLASH_COMMAND} ", "")
    text = _BOLD_RE.sub(r"\1", text)  # a pattern's '*' (prod/*:bf25-*) stays
    return text.replace("`", "").replace("• ", "  ")
