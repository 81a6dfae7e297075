"""The ``sfmc:`` section of an environment (DESIGN §5), owned by the SFMC adapters.

One business unit (its MID in ``account_id``), or several (``business_units``, each with a
short ``name`` and its MID): an installed package is usually granted several business units
of one tenant, so the units share the section's credentials unless one names its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

from providers.settings import ProviderSection, not_blank

_UNIT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class SfmcBusinessUnit(BaseModel):
    """One business unit of an environment with several: its name, its MID, and what it
    does not share with the section (a package of its own, a lower call limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short name; it qualifies keys: prod/automation:<name>/<key>")
    account_id: int = Field(gt=0, description="MID of the business unit")
    auth_url: HttpUrl | None = Field(default=None, description="default: the section's")
    client_id: str | None = Field(default=None, min_length=1, description="default: the section's")
    client_secret: SecretStr | None = Field(default=None, description="default: the section's")
    max_concurrent_calls: int | None = Field(
        default=None, ge=1, le=100, description="default: the section's"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _UNIT_NAME.fullmatch(v):
            raise ValueError(
                "a business unit name is lowercase letters, digits, - or _ "
                "(it qualifies keys, e.g. prod/automation:emea/welcome-send)"
            )
        return v

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        return None if v is None else not_blank(v)


@dataclass(frozen=True)
class BusinessUnit:
    """One business unit as the adapters are built for it (the section's values filled in)."""

    name: str | None  # None: the environment's only business unit (keys stay unqualified)
    account_id: int
    auth_url: str
    client_id: str
    client_secret: SecretStr
    max_concurrent_calls: int


class SfmcSettings(ProviderSection):
    """SFMC for one environment: installed package credentials and one business unit
    (``account_id``) or several (``business_units``)."""

    auth_url: HttpUrl = Field(description="https://<subdomain>.auth.marketingcloudapis.com/")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    account_id: int | None = Field(default=None, gt=0, description="MID of the business unit")
    business_units: list[SfmcBusinessUnit] | None = Field(
        default=None,
        min_length=1,
        description="Several business units instead of account_id: name and account_id each",
    )
    snapshot_file: Path | None = Field(
        default=None,
        description="A JSON file for automation schedules kept while paused "
        "(default: the bot's database)",
    )
    max_concurrent_calls: int = Field(
        default=20,
        ge=1,
        le=100,
        description="Calls in flight to each business unit at once (SFMC: at most 20)",
    )

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        return not_blank(v)

    @field_validator("business_units")
    @classmethod
    def _distinct(cls, v: list[SfmcBusinessUnit] | None) -> list[SfmcBusinessUnit] | None:
        seen: dict[str, SfmcBusinessUnit] = {}
        mids: dict[int, str] = {}
        for unit in v or ():
            if unit.name in seen:
                raise ValueError(
                    f"the business unit name {unit.name!r} is used twice: "
                    "each business unit needs a name of its own"
                )
            if unit.account_id in mids:
                raise ValueError(
                    f"business units {mids[unit.account_id]!r} and {unit.name!r} have the "
                    f"same account_id {unit.account_id}: each MID is one business unit"
                )
            seen[unit.name] = unit
            mids[unit.account_id] = unit.name
        return v

    @model_validator(mode="after")
    def _one_or_several(self) -> SfmcSettings:
        if self.account_id is None and self.business_units is None:
            raise ValueError(
                "give the business unit's account_id (its MID), or business_units: "
                "a list of {name, account_id}"
            )
        if self.account_id is not None and self.business_units is not None:
            raise ValueError(
                "give either account_id (one business unit) or business_units (several), "
                "not both: put this MID in the list"
            )
        return self

    def units(self) -> list[BusinessUnit]:
        """Every business unit, the section's values filled in (one unnamed unit when
        the section gives ``account_id``)."""
        if self.business_units is None:
            assert self.account_id is not None  # checked above
            return [
                BusinessUnit(
                    name=None,
                    account_id=self.account_id,
                    auth_url=str(self.auth_url),
                    client_id=self.client_id,
                    client_secret=self.client_secret,
                    max_concurrent_calls=self.max_concurrent_calls,
                )
            ]
        return [
            BusinessUnit(
                name=unit.name,
                account_id=unit.account_id,
                auth_url=str(unit.auth_url or self.auth_url),
                client_id=unit.client_id or self.client_id,
                client_secret=unit.client_secret or self.client_secret,
                max_concurrent_calls=unit.max_concurrent_calls or self.max_concurrent_calls,
            )
            for unit in self.business_units
        ]
