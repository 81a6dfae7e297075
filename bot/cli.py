"""The ``automation-bot`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from bot import render
from bot.config import BotConfig, config_from_mapping, config_path, load_config
from bot.defaults import sandbox_config
from bot.domain.approvals import ApprovalPolicy, is_group_id
from bot.domain.commands import Command, HistoryCommand
from bot.domain.errors import BadInput, BotError, ConfigError, ProductionRefused, ProviderError
from bot.domain.grammar import parse_command
from bot.domain.requests import AuditEvent, OperationRequest, RequestStatus, Via
from bot.service.bulk import BatchDone, BatchPreview
from bot.service.commands import SubmittedRequest
from bot.service.directory import Directory
from bot.service.notify import Notifier
from bot.service.operations import MutatingCommand

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.runtime import Runtime

app = typer.Typer(
    help="Pause, resume, stop and run marketing automations safely.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (default: $AUTOMATION_BOT_CONFIG)"),
]


@contextlib.contextmanager
def _embedded_sandbox() -> Iterator[BotConfig]:
    """Start the emulators in-process and yield the embedded default configuration."""
    from sandbox.run import running_sandbox  # the sandbox is only needed for defaults

    with running_sandbox() as urls:
        yield config_from_mapping(
            sandbox_config(
                sfmc_url=urls.sfmc, scrip_url=urls.scrip, database_url="sqlite:///automation-bot.db"
            ),
            source="embedded defaults",
        )


@contextlib.contextmanager
def _config(explicit: Path | None) -> Iterator[tuple[BotConfig, bool]]:
    path = config_path(explicit)
    if path is None:
        with _embedded_sandbox() as cfg:
            yield cfg, True
    else:
        yield load_config(path), False


#: Who asked, in the records, when ``exec`` is run without ``--user``.
CLI_USER = "U0CLI"


@dataclass(frozen=True)
class _SlackLink:
    """Where a production request's card goes (checked before anything is recorded)."""

    token: str
    api_url: str
    policy: ApprovalPolicy


@dataclass(frozen=True)
class _Plan:
    """How ``exec`` runs one command: on the configured database (``recorded``) or on a
    throw-away one, and with Slack for a production request's card."""

    command: Command
    recorded: bool
    slack: _SlackLink | None = None
    #: A bulk command is carried out only when confirmed on the command line (``--yes``).
    yes: bool = False


def _plan(cfg: BotConfig, text: str, *, user: str | None, recorded: bool) -> _Plan:
    """Parse ``text`` and decide where it runs; refuse, before anything is recorded, what
    cannot be carried out completely (a production change without who asked, Slack or a
    migrated database; history without the bot's database)."""
    command = parse_command(text, now=datetime.now(UTC))
    if isinstance(command, MutatingCommand):
        env_name, env = cfg.environment(command.target.environment)
        if env.production:
            return _Plan(command, recorded=True, slack=_approval_preflight(cfg, env_name, user))
    if isinstance(command, HistoryCommand) and not recorded:
        raise ConfigError(
            f"History is kept in the bot's database ({_safe_url(cfg.database_url)}), "
            "which is not migrated: run `automation-bot db upgrade` (with the same --config)."
        )
    return _Plan(command, recorded=recorded)


async def _exec_bulk(runtime: Runtime, preview: BatchPreview, plan: _Plan, user: str | None) -> str:
    """A bulk command: its preview, and with ``--yes`` its execution and result table."""
    text = render.outcome_text(preview)
    if not plan.yes:
        raise _NotConfirmed(
            text + "\nNot carried out: add --yes to confirm exactly this set (exit code 1)."
        )
    if preview.production:
        raise ProductionRefused(
            f"{preview.batch.environment} is a production environment: a bulk request there "
            "needs one approval in Slack; `exec` cannot ask for it. Nothing was changed."
        )
    done = await runtime.commands.confirm_batch(
        preview.batch.id, actor=user or CLI_USER, via=Via.CLI
    )
    text += "\n" + render.outcome_text(done)
    if not plan.recorded:
        text += f"\n  {_not_recorded(runtime.config.database_url)}"
    if isinstance(done, BatchDone) and done.batch.progress().failed:
        raise _Failed(text)
    return text


