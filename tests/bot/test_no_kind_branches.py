"""Outside providers/, code reads the traits an adapter declares instead of testing which
kind a target is: a new kind of provider must not need a new branch in bot/."""

from __future__ import annotations

import re
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"

#: A concrete kind named in code: ``TargetKind.JOURNEY`` and friends.
KIND = re.compile(r"\bTargetKind\.(?:AUTOMATION|JOURNEY|SCRIP)\b")
#: A capability probed around the port instead of declared.
PROBE = re.compile(r"""getattr\(\s*\w+\s*,\s*["'](?:get_many|resume_many)["']""")

#: Where naming a kind is the point, not a capability (keep this list short).
ALLOWED = {
    # the grammar's kind words: 'journey:' options and the journey limit, checked before
    # any provider is asked
    "domain/grammar.py": "the grammar's kind words",
    # which kind's key is an opaque id (a label, how people type the target)
    "domain/models.py": "labels",
    # the pause form: product names per kind and the journey-only fields of the modal
    "slack/modal.py": "the modal",
}


def _offenders(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(BOT.rglob("*.py")):
        name = path.relative_to(BOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line) and name not in ALLOWED:
                found.append(f"bot/{name}:{number}: {line.strip()}")
    return found


def test_no_module_branches_on_a_concrete_kind() -> None:
    offenders = _offenders(KIND)
    assert not offenders, (
        "read the provider's traits (bot.domain.traits.ProviderTraits) instead of "
        "testing the kind:\n" + "\n".join(offenders)
    )


def test_no_capability_is_probed_with_getattr() -> None:
    offenders = _offenders(PROBE)
    assert not offenders, "declare batch reads with bot.service.ports.BatchResumes:\n" + "\n".join(
        offenders
    )


def test_the_allow_list_is_still_needed() -> None:
    # a file that no longer names a kind leaves the allow-list
    for name in ALLOWED:
        assert KIND.search((BOT / name).read_text()), f"bot/{name} can leave ALLOWED"
