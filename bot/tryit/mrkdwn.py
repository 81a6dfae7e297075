"""Slack text to HTML for the try-it page (pure): mrkdwn, mentions, links, emoji."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from markupsafe import Markup, escape

EMOJI: Final[Mapping[str, str]] = {
    "alarm_clock": "\u23f0",
    "arrow_forward": "\u25b6\ufe0f",
    "ballot_box_with_check": "\u2611\ufe0f",
    "bell": "\U0001f514",
    "black_square_for_stop": "\u23f9\ufe0f",
    "double_vertical_bar": "\u23f8\ufe0f",
    "hourglass": "\u231b",
    "hourglass_flowing_sand": "\u23f3",
    "leftwards_arrow_with_hook": "\u21a9\ufe0f",
    "no_entry_sign": "\U0001f6ab",
    "raised_hand": "\u270b",
    "rocket": "\U0001f680",
    "warning": "\u26a0\ufe0f",
    "white_check_mark": "\u2705",
    "heavy_check_mark": "\u2714\ufe0f",
    "x": "\u274c",
    "eyes": "\U0001f440",
    "thumbsup": "\U0001f44d",
    "+1": "\U0001f44d",
    "tada": "\U0001f389",
    "information_source": "\u2139\ufe0f",
    "mag": "\U0001f50d",
    "clock1": "\U0001f550",
    "large_green_circle": "\U0001f7e2",
    "red_circle": "\U0001f534",
    "large_yellow_circle": "\U0001f7e1",
}

_ANGLE = re.compile(r"<([^<>\n]+)>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_CODE_BLOCK = re.compile(r"```(.+?)```", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_SAFE_URL = re.compile(r"^(https?://|mailto:|slack://)", re.I)


def emoji(name: str) -> str:
    """The character for ``:name:``, or the name itself between colons."""
    return EMOJI.get(name.strip(":"), f":{name.strip(':')}:")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _angle(inner: str, user_name: Callable[[str], str]) -> Markup:
    target, _, label = inner.partition("|")
    target, label = _unescape(target), _unescape(label)
    if target.startswith("@"):
        return Markup('<span class="mention">@{}</span>').format(user_name(target[1:]))
    if target.startswith("#"):
        return Markup('<span class="mention">#{}</span>').format(label or target[1:])
    if target.startswith("!date^"):
        return escape(label or target)
    if target.startswith("!subteam^"):
        return Markup('<span class="mention">{}</span>').format(label or "@" + target[9:])
    if target.startswith("!"):
        return Markup('<span class="mention">@{}</span>').format(label or target[1:])
    if _SAFE_URL.match(target):
        return Markup('<a href="{}" target="_blank" rel="noopener">{}</a>').format(
            target, label or target
        )
    return escape(_unescape("<" + inner + ">"))


def _inline(text: str) -> str:
    """Bold, italic, strike and emoji on already-escaped text."""
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _ITALIC.sub(r"<i>\1</i>", text)
    text = _STRIKE.sub(r"<s>\1</s>", text)
    return _EMOJI.sub(lambda m: emoji(m.group(1)), text)


def mrkdwn(text: str, *, user_name: Callable[[str], str] = str) -> Markup:
    """Slack mrkdwn as safe HTML: ``*bold*``, ``_italic_``, ``~strike~``, code, quotes,
    ``<url|label>`` links, ``<@U…>`` mentions, ``:emoji:`` and line breaks."""
    pieces: list[str] = []
    for n, chunk in enumerate(_CODE_BLOCK.split(text)):
        if n % 2:
            pieces.append(str(Markup("<pre>{}</pre>").format(_unescape(chunk.strip("\n")))))
            continue
        pieces.append(_text(chunk, user_name))
    return Markup("".join(pieces))  # noqa: S704 - joined from escaped pieces


def _text(text: str, user_name: Callable[[str], str]) -> str:
    lines = []
    for line in text.split("\n"):
        quote = line.startswith(("&gt; ", "> "))
        if quote:
            line = line.split(" ", 1)[1]
        parts: list[str] = []
        for n, chunk in enumerate(_CODE.split(line)):
            if n % 2:
                parts.append(str(Markup("<code>{}</code>").format(_unescape(chunk))))
                continue
            out, last = [], 0
            for m in _ANGLE.finditer(chunk):
                out.append(_inline(str(escape(_unescape(chunk[last : m.start()])))))
                out.append(str(_angle(m.group(1), user_name)))
                last = m.end()
            out.append(_inline(str(escape(_unescape(chunk[last:])))))
            parts.append("".join(out))
        html = "".join(parts)
        lines.append(f"<blockquote>{html}</blockquote>" if quote else html)
    return "<br>".join(lines)


def plain(obj: Mapping[str, Any] | str | None, *, user_name: Callable[[str], str] = str) -> Markup:
    """A Block Kit text object (``plain_text`` or ``mrkdwn``) as safe HTML."""
    if obj is None:
        return Markup("")
    if isinstance(obj, str):
        return escape(obj)
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn(text, user_name=user_name)
    if obj.get("emoji", True):
        with_emoji = _EMOJI.sub(lambda m: emoji(m.group(1)), str(escape(text)))
        return Markup(with_emoji)  # noqa: S704 - escaped, then emoji characters added
    return escape(text)
