"""Run the try-it page until interrupted (``automation-bot try``)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable

import uvicorn

from bot.domain.errors import ConfigError
from bot.tryit.page import create_page_app
from bot.tryit.playground import Playground


def _check_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"Cannot listen on {host}:{port} ({exc.strerror}); pick another with --port."
            ) from None


class _Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C does."""


def _on_sigterm(*_: object) -> None:
    raise _Terminated


def has_browser() -> bool:
    """A graphical browser can open (a desktop session, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_try(
    *, host: str, port: int, open_browser: bool, echo: Callable[[str], None] = print
) -> None:
    """Start the playground and serve the page on ``host:port`` until Ctrl-C."""
    _check_free(host, port)
    # Bolt warns that its token is ignored when an authorize function is given: true and
    # harmless here, and confusing as the first line a newcomer reads
    logging.getLogger("slack_bolt.AsyncApp").setLevel(logging.ERROR)
    echo("Starting the sandbox emulators (SFMC, scrip, Slack) and the bot…")
    with Playground() as play:
        app = create_page_app(play)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )
        ready = threading.Event()

        def announce() -> None:
            while not server.started and not ready.wait(0.05):
                pass
            if not server.started:
                return
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            url = f"http://{host}:{bound}/"
            echo(f"Try it: {url}  (Ctrl-C to stop; state resets every run)")
            if open_browser and has_browser():
                webbrowser.open(url)

        threading.Thread(target=announce, name="try-announce", daemon=True).start()
        # uvicorn re-raises the signal that stopped it once it has shut down; with this
        # handler SIGTERM ends here too, so the playground below is stopped and cleaned up
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        try:
            with contextlib.suppress(KeyboardInterrupt, _Terminated):
                server.run()
        finally:
            ready.set()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    echo("Stopped.")
