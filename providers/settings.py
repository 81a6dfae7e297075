"""What every provider package's config section shares (each package owns its model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class ProviderSection(BaseModel):
    """One provider's section of an environment in the YAML config (DESIGN §5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def not_blank(v: SecretStr) -> SecretStr:
    if not v.get_secret_value().strip():
        raise ValueError("is empty: set the secret (e.g. ${ENV_VAR}, with the variable set)")
    return v
