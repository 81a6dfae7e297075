"""Configuration: one YAML file (DESIGN §5), ``${ENV_VAR}`` interpolation, validated at start.

Slack settings come from the environment (:class:`SlackSettings`). Nothing here runs at
import time: :func:`load_config` is called by the entry point and the result passed down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.domain.approvals import ApprovalPolicy, normalise_reaction
from bot.domain.errors import ConfigError

CONFIG_ENV_VAR = "AUTOMATION_BOT_CONFIG"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: object) -> timedelta:
    """``4h``, ``30m``, ``2d`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    raise ValueError("expected a duration such as 30m, 4h or 2d")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SfmcSettings(_Section):
    """One SFMC business unit (installed package credentials + MID)."""

    auth_url: HttpUrl = Field(description="https://<subdomain>.auth.marketingcloudapis.com/")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    account_id: int = Field(gt=0, description="MID of the business unit")
    snapshot_file: Path | None = Field(
        default=None,
        description="A JSON file for automation schedules kept while paused "
        "(default: the bot's database)",
    )
    max_concurrent_calls: int = Field(
        default=20,
        ge=1,
        le=100,
        description="Calls in flight to this business unit at once (SFMC: at most 20)",
    )


class ScripSettings(_Section):
    base_url: HttpUrl = Field(default=HttpUrl("https://api.scrip.dev/v1"))
    api_key: SecretStr
    program_id: str = Field(min_length=1)

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("sk_"):
            raise ValueError("scrip API keys start with 'sk_'")
        return v


class ApprovalSettings(_Section):
    approvers: list[str] = Field(default_factory=list, description="user and user-group ids")
    required: int = Field(default=1, ge=1)
    allow_self_approval: bool = False
    expires_after: timedelta = Field(default=timedelta(hours=4))
    approve_reaction: str = "white_check_mark"
    deny_reaction: str = "x"
    channel: str | None = None
    requesters: list[str] | None = None

    @field_validator("expires_after", mode="before")
    @classmethod
    def _duration(cls, v: object) -> timedelta:
        return parse_duration(v)


class EnvironmentSettings(_Section):
    production: bool = False
    approval: ApprovalSettings | None = None
    notify_channel: str | None = None
    sfmc: SfmcSettings | None = None
    scrip: ScripSettings | None = None

    @model_validator(mode="after")
    def _has_a_provider(self) -> EnvironmentSettings:
        if self.sfmc is None and self.scrip is None:
            raise ValueError("an environment needs at least one provider (sfmc or scrip)")
        return self


class PauseSettings(_Section):
    """How the bot watches timed pauses (all optional)."""

    reminders: list[timedelta] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=1)],
        description="reminders before a pause ends, e.g. [24h, 1h]",
    )
    open_ended_reminder_every: timedelta = timedelta(hours=24)
    journey_grace: timedelta = Field(
        default=timedelta(minutes=10),
        description="how long after a journey pause ends the bot reads what happened",
    )
    drift_every: timedelta = Field(
        default=timedelta(minutes=30), description="how often paused targets are read back"
    )

    @field_validator("reminders", mode="before")
    @classmethod
    def _reminders(cls, v: object) -> list[timedelta]:
        if not isinstance(v, list):
            raise ValueError("expected a list of durations such as [24h, 1h]")
        return [parse_duration(item) for item in v]

    @field_validator("open_ended_reminder_every", "journey_grace", "drift_every", mode="before")
    @classmethod
    def _duration(cls, v: object) -> timedelta:
        return parse_duration(v)


class BotConfig(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database_url: str = "sqlite:///automation-bot.db"
    default_environment: str
    pauses: PauseSettings = Field(default_factory=PauseSettings)
    environments: dict[str, EnvironmentSettings] = Field(min_length=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file (passed as init kwargs) is the only source: no stray env overrides.
        return (init_settings,)

    @field_validator("environments")
    @classmethod
    def _names(cls, v: dict[str, EnvironmentSettings]) -> dict[str, EnvironmentSettings]:
        for name in v:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(
                    f"environment name {name!r} must be lowercase letters, digits, - or _"
                )
        return v

    @model_validator(mode="after")
    def _approvals_satisfiable(self) -> BotConfig:
        for name, env in self.environments.items():
            if env.production and env.approval is None:
                raise ValueError(
                    f"environments.{name}: a production environment needs an approval "
                    "section (approvers, required), or no change there could ever be approved"
                )
            policy = self.approval_policy(name)
            if policy is not None:
                try:
                    policy.check_satisfiable()
                except ConfigError as exc:
                    raise ValueError(exc.message) from None
        return self

    def warnings(self) -> list[str]:
        """What is allowed but probably not meant (logged at start, shown by `config check`)."""
        found: list[str] = []
        for name in self.environments:
            policy = self.approval_policy(name)
            if policy is not None:
                found.extend(policy.warnings())
        return found

    def approval_policy(self, name: str) -> ApprovalPolicy | None:
        """The approval rules of a production environment (None elsewhere)."""
        env = self.environments.get(name)
        if env is None or not env.production or env.approval is None:
            return None
        a = env.approval
        return ApprovalPolicy(
            environment=name,
            approvers=frozenset(a.approvers),
            required=a.required,
            allow_self_approval=a.allow_self_approval,
            expires_after=a.expires_after,
            approve_reaction=normalise_reaction(a.approve_reaction),
            deny_reaction=normalise_reaction(a.deny_reaction),
            channel=a.channel,
            requesters=frozenset(a.requesters) if a.requesters is not None else None,
        )

    @model_validator(mode="after")
    def _default_exists(self) -> BotConfig:
        if self.default_environment not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise ValueError(
                f"default_environment {self.default_environment!r} is not one of: {known}"
            )
        return self

    def environment(self, name: str | None) -> tuple[str, EnvironmentSettings]:
        """The named environment (or the default); ConfigError naming the known ones."""
        key = name or self.default_environment
        env = self.environments.get(key)
        if env is None:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"Unknown environment {key!r}. Known environments: {known}.")
        return key, env


class SlackSettings(BaseSettings):
    """Slack credentials and endpoints, from the environment only."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"


def interpolate(value: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {
            k: interpolate(v, environ, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def _sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return _VAR.sub(_sub, value)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def config_from_mapping(
    data: Any, *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> BotConfig:
    """Validate an already-parsed YAML tree (after interpolation)."""
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid configuration in {source}: the top level must be a mapping")
    try:
        data = interpolate(data, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(f"Invalid configuration in {source}: {exc.message}") from None
    try:
        return BotConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> BotConfig:
    """Read, interpolate and validate the YAML file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"Configuration file {path} is not valid YAML{where}") from None
    return config_from_mapping(data, source=str(path), environ=environ)


def config_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``--config`` wins, then ``AUTOMATION_BOT_CONFIG``; None means embedded defaults."""
    if explicit is not None:
        return explicit
    value = (os.environ if environ is None else environ).get(CONFIG_ENV_VAR)
    return Path(value) if value else None
