"""The ``sfmc:`` section of an environment (DESIGN §5), owned by the SFMC adapters."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl, SecretStr, field_validator

from providers.settings import ProviderSection, not_blank


class SfmcSettings(ProviderSection):
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

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        return not_blank(v)
