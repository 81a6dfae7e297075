"""The ``scrip:`` section of an environment (DESIGN §5), owned by the scrip adapter."""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr, field_validator

from providers.settings import ProviderSection, not_blank


class ScripSettings(ProviderSection):
    base_url: HttpUrl = Field(default=HttpUrl("https://api.scrip.dev/v1"))
    api_key: SecretStr
    program_id: str = Field(min_length=1)

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, v: SecretStr) -> SecretStr:
        not_blank(v)
        if not v.get_secret_value().startswith("sk_"):
            raise ValueError("scrip API keys start with 'sk_'")
        return v
