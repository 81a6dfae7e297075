"""structlog setup: key-value logs with a request id, never secrets."""

from __future__ import annotations

import logging
import sys
from enum import Enum
from typing import Any

import structlog

_SECRET_KEYS = ("token", "secret", "password", "authorization", "api_key", "client_secret")


def _redact(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple, set, frozenset)) and any(isinstance(v, Enum) for v in value):
        return [_plain(v) for v in value]
    return value


def _plain_enums(
    _: object, __: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Enums by their value (``pause_end``), not their repr (``<JobKind.PAUSE_END: ...>``)."""
    for key, value in event.items():
        event[key] = _plain(value)
    return event


def configure_logging(*, level: str = "INFO", json: bool = False) -> None:
    """Called once by the entry point (never at import time)."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            _plain_enums,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