async def _exec(cfg: BotConfig, plan: _Plan, *, user: str | None) -> str:
    """parse -> handle -> render, as the console and Slack do. Not ``recorded``: the same
    use case on a throw-away in-memory database, and the output says nothing was kept."""
    from bot.runtime import build_runtime
    from bot.service.notify import NullNotifier
    from bot.store import Store

    store = Store.from_url(cfg.database_url if plan.recorded else "sqlite://")
    notifier: Notifier = NullNotifier()
    directory: Directory | None = None
    client = None
    drain: Callable[[float], Awaitable[bool]] | None = None
    if plan.slack is not None:
        from bot.slack.directory import SlackDirectory
        from bot.slack.notifier import SlackNotifier

        client = await _slack_client(plan.slack)
        slack_notifier = SlackNotifier(client=client, store=store, limits=cfg.slack_limits)
        notifier, drain = slack_notifier, slack_notifier.drain
        directory = SlackDirectory(client)  # approver groups are read as `serve` reads them
    runtime = build_runtime(cfg, store=store, notifier=notifier, directory=directory)
    try:
        outcome = await runtime.commands.handle(
            plan.command, actor=user or CLI_USER, via=Via.CLI, channel=None
        )
        if isinstance(outcome, BatchPreview):
            return await _exec_bulk(runtime, outcome, plan, user)
    finally:
        if drain is not None:
            await drain(30.0)  # the thread replies it queued
        await runtime.aclose()
    if not isinstance(outcome, SubmittedRequest):
        return render.outcome_text(outcome, where="on the command line")
    request = outcome.request
    if plan.slack is not None:
        permalink = await _permalink(client, outcome)
        text = _approval_lines(request, plan.slack.policy, permalink)
        if outcome.card is None:
            raise _CardNotPosted(
                text + f"\nerror: the approval card could not be posted to {request.channel} "
                "in Slack, so approvers cannot see this request; it will expire unapproved. "
                "Nothing was changed."
            )
        return text
    text = render.request_lines(
        request, outcome.events, recorded=plan.recorded, ended_by=outcome.ends_natively
    )
    if not plan.recorded:
        text += f"\n  {_not_recorded(cfg.database_url)}"
    if request.status is RequestStatus.FAILED:
        raise _Failed(text)
    if request.status is not RequestStatus.SUCCEEDED:
        raise _Unverified(text)
    return text


def _not_recorded(url: str) -> str:
    from bot.store.db import is_memory

    where = "is in memory" if is_memory(url) else "is not migrated"
    return (
        f"not recorded: the bot's database ({_safe_url(url)}) {where}, so this has no request "
        "id and no history (`automation-bot db upgrade` on a file or server database keeps "
        "them)"
    )


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: say nothing of it
        return "database_url"


def _database_ready(url: str) -> bool:
    """True when the configured database exists and is migrated (a SQLite file that does
    not exist is not created by asking)."""
    from sqlalchemy.engine import make_url

    from bot.store import is_up_to_date
    from bot.store.db import is_memory, is_sqlite

    if is_memory(url):
        return False
    if is_sqlite(url):
        database = make_url(url).database
        if not database or not Path(database).exists():
            return False
    try:
        return is_up_to_date(url)
    except Exception:  # unreachable or not ours: carried out without recording, as before
        return False


class _NotConfirmed(Exception):
    """A bulk command shown (its preview) but not confirmed with ``--yes``."""


class _Failed(Exception):
    """The request was recorded but failed (refused by the provider or a rule)."""


class _Unverified(Exception):
    """The action was accepted but the read-back did not confirm it."""


