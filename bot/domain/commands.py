"""Typed commands: what the grammar parser produces and the service consumes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.bulk import BulkPattern
from bot.domain.models import PauseOptions, TargetKind, Verb, VersionSelector


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetRef(_Command):
    """``[<env>/][<kind>:]<key-or-name>`` as typed, before resolution."""

    environment: str | None = None
    kind: TargetKind | None = None
    name: str = Field(min_length=1)

    def label(self) -> str:
        env = f"{self.environment}/" if self.environment else ""
        kind = f"{self.kind.value}:" if self.kind else ""
        return f"{env}{kind}{self.name}"


class ListScope(StrEnum):
    PAUSED = "paused"
    ALL = "all"


class HelpCommand(_Command):
    verb: Literal[Verb.HELP] = Verb.HELP
    topic: Verb | None = None


class StatusCommand(_Command):
    verb: Literal[Verb.STATUS] = Verb.STATUS
    target: TargetRef


class PauseCommand(_Command):
    verb: Literal[Verb.PAUSE] = Verb.PAUSE
    target: TargetRef
    options: PauseOptions = PauseOptions()
    versions: VersionSelector = VersionSelector()


class OpenPauseModal(_Command):
    """``/automation pause`` with no arguments: the Slack layer opens the modal."""

    verb: Literal["pause-modal"] = "pause-modal"


class ResumeCommand(_Command):
    verb: Literal[Verb.RESUME] = Verb.RESUME
    target: TargetRef
    versions: VersionSelector = VersionSelector()


class StopCommand(_Command):
    verb: Literal[Verb.STOP] = Verb.STOP
    target: TargetRef
    versions: VersionSelector = VersionSelector()  # all_versions is never set for stop


class RunCommand(_Command):
    verb: Literal[Verb.RUN] = Verb.RUN
    target: TargetRef


class ListCommand(_Command):
    verb: Literal[Verb.LIST] = Verb.LIST
    scope: ListScope = ListScope.PAUSED
    kind: TargetKind | None = None
    filter: str | None = None
    environment: str | None = None


class HistoryCommand(_Command):
    verb: Literal[Verb.HISTORY] = Verb.HISTORY
    target: TargetRef


class BulkCommand(_Command):
    """``pause|resume|stop <env>/<kind>:<glob>``: many targets at once (a preview first)."""

    verb: Literal["bulk"] = "bulk"
    action: Literal[Verb.PAUSE, Verb.RESUME, Verb.STOP]
    pattern: BulkPattern
    options: PauseOptions | None = None  # pause only


class ResumeBatchCommand(_Command):
    """``resume batch <id>``: put back exactly the targets that batch paused."""

    verb: Literal["resume-batch"] = "resume-batch"
    batch_id: str = Field(min_length=1)


Command = Annotated[
    HelpCommand
    | StatusCommand
    | PauseCommand
    | OpenPauseModal
    | ResumeCommand
    | StopCommand
    | RunCommand
    | ListCommand
    | HistoryCommand
    | BulkCommand
    | ResumeBatchCommand,
    Field(discriminator="verb"),
]

TargetCommand = StatusCommand | PauseCommand | ResumeCommand | StopCommand | RunCommand
