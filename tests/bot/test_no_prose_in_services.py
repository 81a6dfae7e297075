"""The services publish events (bot/domain/events.py), never sentences: what people read is
worded by each front end (bot/slack/messages.py, bot/render.py)."""

from __future__ import annotations

import re
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "bot" / "service"

#: Ways a service used to hand a front end finished text.
PROSE = {
    "a note with text": re.compile(r"\bNote\(|\bNoteKind\b"),
    "a text argument": re.compile(r"\btext\s*="),
    "a worded outcome": re.compile(r"\boutcome\s*=\s*f?[\"']"),
    "an announcement": re.compile(r"announce\w*\("),
    "a thread line": re.compile(r"\b_say\("),
    "a worded return": re.compile(r"return\s+f?\"[A-Z][a-z]+ [^\"]*\.\"$"),
}


def offenders(source: str, name: str) -> list[str]:
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        for what, pattern in PROSE.items():
            if pattern.search(line):
                found.append(f"{name}:{number}: {what}: {line.strip()}")
    return found


def test_services_build_no_sentences_for_people() -> None:
    found = [
        hit
        for path in sorted(SERVICE.glob("*.py"))
        for hit in offenders(path.read_text(), f"bot/service/{path.name}")
    ]
    assert not found, "publish an event and word it in the front ends:\n" + "\n".join(found)


def test_the_check_catches_what_the_services_used_to_do() -> None:
    before = """
        await self._say(request, f"{late}The pause time is up. Resumed: it is now {s}.")
        note = Note(kind=NoteKind.INFO, text="lets the pause end as planned")
        outcome = PauseOutcome(at=now, text="time is up; it stays paused as asked")
        await self._announce_end(request, "pause ended: it had already been changed")
        release(pause, outcome=f"changed outside the bot: now {state}")
            return "No more reminders for this pause."
    """
    kinds = {hit.split(": ")[1] for hit in offenders(before, "old")}
    assert kinds == set(PROSE)