class _CardNotPosted(Exception):
    """The request was recorded but its approval card could not be posted to Slack."""


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """The command line's one way out for a refusal: its line (:func:`render.error_text`)
    on stderr, and its exit code (2 for bad input or configuration, else 1)."""
    try:
        yield
    except BotError as exc:
        typer.echo(render.error_text(exc, plain=True), err=True)
        raise typer.Exit(exc.exit_code) from None


def run_exec(text: str, *, config: Path | None, user: str | None, yes: bool = False) -> int:
    """Run one command; print the outcome; return the exit code (0 or 1; a refusal exits
    with its own code, 1 or 2, through :func:`_reported`).

    A change on a production environment is not run: it is recorded as a request awaiting
    approval and its card is posted to the environment's approval channel in Slack.
    """
    try:
        with _reported(), _config(config) as (cfg, embedded):
            if embedded:
                typer.echo(
                    "(embedded defaults: the built-in sandbox; state resets every run)", err=True
                )
            plan = _plan(cfg, text, user=user, recorded=_database_ready(cfg.database_url))
            plan = dataclasses.replace(plan, yes=yes)  # only a batch's preview reads it
            out = asyncio.run(_exec(cfg, plan, user=user))
    except (_Unverified, _NotConfirmed) as exc:
        typer.echo(str(exc))
        return 1
    except (_Failed, _CardNotPosted) as exc:
        typer.echo(str(exc), err=True)
        return 1
    typer.echo(out)
    return 0


def _approval_preflight(cfg: BotConfig, env_name: str, user: str | None) -> _SlackLink:
    """What a production change from ``exec`` needs: who asked, an approval channel, a
    Slack token and a migrated database; each refused before anything is recorded."""
    from bot.config import SlackSettings
    from bot.store import is_up_to_date

    if not user:
        raise BadInput(
            f"{env_name} is a production environment: the change becomes a request that "
            "approvers must approve, and they need to know who asked. Give your Slack user "
            "id with --user (e.g. --user U0ALICE). Nothing was changed."
        )
    policy = cfg.approval_policy(env_name)
    if policy is None:  # pragma: no cover - the config validator requires one on production
        raise ConfigError(f"environments.{env_name}: a production environment needs approval.")
    if not policy.channel:
        raise ConfigError(
            f"environments.{env_name}.approval.channel must be set for requests made outside "
            "Slack: the approval card is posted there. Nothing was changed."
        )
    slack = SlackSettings()
    if slack.slack_bot_token is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN is not set: a production request is approved in Slack, so its "
            "card must be posted there (set SLACK_BOT_TOKEN, and SLACK_API_URL for a "
            "non-default Slack API). Nothing was changed."
        )
    if not is_up_to_date(cfg.database_url):
        raise ConfigError(
            f"The database at {cfg.database_url} is not migrated to this version. "
            "Run `automation-bot db upgrade`. Nothing was changed."
        )
    return _SlackLink(
        token=slack.slack_bot_token.get_secret_value(),
        api_url=slack.slack_api_url,
        policy=policy,
    )


async def _slack_client(link: _SlackLink) -> AsyncWebClient:
    """A Slack client whose token Slack accepts (refused before anything is recorded)."""
    from slack_sdk.errors import SlackApiError

    from bot.slack.app import create_web_client

    client = create_web_client(token=link.token, base_url=link.api_url)
    try:
        await client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(
            f"Slack at {link.api_url} refused SLACK_BOT_TOKEN ({exc.response.get('error')}). "
            "Nothing was changed."
        ) from None
    except Exception as exc:  # aiohttp / OS errors: Slack cannot be reached
        raise ProviderError(
            f"Cannot reach Slack at {link.api_url} ({type(exc).__name__}). Nothing was changed",
            provider="Slack",
            retryable=True,
        ) from None
    return client


