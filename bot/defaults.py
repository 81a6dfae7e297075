"""The embedded defaults: a configuration that points at the local sandbox emulators."""

from __future__ import annotations

from typing import Any

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the emulator's public demo secret
SANDBOX_SCRIP_KEY = "sk_sandbox_key"
SANDBOX_PROGRAM_ID = "6f1c2a9e-0b7d-4c55-9a11-3e2f5b8c7d10"
STAGING_MID = 5100001
PROD_MID = 5100002


def sandbox_config(*, sfmc_url: str, scrip_url: str, database_url: str) -> dict[str, Any]:
    """A configuration mapping (same shape as the YAML file) for the sandbox emulators."""

    def sfmc(mid: int) -> dict[str, Any]:
        return {
            "auth_url": sfmc_url.rstrip("/") + "/",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "account_id": mid,
        }

    scrip = {
        "base_url": scrip_url.rstrip("/") + "/v1",
        "api_key": SANDBOX_SCRIP_KEY,
        "program_id": SANDBOX_PROGRAM_ID,
    }
    return {
        "database_url": database_url,
        "default_environment": "staging",
        "environments": {
            "staging": {"production": False, "sfmc": sfmc(STAGING_MID), "scrip": scrip},
            "prod": {
                "production": True,
                "approval": {
                    "approvers": ["S0APPROVERS", "U0ADMIN"],
                    "required": 1,
                    "channel": "C0APPROVALS",
                },
                "sfmc": sfmc(PROD_MID),
            },
        },
    }
