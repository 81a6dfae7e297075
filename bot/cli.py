"""The ``automation-bot`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml

from bot import render
from bot.config import BotConfig, config_from_mapping, config_path, load_config
from bot.defaults import sandbox_config
from bot.domain.commands import (
    HelpCommand,
    HistoryCommand,
    ListCommand,
    OpenPauseModal,
    PauseCommand,
    ResumeCommand,
    RunCommand,
    StatusCommand,
    StopCommand,
)
from bot.domain.errors import BadInput, BotError, ConfigError
from bot.domain.grammar import parse_command
from bot.domain.help import USAGE, help_text
from bot.domain.models import Verb
from bot.service.operations import OperationService

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


async def _run_text(cfg: BotConfig, text: str, *, user: str | None) -> str:
    from providers.registry import ProviderRegistry

    command = parse_command(text, now=datetime.now(UTC))
    registry = ProviderRegistry(cfg)
    service = OperationService(environments=registry.environment)
    try:
        match command:
            case HelpCommand(topic=topic):
                return help_text(topic)
            case OpenPauseModal():
                raise BadInput(
                    "The pause form is a Slack modal; on the command line give a target.",
                    usage=USAGE[Verb.PAUSE],
                )
            case StatusCommand(target=ref):
                return render.state_line(await service.status(ref))
            case ListCommand():
                return render.states_table(await service.list_targets(command))
            case HistoryCommand():
                raise BadInput(
                    "history is kept by the Slack bot's database; use /automation history in Slack."
                )
            case PauseCommand() | ResumeCommand() | StopCommand() | RunCommand():
                result = await service.execute(command)
                text_out = render.result_lines(result)
                if user:
                    text_out += f"\n  requested by {user}"
                if not result.verified:
                    raise _Unverified(text_out)
                return text_out
    finally:
        await registry.aclose()


class _Unverified(Exception):
    """The action was accepted but the read-back did not confirm it."""


def run_exec(text: str, *, config: Path | None, user: str | None) -> int:
    """Run one command; print the outcome; return the exit code (0, 1 or 2)."""
    try:
        with _config(config) as (cfg, embedded):
            if embedded:
                typer.echo(
                    "(embedded defaults: the built-in sandbox; state resets every run)", err=True
                )
            out = asyncio.run(_run_text(cfg, text, user=user))
    except _Unverified as exc:
        typer.echo(str(exc))
        return 1
    except BotError as exc:
        typer.echo(render.error_line(exc), err=True)
        return exc.exit_code
    typer.echo(out)
    return 0


@app.command("exec")
def exec_(
    command: Annotated[str, typer.Argument(help='e.g. "pause journey:welcome for 2d"')],
    config: ConfigOption = None,
    user: Annotated[str | None, typer.Option("--user", help="Slack user id to act as")] = None,
) -> None:
    """Run one command of the grammar and print the verified result."""
    raise typer.Exit(run_exec(command, config=config, user=user))


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
                typer.echo(asyncio.run(_run_text(cfg, text, user=None)))
            except _Unverified as exc:
                typer.echo(str(exc))
            except BotError as exc:
                typer.echo(render.error_line(exc))
    typer.echo('\nThat was the built-in sandbox. Try your own: automation-bot exec "help"')


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@app.command("console")
def console_cmd(
    config: ConfigOption = None,
    user: Annotated[str, typer.Option("--user", help="Slack user id to act as")] = "U0CONSOLE",
) -> None:
    """The bot in a terminal: the same commands, cards and threads printed as text."""
    from bot.console import ConsoleNotifier, read_stdin, run_console
    from bot.runtime import build_runtime
    from bot.store import Store, upgrade

    def write(text: str) -> None:
        typer.echo(text)

    try:
        with _config(config) as (cfg, embedded):
            if embedded:
                typer.echo(
                    "(embedded defaults: the built-in sandbox providers, state resets every run)"
                )
            upgrade(cfg.database_url)

            async def main_loop() -> None:
                store = Store.from_url(cfg.database_url)
                runtime = build_runtime(cfg, store=store, notifier=ConsoleNotifier(write))
                try:
                    await run_console(runtime, read=read_stdin, write=write, user=user)
                finally:
                    await runtime.aclose()

            asyncio.run(main_loop())
    except BotError as exc:
        typer.echo(render.error_line(exc), err=True)
        raise typer.Exit(exc.exit_code) from None


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
    try:
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
    except BotError as exc:
        typer.echo(render.error_line(exc), err=True)
        raise typer.Exit(exc.exit_code) from None


db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every migration to the configured database."""
    from bot.store import current_revision, upgrade

    path = config_path(config)
    try:
        url = load_config(path).database_url if path else "sqlite:///automation-bot.db"
    except BotError as exc:
        typer.echo(render.error_line(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    upgrade(url)
    typer.echo(f"Database is at revision {current_revision(url)}.")


config_app = typer.Typer(help="Configuration helpers.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration file and print its environments (secrets hidden)."""
    path = config_path(config)
    if path is None:
        typer.echo("No config given (--config or AUTOMATION_BOT_CONFIG): embedded defaults apply.")
        return
    try:
        cfg = load_config(path)
    except BotError as exc:
        typer.echo(render.error_line(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    for name, env in cfg.environments.items():
        kinds = [k for k, v in (("sfmc", env.sfmc), ("scrip", env.scrip)) if v is not None]
        prod = " (production)" if env.production else ""
        typer.echo(f"{name}{prod}: {', '.join(kinds)}")


def main() -> None:
    app(prog_name="automation-bot")


if __name__ == "__main__":  # pragma: no cover
    main()