async def _permalink(client: AsyncWebClient | None, outcome: SubmittedRequest) -> str | None:
    if client is None or outcome.card is None:
        return None
    try:
        response = await client.chat_getPermalink(
            channel=outcome.card.channel, message_ts=outcome.card.ts
        )
        return str(response["permalink"])
    except Exception:  # the link is a convenience; the channel is enough
        return None


def _approval_lines(
    request: OperationRequest, policy: ApprovalPolicy, permalink: str | None
) -> str:
    people = sorted(a for a in policy.approvers if not is_group_id(a))
    groups = sorted(a for a in policy.approvers if is_group_id(a))
    whom = ", ".join([*people, *(f"group {g}" for g in groups)])
    if not policy.allow_self_approval:
        whom += f" (not {request.requested_by})"
    until = (
        request.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if request.expires_at
        else "no expiry"
    )
    where = f"Slack channel {request.channel}"
    if permalink:
        where += f": {permalink}"
    return "\n".join(
        [
            f"Request {request.id} recorded: {request.spec.describe()}",
            f"  requested by {request.requested_by}; awaiting {policy.required} approval(s) "
            f"from {whom} until {until}",
            f"  approve or deny it in {where}",
            "  Nothing was changed yet: it runs once approved.",
        ]
    )


@app.command("exec")
def exec_(
    command: Annotated[str, typer.Argument(help='e.g. "pause journey:welcome for 2d"')],
    config: ConfigOption = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Slack user id to act as (required on production)"),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Carry out a bulk command (without it: only its preview)"),
    ] = False,
) -> None:
    """Run one command of the grammar and print the verified result.

    On a production environment the change is not run: it is recorded as a request awaiting
    approval (needs --user, SLACK_BOT_TOKEN and a migrated database) and its card is posted
    to the environment's approval channel in Slack.

    A bulk command ("pause staging/automation:bf25-* for 2d") prints its preview and is
    carried out only with --yes (without it the exit code is 1).
    """
    raise typer.Exit(run_exec(command, config=config, user=user, yes=yes))


@app.command("sandbox")
def sandbox_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    sfmc_port: Annotated[int, typer.Option(help="SFMC emulator port")] = 8701,
    scrip_port: Annotated[int, typer.Option(help="scrip emulator port")] = 8702,
    slack_port: Annotated[int, typer.Option(help="Slack Web API emulator port")] = 8703,
    write_config: Annotated[
        Path | None, typer.Option(help="Write a config file pointing at the emulators")
    ] = None,
) -> None:
    """Run the provider emulators until interrupted."""
    from sandbox.run import running_sandbox

    with running_sandbox(
        host=host, sfmc_port=sfmc_port, scrip_port=scrip_port, slack_port=slack_port
    ) as urls:
        cfg = sandbox_config(
            sfmc_url=urls.sfmc, scrip_url=urls.scrip, database_url="sqlite:///automation-bot.db"
        )
        text = yaml.safe_dump(cfg, sort_keys=False)
        if write_config:
            write_config.write_text(text, encoding="utf-8")
            typer.echo(f"Wrote {write_config}")
        typer.echo(f"SFMC emulator:  {urls.sfmc}  (auth, SOAP, REST; control at /_sandbox/)")
        typer.echo(f"scrip emulator: {urls.scrip}/v1")
        typer.echo(
            f"Slack emulator: {urls.slack}/api/  (for `serve`: SLACK_API_URL={urls.slack}/api/ "
            "SLACK_BOT_TOKEN=xoxb-sandbox SLACK_SIGNING_SECRET=<any>)"
        )
        typer.echo("Config for these emulators:\n" + text)
        typer.echo("Press Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


@app.command("try")
def try_cmd(
    host: Annotated[str, typer.Option(help="Interface for the page")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the page")] = 8700,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser when one is there")
    ] = True,
) -> None:
    """A local Slack-like page in front of the bot and the sandbox: no workspace needed."""
    from bot.tryit.run import run_try

    with _reported():
        run_try(host=host, port=port, open_browser=open_browser, echo=typer.echo)


