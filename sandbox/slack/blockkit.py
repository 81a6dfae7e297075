"""Block Kit checks, strict enough to catch bot bugs (reference §2.12, §2.13).

Problems come back as Slack-style messages, e.g.
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``, which the
emulator returns under ``response_metadata.messages`` with ``invalid_blocks`` (messages)
or ``invalid_arguments`` (views).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ID = 255
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_MARKDOWN_BLOCK = 12000

BLOCK_TYPES = frozenset(
    {
        "section",
        "divider",
        "header",
        "actions",
        "context",
        "input",
        "image",
        "rich_text",
        "file",
        "video",
        "markdown",
        "table",
        "context_actions",
    }
)
INTERACTIVE_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "timepicker",
        "overflow",
        "radio_buttons",
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "rich_text_input",
        "file_input",
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "workflow_button",
    }
)
ELEMENT_TYPES = INTERACTIVE_ELEMENTS | {"image"}
_OPTION_ELEMENTS = frozenset(
    {"static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"}
)


def _err(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.errors.append(_err(message, pointer))

    def string(
        self, value: Any, pointer: str, *, max_len: int, min_len: int = 0, required: bool = True
    ) -> None:
        if value is None:
            if required:
                self.add("must provide a string", pointer)
            return
        if not isinstance(value, str):
            self.add("must be a string", pointer)
        elif len(value) > max_len:
            self.add(f"must be less than {max_len + 1} characters", pointer)
        elif len(value) < min_len:
            self.add(f"must be more than {min_len - 1} characters", pointer)

    def text(
        self,
        obj: Any,
        pointer: str,
        *,
        max_len: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.add("must provide an object", pointer)
            return
        if not isinstance(obj, dict):
            self.add("must provide an object", pointer)
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.add(f"must be one of {', '.join(allowed)}", f"{pointer}/type")
        self.string(obj.get("text"), f"{pointer}/text", max_len=max_len, min_len=1)

    def id_field(self, value: Any, pointer: str) -> None:
        if value is not None:
            self.string(value, pointer, max_len=MAX_ID, min_len=1)

    def confirm(self, obj: Any, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.add("must provide an object", pointer)
            return
        self.text(obj.get("title"), f"{pointer}/title", max_len=100, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", max_len=300)
        self.text(obj.get("confirm"), f"{pointer}/confirm", max_len=30, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", max_len=30, plain_only=True)

    def option(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.add("must provide an object", pointer)
            return
        self.text(obj.get("text"), f"{pointer}/text", max_len=MAX_OPTION_TEXT)
        self.string(obj.get("value"), f"{pointer}/value", max_len=MAX_OPTION_VALUE, min_len=1)

    def element(self, el: Any, pointer: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            self.add("must provide an object", pointer)
            return
        kind = el.get("type")
        if kind not in ELEMENT_TYPES:
            self.add(f"unsupported type: {kind}", f"{pointer}/type")
            return
        if kind == "image":
            self.string(el.get("alt_text"), f"{pointer}/alt_text", max_len=2000, min_len=1)
            return
        action_id = el.get("action_id")
        self.id_field(action_id, f"{pointer}/action_id")
        if isinstance(action_id, str):
            if action_id in action_ids:
                self.add("duplicate action_id", f"{pointer}/action_id")
            action_ids.add(action_id)
        self.confirm(el.get("confirm"), f"{pointer}/confirm")
        if "placeholder" in el:
            self.text(
                el["placeholder"],
                f"{pointer}/placeholder",
                max_len=MAX_PLACEHOLDER,
                plain_only=True,
            )
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", max_len=MAX_BUTTON_TEXT, plain_only=True)
            self.string(
                el.get("value"), f"{pointer}/value", max_len=MAX_BUTTON_VALUE, required=False
            )
            self.string(el.get("url"), f"{pointer}/url", max_len=MAX_URL, required=False)
            if el.get("style") not in (None, "primary", "danger"):
                self.add("must be one of primary, danger", f"{pointer}/style")
        elif kind in _OPTION_ELEMENTS:
            options, groups = el.get("options"), el.get("option_groups")
            limit = (
                5
                if kind == "overflow"
                else 10
                if kind in ("radio_buttons", "checkboxes")
                else MAX_OPTIONS
            )
            if options is None and groups is None:
                self.add("must provide options or option_groups", f"{pointer}/options")
            if options is not None:
                if not isinstance(options, list) or not options:
                    self.add("must provide a non-empty array", f"{pointer}/options")
                else:
                    if len(options) > limit:
                        self.add(f"no more than {limit} items allowed", f"{pointer}/options")
                    for i, opt in enumerate(options):
                        self.option(opt, f"{pointer}/options/{i}")
        elif kind == "plain_text_input":
            max_length = el.get("max_length")
            if max_length is not None and (not isinstance(max_length, int) or max_length > 3000):
                self.add("must be at most 3000", f"{pointer}/max_length")

    def block(self, block: Any, pointer: str, block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.add("must provide an object", pointer)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.add(f"unsupported type: {kind}", f"{pointer}/type")
            return
        block_id = block.get("block_id")
        self.id_field(block_id, f"{pointer}/block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                self.add("duplicate block_id", f"{pointer}/block_id")
            block_ids.add(block_id)
        action_ids: set[str] = set()
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and fields is None:
                self.add("must provide text or fields", pointer)
            if text is not None:
                self.text(text, f"{pointer}/text", max_len=MAX_SECTION_TEXT)
            if fields is not None:
                if not isinstance(fields, list) or not fields:
                    self.add("must provide a non-empty array", f"{pointer}/fields")
                else:
                    if len(fields) > MAX_FIELDS:
                        self.add(f"no more than {MAX_FIELDS} items allowed", f"{pointer}/fields")
                    for i, f in enumerate(fields):
                        self.text(f, f"{pointer}/fields/{i}", max_len=MAX_FIELD_TEXT)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{pointer}/accessory", action_ids)
        elif kind == "header":
            self.text(
                block.get("text"), f"{pointer}/text", max_len=MAX_HEADER_TEXT, plain_only=True
            )
        elif kind in ("actions", "context"):
            limit = MAX_ACTIONS_ELEMENTS if kind == "actions" else MAX_CONTEXT_ELEMENTS
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.add("must provide a non-empty array", f"{pointer}/elements")
                return
            if len(elements) > limit:
                self.add(f"no more than {limit} items allowed", f"{pointer}/elements")
            for i, el in enumerate(elements):
                sub = f"{pointer}/elements/{i}"
                if kind == "context" and isinstance(el, dict) and el.get("type") != "image":
                    self.text(el, sub, max_len=MAX_SECTION_TEXT)
                else:
                    self.element(el, sub, action_ids)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", max_len=MAX_LABEL, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], f"{pointer}/hint", max_len=MAX_LABEL, plain_only=True)
            if block.get("element") is None:
                self.add("must provide an object", f"{pointer}/element")
            else:
                self.element(block["element"], f"{pointer}/element", action_ids)
        elif kind == "image":
            self.string(block.get("alt_text"), f"{pointer}/alt_text", max_len=2000, min_len=1)
            if block.get("slack_file") is None:
                self.string(block.get("image_url"), f"{pointer}/image_url", max_len=MAX_URL)
        elif kind == "markdown":
            self.string(block.get("text"), f"{pointer}/text", max_len=MAX_MARKDOWN_BLOCK, min_len=1)

    def blocks(self, blocks: Any, pointer: str, *, limit: int) -> None:
        if not isinstance(blocks, list):
            self.add("must provide an array", pointer)
            return
        if len(blocks) > limit:
            self.add(f"no more than {limit} items allowed", pointer)
        block_ids: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{pointer}/{i}", block_ids)


def check_message_blocks(blocks: Any) -> list[str]:
    """Problems with a message's ``blocks`` (empty list: fine)."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", limit=MAX_MESSAGE_BLOCKS)
    return checker.errors


