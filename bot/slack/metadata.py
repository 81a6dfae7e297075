"""Small typed state the bot carries through Slack and reads back with validation.

Button ``value`` (at most 2000 characters), a modal's ``private_metadata`` (at most 3000)
and a select option's ``value`` (at most 150) come back from Slack as text. Each is a
pydantic model with ``dump()`` and ``parse(text)``; ``parse`` raises
:class:`~bot.domain.errors.BadInput` on anything it cannot use, never a pydantic error.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.domain.errors import BadInput
from bot.domain.models import TargetKind

__all__ = [
    "BUTTON_VALUE_MAX",
    "OPTION_VALUE_MAX",
    "PRIVATE_METADATA_MAX",
    "ButtonValue",
    "ModalContext",
    "TargetChoice",
]

BUTTON_VALUE_MAX = 2000
PRIVATE_METADATA_MAX = 3000
OPTION_VALUE_MAX = 150

_NAME_MAX = 200

_Env = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^|\s]+$")]
_Key = Annotated[str, Field(min_length=1, max_length=255)]
_SlackId = Annotated[str, Field(min_length=1, max_length=64)]


def _shorten_name(value: str | None) -> str | None:
    """A target's display name, only ever shown as a label: shortening it loses nothing."""
    if value is not None and len(value) > _NAME_MAX:
        return value[: _NAME_MAX - 1] + "…"
    return value


class _Carried(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    _limit: ClassVar[int]
    _what: ClassVar[str]

    def dump(self) -> str:
        """Compact JSON (unset fields left out); raises ValueError past Slack's limit."""
        text = self.model_dump_json(exclude_none=True)
        if len(text) > self._limit:
            raise ValueError(f"{self._what} is {len(text)} characters, over {self._limit}")
        return text

    @classmethod
    def parse(cls, text: str | None) -> Self:
        if not text or len(text) > cls._limit:
            raise BadInput(f"The {cls._what} from Slack is missing or too long; try again.")
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise BadInput(f"The {cls._what} from Slack could not be read; try again.") from exc


class ButtonValue(_Carried):
    """What a button carries: a request id, or a target (plus, for the picker, a command).

    ``command`` is the original command text (without the slash command) that the picker
    re-runs for the chosen target.
    """

    _limit: ClassVar[int] = BUTTON_VALUE_MAX
    _what: ClassVar[str] = "button data"

    request_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    environment: _Env | None = None
    kind: TargetKind | None = None
    key: _Key | None = None
    name: str | None = None
    version: Annotated[int, Field(ge=1)] | None = None
    command: Annotated[str, Field(max_length=1500)] | None = None

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str | None) -> str | None:
        return _shorten_name(value)

    @model_validator(mode="after")
    def _request_or_target(self) -> Self:
        if self.request_id is None and (self.kind is None or self.key is None):
            raise ValueError("a button value needs a request_id or a kind and key")
        return self


class ModalContext(_Carried):
    """The pause modal's ``private_metadata``: where it came from and what to prefill.

    ``view_submission`` carries no channel, so the channel and thread travel here.
    """

    _limit: ClassVar[int] = PRIVATE_METADATA_MAX
    _what: ClassVar[str] = "form data"

    user_id: _SlackId
    channel_id: _SlackId | None = None
    thread_ts: _SlackId | None = None
    environment: _Env | None = None
    kind: TargetKind | None = None
    key: _Key | None = None
    name: str | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str | None) -> str | None:
        return _shorten_name(value)


class TargetChoice(BaseModel):
    """A target as a select option's value: ``env|kind|key`` (at most 150 characters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: _Env
    kind: TargetKind
    key: _Key

    def dump(self) -> str:
        return f"{self.environment}|{self.kind.value}|{self.key}"

    def fits(self) -> bool:
        return len(self.dump()) <= OPTION_VALUE_MAX

    @classmethod
    def parse(cls, text: str | None) -> TargetChoice:
        parts = (text or "").split("|", 2)
        if len(parts) != 3 or not text or len(text) > OPTION_VALUE_MAX:
            raise BadInput("The chosen target could not be read; pick it again.")
        environment, kind, key = parts
        try:
            return cls(environment=environment, kind=TargetKind(kind), key=key)
        except (ValueError, ValidationError) as exc:
            raise BadInput("The chosen target could not be read; pick it again.") from exc