DEMO_COMMANDS = (
    "list all automation",
    "status daily-welcome-send",
    'pause daily-welcome-send for 3d then resume --reason "template fix"',
    "resume daily-welcome-send",
    "run monthly-data-cleanup",
    "pause journey:welcome-series for 2d then resume --extend-waits",
    "resume journey:welcome-series",
    "pause journey:cart-abandonment for 15d",
    "pause 'Nightly Points Expiry' for 12h",
    'resume "nightly points expiry"',
    "pause hourly-lead-sinc",
    "pause prod/daily-welcome-send for 1d",
)


@app.command("demo")
def demo(
    config: ConfigOption = None,
) -> None:
    """A short tour of ``exec`` against the sandbox (the embedded defaults)."""
    with _config(config) as (cfg, _):
        for text in DEMO_COMMANDS:
            typer.echo(f"\n$ automation-bot exec {_quote(text)}")
            try:
                plan = _plan(cfg, text, user=None, recorded=False)
                typer.echo(asyncio.run(_exec(cfg, plan, user=None)))
            except (_Unverified, _Failed) as exc:
                typer.echo(str(exc))
            except BotError as exc:
                typer.echo(render.error_text(exc, plain=True))
    typer.echo('\nThat was the built-in sandbox. Try your own: automation-bot exec "help"')


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@app.command("console")
def console_cmd(
    config: ConfigOption = None,
    user: Annotated[str, typer.Option("--user", help="Slack user id to act as")] = "U0CONSOLE",
) -> None:
    """The bot in a terminal: the same commands, cards and threads printed as text."""
    from bot.console import ConsoleNotifier, run_terminal
    from bot.runtime import build_runtime
    from bot.store import Store, upgrade

    def write(text: str) -> None:
        typer.echo(text)

    try:
        with _reported(), _config(config) as (cfg, embedded):
            if embedded:
                typer.echo(
                    "(embedded defaults: the built-in sandbox providers, state resets every run)"
                )
            upgrade(cfg.database_url)
            directory, note = _console_directory(cfg)
            if note:
                typer.echo(note)

            async def make_runtime() -> Runtime:
                store = Store.from_url(cfg.database_url)
                return build_runtime(
                    cfg, store=store, notifier=ConsoleNotifier(write), directory=directory()
                )

            run_terminal(make_runtime, write=write, user=user)
    except KeyboardInterrupt:  # Ctrl-C before the prompt: leave quietly
        raise typer.Exit(130) from None


def _console_directory(cfg: BotConfig) -> tuple[Callable[[], Directory | None], str | None]:
    """Who is in the approver groups, for votes in the console: read from Slack (as
    ``serve`` reads it) when SLACK_BOT_TOKEN is set; otherwise groups count as empty, and
    the console says so when a production environment names groups."""
    from bot.config import SlackSettings

    slack = SlackSettings()
    if slack.slack_bot_token is not None:
        token = slack.slack_bot_token.get_secret_value()

        def slack_directory() -> Directory:
            from bot.slack.app import create_web_client
            from bot.slack.directory import SlackDirectory

            return SlackDirectory(create_web_client(token=token, base_url=slack.slack_api_url))

        return slack_directory, None
    groups = sorted(
        {
            group
            for name in cfg.environments
            if (policy := cfg.approval_policy(name)) is not None
            for group in policy.group_ids
        }
    )
    note = None
    if groups:
        note = (
            f"(approver groups {', '.join(groups)} are read from Slack: set SLACK_BOT_TOKEN, "
            "and SLACK_API_URL for a non-default Slack API, to let their members approve "
            "here; until then only the approvers listed by user id can)"
        )
    return (lambda: None), note


