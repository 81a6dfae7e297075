"""Target names as people type them (pure, no I/O).

People type ``daily welcome email send``, ``Daily-Welcome-Email-Send`` or
``"Daily  Welcome Email Send"`` for the automation named ``Daily Welcome Email Send``:
:func:`normalize` folds case, Unicode compatibility forms, and runs of spaces, hyphens,
dashes and underscores, so :func:`same_name` matches them all. :func:`rank` orders
candidates for "did you mean" by how close their name (or key) is to what was typed, best
first, and keeps only the close ones.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.domain.models import TargetKind, TargetSummary

__all__ = ["SUGGESTIONS_MAX", "normalize", "rank", "same_name", "suggestion_text"]

#: "Did you mean" lists at most this many targets.
SUGGESTIONS_MAX = 5
#: How close (0..1) a name or key must be to what was typed to be suggested.
_CUTOFF = 0.65

_SEPARATORS_RE = re.compile(r"[\s_\-\u2010-\u2015\u2212]+")
_SAFE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@#+-]*", re.ASCII)
_RESERVED = frozenset(
    {"for", "until", "then", "paused", "all"}
    | {k.value for k in TargetKind}
    | {f"{k.value}s" for k in TargetKind}
)


def normalize(text: str) -> str:
    """Case, width and separators folded: ``Daily-Welcome_email  SEND`` -> ``daily welcome
    email send``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SEPARATORS_RE.sub(" ", folded).strip()


def same_name(typed: str, name: str) -> bool:
    """Whether ``typed`` names ``name`` the way people type names."""
    wanted = normalize(typed)
    return bool(wanted) and wanted == normalize(name)


def _score(typed: str, candidate: str) -> float:
    if not typed or not candidate:
        return 0.0
    if typed == candidate:
        return 1.0
    score = difflib.SequenceMatcher(None, typed, candidate, autojunk=False).ratio()
    words_typed, words_candidate = sorted(typed.split()), sorted(candidate.split())
    if len(words_typed) > 1 or len(words_candidate) > 1:
        in_order = difflib.SequenceMatcher(
            None, " ".join(words_typed), " ".join(words_candidate), autojunk=False
        ).ratio()
        score = max(score, in_order)
    shorter, longer = sorted((typed, candidate), key=len)
    if len(shorter) >= 3 and shorter in longer:
        score = max(score, 0.7 + 0.3 * len(shorter) / len(longer))
    return score


@dataclass(frozen=True, slots=True)
class _Scored:
    score: float
    summary: TargetSummary


def rank(
    typed: str, candidates: Iterable[TargetSummary], *, limit: int = SUGGESTIONS_MAX
) -> list[TargetSummary]:
    """The candidates whose name (or key) is close to ``typed``, best first, at most
    ``limit``. Names count fully; a key counts a little less (people type names)."""
    wanted = normalize(typed)
    scored: list[_Scored] = []
    seen: set[tuple[TargetKind, str]] = set()
    for summary in candidates:
        if (summary.kind, summary.key) in seen:
            continue
        seen.add((summary.kind, summary.key))
        by_name = _score(wanted, normalize(summary.name))
        by_key = 0.95 * _score(wanted, normalize(summary.key))
        best = max(by_name, by_key)
        if best >= _CUTOFF:
            scored.append(_Scored(best, summary))
    scored.sort(key=lambda s: (-s.score, normalize(s.summary.name), s.summary.key))
    return [s.summary for s in scored[: max(0, limit)]]


def _word(text: str) -> str:
    if _SAFE_RE.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    escaped = "".join(f"\\{c}" if c in '\\"' else c for c in text)
    return f'"{escaped}"'


def suggestion_text(
    summary: TargetSummary, *, environment: str | None, others: Sequence[TargetSummary]
) -> str:
    """What to type for ``summary``: ``[env/]kind:"Its Name"``, or its key when another
    target of the same kind has the same name."""
    prefix = f"{environment}/" if environment else ""
    twins = [
        o
        for o in others
        if o.kind is summary.kind and o.key != summary.key and same_name(o.name, summary.name)
    ]
    word = summary.key if twins or not summary.name.strip() else summary.name
    return f"{prefix}{summary.kind.value}:{_word(word)}"
