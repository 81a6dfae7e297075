"""What every benchmark's report shares: the machine it ran on, and its own section of
``docs/benchmarks.md`` replaced in place (the rest of the file is left alone)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def cpu_count() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def versions(packages: Sequence[str]) -> str:
    """``slack_bolt 1.30.0, uvicorn 0.55.0, ...``"""
    return ", ".join(f"{name} {metadata.version(name)}" for name in packages)


def machine(packages: Sequence[str]) -> str:
    """``2 CPUs (AMD EPYC), Python 3.11.7, Linux 6.1; slack_bolt 1.30.0, ...``"""
    return (
        f"{cpu_count()} CPUs ({cpu_name()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {versions(packages)}"
    )


def write_section(text: str, *, section: str, path: Path = DOC) -> None:
    """Replace (or append) the section headed ``section`` (``## ...``) of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    if not lines:
        lines = ["# Benchmarks\n"]
    start = next((i for i, line in enumerate(lines) if line.rstrip() == section), None)
    if start is None:
        head, tail = lines, []
        if head and head[-1].strip():
            head.append("\n")
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        head, tail = lines[:start], lines[end:]
    body = text.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(head) + body + ("\n" if tail else "") + "".join(tail), "utf-8")