@app.command("serve")
def serve_cmd(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface for the HTTP server")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for /slack/events, /healthz, /metrics")] = 3000,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Apply database migrations before starting")
    ] = False,
) -> None:
    """Run the Slack bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)."""
    from bot.config import SlackSettings
    from bot.logging import configure_logging
    from bot.serve import check_slack_settings, serve
    from bot.store import is_up_to_date, upgrade

    configure_logging()
    with _reported():
        slack = SlackSettings()
        check_slack_settings(slack)
        with _config(config) as (cfg, embedded):
            if embedded:
                typer.echo("(embedded defaults: the built-in sandbox providers)", err=True)
            if migrate:
                upgrade(cfg.database_url)
            elif not is_up_to_date(cfg.database_url):
                raise ConfigError(
                    f"The database at {cfg.database_url} is not migrated to this version. "
                    "Run `automation-bot db upgrade` (or start with --migrate)."
                )
            asyncio.run(serve(cfg, slack, host=host, port=port))


db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every migration to the configured database."""
    from bot.store import current_revision, upgrade

    path = config_path(config)
    with _reported():
        url = load_config(path).database_url if path else "sqlite:///automation-bot.db"
    upgrade(url)
    typer.echo(f"Database is at revision {current_revision(url)}.")


audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(
            f"--since {value!r} is not an ISO-8601 date or time "
            "(e.g. 2024-05-01 or 2024-05-01T09:00:00Z)."
        ) from None
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


async def _audit_rows(database_url: str, since: datetime | None) -> list[dict[str, object]]:
    from bot.store import Store

    store = Store.from_url(database_url)
    try:
        events = await store.audit_since(since)
        targets: dict[str, tuple[str, str, str] | None] = {}
        rows = []
        for event in events:
            target = None
            if event.request_id is not None:
                if event.request_id not in targets:
                    request = await store.get_request(event.request_id)
                    targets[event.request_id] = (
                        (request.spec.environment, request.spec.kind.value, request.spec.key)
                        if request is not None
                        else None
                    )
                target = targets[event.request_id]
            rows.append(_audit_row(event, target))
        return rows
    finally:
        await store.close()


def _audit_row(event: AuditEvent, target: tuple[str, str, str] | None) -> dict[str, object]:
    environment, kind, key = target if target is not None else (None, None, None)
    return {
        "id": event.id,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "via": event.via.value,
        "request_id": event.request_id,
        "environment": environment,
        "kind": kind,
        "target_key": key,
        "detail": event.detail,
    }


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only events at or after this ISO-8601 time (UTC if naive)"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print the audit trail as JSON lines, oldest first.

    One object per event: id, at (ISO-8601 UTC), actor, action, via, request_id,
    environment, kind, target_key (the target of the event's request) and detail.
    """
    from bot.store import is_up_to_date

    with _reported():
        after = _parse_since(since)
        path = config_path(config)
        url = load_config(path).database_url if path else "sqlite:///automation-bot.db"
        if not is_up_to_date(url):
            raise ConfigError(
                f"The database at {url} is not migrated to this version. "
                "Run `automation-bot db upgrade`."
            )
        rows = asyncio.run(_audit_rows(url, after))
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False, default=str))


config_app = typer.Typer(help="Configuration helpers.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration file and print its environments (secrets hidden)."""
    path = config_path(config)
    if path is None:
        typer.echo("No config given (--config or AUTOMATION_BOT_CONFIG): embedded defaults apply.")
        return
    with _reported():
        cfg = load_config(path)
    from bot.config import config_summary

    typer.echo(f"{path} is valid.")
    for line in config_summary(cfg):
        typer.echo(f"  {line}")
    for warning in cfg.warnings():
        typer.echo(f"warning: {warning}")


def main() -> None:
    from bot.logging import configure_logging

    configure_logging(level="WARNING")  # `serve` raises it to INFO
    app(prog_name="automation-bot")


if __name__ == "__main__":  # pragma: no cover
    main()
