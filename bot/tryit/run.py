"""Run the try-it page until interrupted (``automation-bot try``)."""

from __future__ import annotations

import os
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
    echo("Starting the sandbox emulators (SFMC, scrip, Slack) and the bot…")
    with Playground() as play:
        app = create_page_app(play)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )
        url = f"http://{host}:{port}/"
        ready = threading.Event()

        def announce() -> None:
            while not server.started and not ready.wait(0.05):
                pass
            if not server.started:
                return
            echo(f"Try it: {url}  (Ctrl-C to stop; state resets every run)")
            if open_browser and has_browser():
                webbrowser.open(url)

        threading.Thread(target=announce, name="try-announce", daemon=True).start()
        try:
            server.run()
        finally:
            ready.set()
