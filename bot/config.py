"""Configuration: one YAML file (DESIGN §5), ``${ENV_VAR}`` interpolation, validated at start.

Slack settings come from the environment (:class:`SlackSettings`). Nothing here runs at
import time: :func:`load_config` is called by the entry point and the result passed down.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.approvals import ApprovalPolicy, normalise_reaction
from bot.domain.errors import ConfigError

# each provider package owns its section's model; re-exported for existing imports
from providers.scrip.config import ScripSettings as ScripSettings
from providers.settings import ProviderSection
from providers.sfmc.config import SfmcSettings as SfmcSettings

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

    def provider_sections(self) -> dict[str, ProviderSection]:
        """The provider sections that are set, by name (built by ``providers.registry``)."""
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), ProviderSection)
        }

    @model_validator(mode="after")
    def _has_a_provider(self) -> EnvironmentSettings:
        if not self.provider_sections():
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


class SlackLimitSettings(_Section):
    """Slack's Web API budgets per workspace (reference §2.6) the bot keeps to (all
    optional; the defaults are Slack's figures). Raise them only for a test Slack."""

    tier3_per_min: float = Field(default=50.0, gt=0, description="chat.update (Tier 3)")
    tier3_burst: int = Field(default=10, ge=1)
    tier4_per_min: float = Field(
        default=100.0, gt=0, description="views.publish, chat.postEphemeral (Tier 4)"
    )
    tier4_burst: int = Field(default=20, ge=1)
    post_message_workspace_per_min: float = Field(
        default=300.0, gt=0, description="chat.postMessage across all channels"
    )
    post_message_workspace_burst: int = Field(default=30, ge=1)


class BotConfig(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database_url: str = "sqlite:///automation-bot.db"
    default_environment: str
    pauses: PauseSettings = Field(default_factory=PauseSettings)
    slack_limits: SlackLimitSettings = Field(default_factory=SlackLimitSettings)
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

    @field_validator("database_url")
    @classmethod
    def _database(cls, v: str) -> str:
        check_database_url(v)
        return v

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
            if policy is None:
                continue
            found.extend(policy.warnings())
            if policy.channel is None:
                found.append(
                    f"environments.{name}.approval.channel is not set: requests made outside "
                    "a Slack channel (automation-bot exec) cannot be posted for approval there "
                    "and are refused. Set it to the channel id approvers watch (C...)."
                )
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
                + _did_you_mean(self.default_environment, self.environments)
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


#: Database URL schemes the bot supports (the store's drivers: aiosqlite and psycopg 3).
SUPPORTED_DATABASES = ("sqlite", "postgresql+psycopg")
_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
#: PostgreSQL URLs as people write them; the store always talks to them through psycopg 3.
_POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
)


def check_database_url(url: str) -> None:
    """SQLite or PostgreSQL (any PostgreSQL spelling: the store uses psycopg 3 for all of
    them); anything else is refused (the message never shows a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(
            "is not a database URL: use sqlite:///automation-bot.db or "
            "postgresql+psycopg://user:password@host/db"
        ) from None
    scheme = parsed.drivername
    if scheme in _SQLITE_SCHEMES or scheme in _POSTGRES_SCHEMES:
        return
    raise ValueError(
        f"the database {scheme!r} is not supported: use sqlite:///automation-bot.db or "
        "postgresql+psycopg://user:password@host/db"
    )


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _type_at(loc: tuple[int | str, ...]) -> Any:
    """The declared type of the field at ``loc`` in :class:`BotConfig` (None: unknown)."""
    tp: Any = BotConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return None
    return _unwrap(tp)


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    parent = _type_at(loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        known = list(parent.model_fields)
        hint = _did_you_mean(str(loc[-1]), known)
        return f"unknown key{hint or ' (known keys: ' + ', '.join(known) + ')'}"
    return "unknown key"


def _shown(loc: tuple[int | str, ...], value: Any) -> str:
    """`` (got 'abc')`` for a plain value; secrets and database URLs are never shown."""
    if not isinstance(value, str | int | float | bool) or value is None:
        return ""
    if loc == ("database_url",):
        return ""  # it may hold a password; its message names the scheme
    if _type_at(loc) is SecretStr:
        return " (value hidden)"
    text = repr(value)
    if len(text) > 60:
        text = text[:59] + "\u2026"
    return f" (got {text})"


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: {_unknown_key(loc)}")
            continue
        message = err["msg"].removeprefix("Value error, ")
        value = _shown(loc, err.get("input")) if loc else ""
        lines.append(f"  {where}: {message}{value}")
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
        raise ConfigError(
            f"Configuration file {path} is not valid YAML{_yaml_problem(exc)}"
        ) from None
    if data is None:
        raise ConfigError(f"Configuration file {path} is empty: see the example in the README.")
    return config_from_mapping(data, source=str(path), environ=environ)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`` (line 3, column 7): mapping values are not allowed here; ...`` (no file content)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = str(getattr(exc, "problem", None) or "")
    if not problem:
        return where
    context = getattr(exc, "context", None)
    what = f": {problem}" + (f" ({context})" if context else "")
    if "'\\t'" in problem:
        what += "; YAML does not allow tabs for indentation: use spaces"
    elif "mapping values are not allowed" in problem:
        what += "; quote a value that contains ': ', or check the indentation of this key"
    elif "<block mapping start>" in problem:
        what += "; this key is indented differently from the keys above it"
    return where + what


def _duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def config_summary(cfg: BotConfig) -> list[str]:
    """What a valid configuration sets up, one line each (secrets and passwords hidden)."""
    database = make_url(cfg.database_url).render_as_string(hide_password=True)
    lines = [f"database: {database}", f"default environment: {cfg.default_environment}"]
    for name, env in cfg.environments.items():
        providers = []
        if env.sfmc is not None:
            units = env.sfmc.units()
            if len(units) == 1 and units[0].name is None:
                providers.append(f"sfmc (MID {units[0].account_id}, {env.sfmc.auth_url})")
            else:
                named = ", ".join(f"{u.name} MID {u.account_id}" for u in units)
                providers.append(f"sfmc (business units {named}; {env.sfmc.auth_url})")
        if env.scrip is not None:
            providers.append(f"scrip (program {env.scrip.program_id}, {env.scrip.base_url})")
        kind = "production" if env.production else "not production"
        lines.append(f"{name} ({kind}): {', '.join(providers)}")
        policy = cfg.approval_policy(name)
        if policy is not None:
            self_approval = "allowed" if policy.allow_self_approval else "not allowed"
            channel = policy.channel or "not set"
            lines.append(
                f"  approval: {policy.required} of {', '.join(sorted(policy.approvers))}; "
                f"self-approval {self_approval}; expires after "
                f"{_duration_text(policy.expires_after)}; reactions "
                f":{policy.approve_reaction}: / :{policy.deny_reaction}:; channel {channel}"
            )
            if policy.requesters is not None:
                lines.append(f"  requesters: {', '.join(sorted(policy.requesters)) or 'nobody'}")
        elif env.approval is not None:
            lines.append("  approval: set, but unused (the environment is not production)")
        if env.notify_channel:
            lines.append(f"  notices: {env.notify_channel}")
    return lines


def config_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``--config`` wins, then ``AUTOMATION_BOT_CONFIG``; None means embedded defaults."""
    if explicit is not None:
        return explicit
    value = (os.environ if environ is None else environ).get(CONFIG_ENV_VAR)
    return Path(value) if value else None
