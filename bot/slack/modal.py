"""The pause modal: the view, the target search options, and parsing a submission (pure).

Instead of one target, the form takes a pattern ("every target matching", e.g. ``bf25-*``
or ``automation:bf25-*``): that submits a bulk pause, whose preview card is the same as
the typed command's.

The bot re-renders the view with ``views.update`` when the environment or the target
changes (both inputs dispatch ``block_actions``); block_ids and action_ids never change,
so Slack keeps what the user already typed. Journey-only inputs appear once the chosen
target is a journey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DateTimePickerElement,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.bulk import BulkPattern
from bot.domain.commands import BulkCommand, PauseCommand, TargetRef
from bot.domain.errors import BadInput
from bot.domain.grammar import parse_pattern
from bot.domain.models import (
    MAX_JOURNEY_PAUSED_DAYS,
    PauseOptions,
    TargetKind,
    TargetSummary,
    ThenAction,
    Verb,
    VersionSelector,
)
from bot.slack.blocks import truncate
from bot.slack.ids import ModalAction, ModalBlock, ModalCallback
from bot.slack.metadata import ModalContext, TargetChoice

__all__ = [
    "MAX_PAUSE_DAYS",
    "MODAL_TITLE",
    "OPTIONS_MAX",
    "PATTERN_MAX",
    "REASON_MAX",
    "VersionChoice",
    "option_text",
    "parse_pause_submission",
    "pause_modal",
    "target_options",
]

MODAL_TITLE: Final = "Pause an automation"
MAX_PAUSE_DAYS: Final = 365  # the grammar's MAX_PAUSE
REASON_MAX: Final = 500
PATTERN_MAX: Final = 150
OPTIONS_MAX: Final = 100
_OPTION_TEXT_MAX = 75
_SELECT_OPTIONS_MAX = 100


class VersionChoice:
    """Values of the version radio buttons."""

    LATEST: Final = "latest"
    SPECIFIC: Final = "specific"
    ALL: Final = "all"


_EXTEND_WAITS = "extend_waits"
_QUEUE_ENTRIES = "queue_entries"

_KIND_GROUP: Final[dict[TargetKind, str]] = {
    TargetKind.AUTOMATION: "Automation Studio",
    TargetKind.JOURNEY: "Journey Builder",
    TargetKind.SCRIP: "scrip",
}


def _option(text: str, value: str, description: str | None = None) -> Option:
    return Option(
        text=PlainTextObject(text=truncate(text, _OPTION_TEXT_MAX), emoji=False),
        value=value,
        description=description,
    )


def option_text(kind: TargetKind, name: str, key: str) -> str:
    """``journey · Welcome Series (welcome-series)``, at most 75 characters."""
    if name and name.lower() != key.lower():
        text = f"{kind.value} · {name} ({key})"
    else:
        text = f"{kind.value} · {key}"
    return truncate(text, _OPTION_TEXT_MAX)


def _target_option(environment: str, kind: TargetKind, key: str, name: str) -> Option | None:
    choice = TargetChoice(environment=environment, kind=kind, key=key)
    if not choice.fits():
        return None
    return _option(option_text(kind, name, key), choice.dump())


# -- the view -------------------------------------------------------------------------------


def _environment_block(environments: Sequence[str], current: str) -> InputBlock:
    names = list(dict.fromkeys([current, *environments]))[:_SELECT_OPTIONS_MAX]
    options = [_option(name, name) for name in names]
    initial = next(o for o in options if o.value == current)
    return InputBlock(
        block_id=ModalBlock.ENVIRONMENT,
        label="Environment",
        dispatch_action=True,
        element=StaticSelectElement(
            action_id=ModalAction.ENVIRONMENT, options=options, initial_option=initial
        ),
    )


def _target_block(initial: Option | None) -> InputBlock:
    return InputBlock(
        block_id=ModalBlock.TARGET,
        label="Target",
        hint="Type to search automations, journeys and scrip automations.",
        optional=True,  # or a pattern below: the submission checks that one is given
        dispatch_action=True,
        element=ExternalDataSelectElement(
            action_id=ModalAction.TARGET,
            placeholder="Search by name or key",
            min_query_length=0,
            initial_option=initial,
        ),
    )


def _pattern_block() -> InputBlock:
    return InputBlock(
        block_id=ModalBlock.PATTERN,
        label="Or every target matching",
        hint="Instead of one target: a pattern, * any text, ? one character "
        "(e.g. bf25-* or automation:bf25-*). You see what will change before anything does.",
        optional=True,
        element=PlainTextInputElement(
            action_id=ModalAction.PATTERN,
            max_length=PATTERN_MAX,
            placeholder="e.g. black-friday-*",
        ),
    )


def _version_blocks(version: int | None) -> list[Block]:
    options = [
        _option("The latest version", VersionChoice.LATEST),
        _option("A specific version", VersionChoice.SPECIFIC),
        _option("All versions", VersionChoice.ALL),
    ]
    initial = options[1] if version is not None else options[0]
    return [
        InputBlock(
            block_id=ModalBlock.VERSION,
            label="Journey version",
            element=RadioButtonsElement(
                action_id=ModalAction.VERSION, options=options, initial_option=initial
            ),
        ),
        InputBlock(
            block_id=ModalBlock.VERSION_NUMBER,
            label="Version number",
            hint="Only for \u201ca specific version\u201d.",
            optional=True,
            element=NumberInputElement(
                action_id=ModalAction.VERSION_NUMBER,
                is_decimal_allowed=False,
                min_value=1,
                initial_value=version,
            ),
        ),
    ]


def _length_blocks(journey: bool) -> list[Block]:
    most = MAX_JOURNEY_PAUSED_DAYS if journey else MAX_PAUSE_DAYS
    return [
        InputBlock(
            block_id=ModalBlock.DAYS,
            label="For how many days",
            hint=f"Either a number of days or an end time (at most {most} days). "
            "Leave both empty for a pause with no end.",
            optional=True,
            element=NumberInputElement(
                action_id=ModalAction.DAYS, is_decimal_allowed=False, min_value=1
            ),
        ),
        InputBlock(
            block_id=ModalBlock.END,
            label="Or until",
            optional=True,
            element=DateTimePickerElement(action_id=ModalAction.END),
        ),
    ]


def _then_block(journey: bool) -> InputBlock:
    options = [_option("Resume it", ThenAction.RESUME.value)]
    if journey:
        options.append(_option("Stop the journey version", ThenAction.STOP.value))
    options.append(_option("Keep it paused (the bot reminds)", ThenAction.KEEP.value))
    return InputBlock(
        block_id=ModalBlock.THEN,
        label="When the pause ends",
        hint="Only used when the pause has a length or an end time.",
        element=RadioButtonsElement(
            action_id=ModalAction.THEN, options=options, initial_option=options[0]
        ),
    )


def _journey_options_block() -> InputBlock:
    options = [
        _option(
            "Extend waits",
            _EXTEND_WAITS,
            description="Extend Wait by Duration steps by the pause length",
        ),
        _option(
            "Queue new entries",
            _QUEUE_ENTRIES,
            description="Process them on resume; without this they are dropped",
        ),
    ]
    return InputBlock(
        block_id=ModalBlock.JOURNEY_OPTIONS,
        label="Journey options",
        optional=True,
        element=CheckboxesElement(action_id=ModalAction.JOURNEY_OPTIONS, options=options),
    )


def _reason_block() -> InputBlock:
    return InputBlock(
        block_id=ModalBlock.REASON,
        label="Reason",
        optional=True,
        element=PlainTextInputElement(
            action_id=ModalAction.REASON,
            multiline=True,
            max_length=REASON_MAX,
            placeholder="e.g. holiday freeze",
        ),
    )


def pause_modal(
    *,
    context: ModalContext,
    environments: Sequence[str],
    default_environment: str,
    selected: TargetSummary | None = None,
    selected_kind: TargetKind | None = None,
) -> dict[str, Any]:
    """The modal view (``views.open`` / ``views.update``), prefilled from ``context``."""
    environment = context.environment or default_environment
    kind = selected.kind if selected is not None else selected_kind or context.kind
    initial: Option | None = None
    if selected is not None:
        initial = _target_option(environment, selected.kind, selected.key, selected.name)
    elif context.kind is not None and context.key is not None:
        initial = _target_option(environment, context.kind, context.key, context.name or "")
    journey = kind is TargetKind.JOURNEY
    blocks: list[Block] = [
        _environment_block(environments, environment),
        _target_block(initial),
        _pattern_block(),
    ]
    if kind is None:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Pick a target to see its options (journeys have more)."
                    )
                ]
            )
        )
    if journey:
        version = context.version if context.kind is TargetKind.JOURNEY else None
        blocks.extend(_version_blocks(version))
    blocks.extend(_length_blocks(journey))
    blocks.append(_then_block(journey))
    if journey:
        blocks.append(_journey_options_block())
    blocks.append(_reason_block())
    view = View(
        type="modal",
        callback_id=ModalCallback.PAUSE,
        title=MODAL_TITLE,
        submit="Pause",
        close="Cancel",
        private_metadata=context.dump(),
        blocks=blocks,
    )
    return view.to_dict()


def target_options(summaries: Sequence[TargetSummary], *, environment: str) -> dict[str, Any]:
    """The ``options`` response of the target ``external_select``, grouped by kind."""
    groups: dict[TargetKind, list[Option]] = {}
    count = 0
    for summary in summaries:
        if count >= OPTIONS_MAX:
            break
        option = _target_option(environment, summary.kind, summary.key, summary.name)
        if option is None:  # a key too long to carry in 150 characters
            continue
        groups.setdefault(summary.kind, []).append(option)
        count += 1
    if not groups:
        return {"options": []}
    option_groups = [
        OptionGroup(label=_KIND_GROUP[kind], options=groups[kind]).to_dict()
        for kind in TargetKind
        if kind in groups
    ]
    return {"option_groups": option_groups}


# -- the submission -------------------------------------------------------------------------


def _element(
    values: Mapping[str, Any], block: ModalBlock, action: ModalAction
) -> Mapping[str, Any]:
    block_values = values.get(block)
    if not isinstance(block_values, Mapping):
        return {}
    element = block_values.get(action)
    return element if isinstance(element, Mapping) else {}


def _selected_value(
    values: Mapping[str, Any], block: ModalBlock, action: ModalAction
) -> str | None:
    option = _element(values, block, action).get("selected_option")
    if isinstance(option, Mapping):
        value = option.get("value")
        return value if isinstance(value, str) and value else None
    return None


def _text_value(values: Mapping[str, Any], block: ModalBlock, action: ModalAction) -> str | None:
    value = _element(values, block, action).get("value")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _positive_int(text: str) -> int | None:
    try:
        number = int(text)
    except ValueError:
        return None
    return number if number >= 1 else None


def _end_time(values: Mapping[str, Any]) -> datetime | str | None:
    raw = _element(values, ModalBlock.END, ModalAction.END).get("selected_date_time")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return "Pick an end date and time."
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return "Pick an end date and time."


def _versions(values: Mapping[str, Any], errors: dict[str, str]) -> VersionSelector:
    choice = _selected_value(values, ModalBlock.VERSION, ModalAction.VERSION)
    number_text = _text_value(values, ModalBlock.VERSION_NUMBER, ModalAction.VERSION_NUMBER)
    number = _positive_int(number_text) if number_text is not None else None
    if number_text is not None and number is None:
        errors[ModalBlock.VERSION_NUMBER] = "Enter a version number: a whole number, 1 or more."
        return VersionSelector()
    if choice == VersionChoice.ALL:
        if number is not None:
            errors[ModalBlock.VERSION_NUMBER] = (
                "Clear the version number, or choose \u201ca specific version\u201d."
            )
        return VersionSelector(all_versions=True)
    if choice == VersionChoice.SPECIFIC and number is None:
        errors[ModalBlock.VERSION_NUMBER] = "Enter the version number to pause."
        return VersionSelector()
    # "latest" with a number typed in means that version.
    return VersionSelector(version=number)


def _length(
    values: Mapping[str, Any], *, journey: bool, now: datetime, errors: dict[str, str]
) -> tuple[timedelta | None, datetime | None]:
    most = MAX_JOURNEY_PAUSED_DAYS if journey else MAX_PAUSE_DAYS
    too_long = (
        f"Journey Builder pauses last at most {MAX_JOURNEY_PAUSED_DAYS} days."
        if journey
        else f"A pause lasts at most {MAX_PAUSE_DAYS} days."
    )
    duration: timedelta | None = None
    days_text = _text_value(values, ModalBlock.DAYS, ModalAction.DAYS)
    if days_text is not None:
        days = _positive_int(days_text)
        if days is None:
            errors[ModalBlock.DAYS] = "Enter a whole number of days, 1 or more."
        elif days > most:
            errors[ModalBlock.DAYS] = too_long
        else:
            duration = timedelta(days=days)
    end = _end_time(values)
    if isinstance(end, str):
        errors[ModalBlock.END] = end
        return duration, None
    if end is None:
        return duration, None
    if days_text is not None:
        errors[ModalBlock.END] = "Give either a number of days or an end time, not both."
        return None, None
    if end <= now:
        errors[ModalBlock.END] = "The end time is in the past: pick a later one."
        return None, None
    # Journey pauses are whole days (PausedDays, rounded up): more than 14 days is too long.
    if end - now > timedelta(days=most):
        errors[ModalBlock.END] = too_long
        return None, None
    return None, end


def _bulk_pattern(
    values: Mapping[str, Any], environment: str | None, errors: dict[str, str]
) -> BulkPattern | None:
    text = _text_value(values, ModalBlock.PATTERN, ModalAction.PATTERN)
    if text is None or environment is None:
        return None
    if _selected_value(values, ModalBlock.TARGET, ModalAction.TARGET) is not None:
        errors[ModalBlock.PATTERN] = (
            "Either pick one target above or give a pattern here, not both."
        )
        return None
    try:
        return parse_pattern(text, environment=environment)
    except BadInput as exc:
        errors[ModalBlock.PATTERN] = exc.message
        return None


def parse_pause_submission(
    values: Mapping[str, Any], *, context: ModalContext, now: datetime
) -> PauseCommand | BulkCommand | dict[str, str]:
    """The typed command, or ``{block_id: message}`` for ``response_action="errors"``.

    ``values`` is ``view.state.values``. Journey-only inputs are ignored for other kinds.
    A pattern instead of a target is a bulk pause (its preview comes first).
    """
    errors: dict[str, str] = {}
    environment = (
        _selected_value(values, ModalBlock.ENVIRONMENT, ModalAction.ENVIRONMENT)
        or context.environment
    )
    if environment is None:
        errors[ModalBlock.ENVIRONMENT] = "Choose an environment."
    choice: TargetChoice | None = None
    pattern = _bulk_pattern(values, environment, errors)
    raw_target = _selected_value(values, ModalBlock.TARGET, ModalAction.TARGET)
    if raw_target is None:
        if _text_value(values, ModalBlock.PATTERN, ModalAction.PATTERN) is None:
            errors[ModalBlock.TARGET] = "Choose a target (or give a pattern below)."
    else:
        try:
            choice = TargetChoice.parse(raw_target)
        except BadInput as exc:
            errors[ModalBlock.TARGET] = exc.message
    if choice is not None and environment is not None and choice.environment != environment:
        errors[ModalBlock.TARGET] = (
            f"That target is in {choice.environment}, not {environment}: pick it again."
        )
    journey = (choice is not None and choice.kind is TargetKind.JOURNEY) or (
        pattern is not None and pattern.kind is TargetKind.JOURNEY
    )
    not_journey = (choice is not None and not journey) or (
        pattern is not None and pattern.kind not in (None, TargetKind.JOURNEY)
    )

    versions = _versions(values, errors) if journey and choice is not None else VersionSelector()
    duration, until = _length(values, journey=journey, now=now, errors=errors)
    timed_input = (
        _text_value(values, ModalBlock.DAYS, ModalAction.DAYS) is not None
        or _element(values, ModalBlock.END, ModalAction.END).get("selected_date_time") is not None
    )

    then = ThenAction.RESUME
    then_text = _selected_value(values, ModalBlock.THEN, ModalAction.THEN)
    if then_text is not None:
        try:
            then = ThenAction(then_text)
        except ValueError:
            errors[ModalBlock.THEN] = "Choose what happens when the pause ends."
    if then is ThenAction.STOP:
        if not_journey:
            errors[ModalBlock.THEN] = "\u201cStop\u201d at the end works only for journeys."
        elif not timed_input:
            errors[ModalBlock.THEN] = (
                "\u201cStop\u201d needs a length: give a number of days or an end time."
            )
    if not timed_input:
        then = ThenAction.RESUME  # a pause without an end has no end action

    checked: set[str] = set()
    if journey and choice is not None:
        selected = _element(values, ModalBlock.JOURNEY_OPTIONS, ModalAction.JOURNEY_OPTIONS).get(
            "selected_options"
        )
        if isinstance(selected, Sequence):
            checked = {o["value"] for o in selected if isinstance(o, Mapping) and "value" in o}

    reason = _text_value(values, ModalBlock.REASON, ModalAction.REASON)
    if reason is not None and len(reason) > REASON_MAX:
        errors[ModalBlock.REASON] = f"Keep the reason under {REASON_MAX} characters."

    if errors or (choice is None and pattern is None) or environment is None:
        return errors
    options = PauseOptions(
        duration=duration,
        until=until,
        then=then,
        extend_waits=_EXTEND_WAITS in checked,
        queue_entries=_QUEUE_ENTRIES in checked,
        reason=reason,
    )
    if pattern is not None:
        return BulkCommand(action=Verb.PAUSE, pattern=pattern, options=options)
    assert choice is not None
    target = TargetRef(environment=environment, kind=choice.kind, name=choice.key)
    return PauseCommand(target=target, options=options, versions=versions)
