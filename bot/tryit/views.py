"""What the page's form sends, turned into a modal's input values (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class ViewInputError(ValueError):
    """The page sent a value the modal cannot hold."""


def _inputs(view: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for block in view.get("blocks") or []:
        if isinstance(block, Mapping) and block.get("type") == "input":
            element = block.get("element") or {}
            found[(str(block.get("block_id")), str(element.get("action_id")))] = str(
                element.get("type", "")
            )
    return found


def _datetime(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ViewInputError(f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the page's picker is labelled UTC
    return int(moment.timestamp())


def _value(kind: str, value: Any) -> Any:
    if kind == "datetimepicker":
        return _datetime(value)
    if kind == "external_select":
        if value in (None, ""):
            return {"selected_option": None}
        if not isinstance(value, Mapping) or not value.get("value"):
            raise ViewInputError("A searched option must have a value and a text.")
        text = str(value.get("text") or value["value"])
        return {
            "selected_option": {
                "text": {"type": "plain_text", "text": text},
                "value": str(value["value"]),
            }
        }
    if kind in ("checkboxes", "multi_static_select"):
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise ViewInputError(f"{kind} takes a list of values.")
        return [str(v) for v in value]
    if value in (None, ""):
        return None
    if isinstance(value, list | Mapping):
        raise ViewInputError(f"{kind} takes a single value.")
    return str(value)


def submission_values(view: Mapping[str, Any], raw: Any) -> dict[str, dict[str, Any]]:
    """``{block_id: {action_id: value}}`` for :meth:`SlackDriver.view_submission`.

    ``raw`` holds what the page's inputs show: strings, lists (checkboxes), ``{text,
    value}`` for a searched option, ``YYYY-MM-DDTHH:MM`` (UTC) for a date and time. Inputs
    the page did not send keep their initial values; an unknown input is an error.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ViewInputError("The form values must be an object of block ids.")
    inputs = _inputs(view)
    values: dict[str, dict[str, Any]] = {}
    for block_id, actions in raw.items():
        if not isinstance(actions, Mapping):
            raise ViewInputError(f"values[{block_id!r}] must map action ids to values.")
        for action_id, value in actions.items():
            kind = inputs.get((str(block_id), str(action_id)))
            if kind is None:
                raise ViewInputError(f"The form has no input {block_id}/{action_id}.")
            values.setdefault(str(block_id), {})[str(action_id)] = _value(kind, value)
    return values
