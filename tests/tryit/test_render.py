"""Slack text and form values as the try-it page handles them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.tryit.mrkdwn import mrkdwn, plain
from bot.tryit.views import ViewInputError, submission_values


def names(user: str) -> str:
    return {"U0BOB": "bob"}.get(user, user)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*Paused* _now_ ~old~", "<b>Paused</b> <i>now</i> <s>old</s>"),
        ("`staging/journey:x v3`", "<code>staging/journey:x v3</code>"),
        ("a *b*\nc", "a <b>b</b><br>c"),
        ("<@U0BOB> asked", '<span class="mention">@bob</span> asked'),
        ("<!subteam^S0APPROVERS>", '<span class="mention">@S0APPROVERS</span>'),
        ("<!date^1796453249^{date_short_pretty}|2026-12-05 06:47 UTC>", "2026-12-05 06:47 UTC"),
        (
            "<https://x.test/a?b=1&amp;c=2|the thread>",
            '<a href="https://x.test/a?b=1&amp;c=2" target="_blank" rel="noopener">the thread</a>',
        ),
        ("1 &lt; 2 &amp; <script>", "1 &lt; 2 &amp; &lt;script&gt;"),
        ("<javascript:alert(1)|x>", "&lt;javascript:alert(1)|x&gt;"),
        (":white_check_mark: done :nope:", "\u2705 done :nope:"),
        ("&gt; quoted", "<blockquote>quoted</blockquote>"),
        ("```a <b> *c*```", "<pre>a &lt;b&gt; *c*</pre>"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
    ],
)
def test_mrkdwn_becomes_safe_html(text: str, html: str) -> None:
    assert str(mrkdwn(text, user_name=names)) == html


def test_plain_text_is_escaped_and_keeps_emoji() -> None:
    assert str(plain({"type": "plain_text", "text": ":x: <b>"})) == "\u274c &lt;b&gt;"
    assert str(plain({"type": "plain_text", "text": ":x:", "emoji": False})) == ":x:"
    assert str(plain(None)) == ""


VIEW: dict[str, Any] = {
    "blocks": [
        {
            "type": "input",
            "block_id": "t",
            "element": {"type": "external_select", "action_id": "t"},
        },
        {"type": "input", "block_id": "d", "element": {"type": "number_input", "action_id": "d"}},
        {"type": "input", "block_id": "e", "element": {"type": "datetimepicker", "action_id": "e"}},
        {"type": "input", "block_id": "o", "element": {"type": "checkboxes", "action_id": "o"}},
        {"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "hi"}},
    ]
}


def test_form_values_become_what_slack_sends() -> None:
    values = submission_values(
        VIEW,
        {
            "t": {"t": {"text": "journey · Welcome", "value": "staging|journey|welcome"}},
            "d": {"d": ""},
            "e": {"e": "2026-12-07T09:30"},
            "o": {"o": ["extend_waits"]},
        },
    )

    assert values == {
        "t": {
            "t": {
                "selected_option": {
                    "text": {"type": "plain_text", "text": "journey · Welcome"},
                    "value": "staging|journey|welcome",
                }
            }
        },
        "d": {"d": None},
        "e": {"e": 1796635800},  # 2026-12-07 09:30 UTC: the picker is labelled UTC
        "o": {"o": ["extend_waits"]},
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"s": {"s": "x"}}, "no input s/s"),
        ({"e": {"e": "next tuesday"}}, "is not a date and time"),
        ({"t": {"t": {"text": "no value"}}}, "must have a value"),
        ({"o": {"o": "one"}}, "takes a list"),
        ({"d": {"d": ["1", "2"]}}, "takes a single value"),
        ({"d": "3"}, "must map action ids"),
        (["d"], "must be an object"),
    ],
)
def test_form_values_the_form_cannot_hold_are_refused(raw: Any, error: str) -> None:
    with pytest.raises(ViewInputError, match=error):
        submission_values(VIEW, raw)