def check_view(view: Any, *, home: bool = False) -> list[str]:
    """Problems with a modal (or, ``home=True``, a Home tab) view."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.add("must provide an object", "/view")
        return checker.errors
    expected = "home" if home else "modal"
    if view.get("type") != expected:
        checker.add(f"must be {expected}", "/view/type")
    if not home:
        checker.text(view.get("title"), "/view/title", max_len=MAX_MODAL_TITLE, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                checker.text(view[key], f"/view/{key}", max_len=MAX_MODAL_TITLE, plain_only=True)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            checker.add("submit is required when an input block is present", "/view/submit")
    checker.string(
        view.get("private_metadata"),
        "/view/private_metadata",
        max_len=MAX_PRIVATE_METADATA,
        required=False,
    )
    checker.string(view.get("callback_id"), "/view/callback_id", max_len=MAX_ID, required=False)
    checker.string(view.get("external_id"), "/view/external_id", max_len=MAX_ID, required=False)
    checker.blocks(view.get("blocks"), "/view/blocks", limit=MAX_VIEW_BLOCKS)
    return checker.errors


def _short_id(seed: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % 64] for b in digest[:5])


def assign_ids(blocks: list[Any], salt: str = "") -> list[Any]:
    """Copy of ``blocks`` with the ``block_id``/``action_id`` Slack adds when they are missing."""
    out: list[Any] = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            out.append(block)
            continue
        b = json.loads(json.dumps(block))
        if "block_id" not in b:
            b["block_id"] = _short_id(f"{salt}:{index}:{json.dumps(block, sort_keys=True)}")
        elements: list[Any] = []
        if isinstance(b.get("elements"), list) and b.get("type") == "actions":
            elements = b["elements"]
        for key in ("accessory", "element"):
            if isinstance(b.get(key), dict):
                elements.append(b[key])
        for j, el in enumerate(elements):
            if (
                isinstance(el, dict)
                and el.get("type") in INTERACTIVE_ELEMENTS
                and "action_id" not in el
            ):
                el["action_id"] = _short_id(f"{b['block_id']}:{j}:{el.get('type')}")
        out.append(b)
    return out


def find_element(
    blocks: Any, action_id: str, block_id: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """``(block_id, element)`` for the interactive element with ``action_id``."""
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Any] = []
        if isinstance(block.get("elements"), list):
            candidates.extend(block["elements"])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for el in candidates:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return str(block.get("block_id", "")), el
    return None


def all_options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            options.extend(o for o in group.get("options") or [] if isinstance(o, dict))
    return options
