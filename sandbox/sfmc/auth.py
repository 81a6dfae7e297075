"""OAuth2 client credentials (``POST /v2/token``) and token checks for SOAP and REST.

A token belongs to one (client_id, MID), lives 20 minutes of emulator time and says
``expires_in: 1079`` (reference §4).
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response

from sandbox.sfmc.routing import DOC_URL, Ctx
from sandbox.sfmc.state import TOKEN_EXPIRES_IN, Tenant, Token

OAUTH_ERROR_URI = "https://developer.salesforce.com/docs"
TokenCheck = Literal["ok", "missing", "unknown", "expired"]


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description, "error_uri": OAUTH_ERROR_URI},
        status_code=status,
    )


async def _read_body(ctx: Ctx) -> dict[str, Any] | None:
    raw = await ctx.request.body()
    content_type = ctx.request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


class AuthService:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    async def token(self, ctx: Ctx) -> Response:
        """``POST /v2/token``: JSON (or form) client credentials -> a token for one MID."""
        body = await _read_body(ctx)
        with self.tenant.lock:
            self.tenant.token_requests += 1
            if body is None:
                return _oauth_error(400, "invalid_request", "The request body is not valid JSON.")
            if body.get("grant_type") != "client_credentials":
                return _oauth_error(
                    400, "unsupported_grant_type", "Use grant_type client_credentials."
                )
            account = self.tenant.accounts.get(str(body.get("client_id", "")))
            if account is None or body.get("client_secret") != account.client_secret:
                return _oauth_error(
                    401,
                    "invalid_client",
                    "Client authentication failed. Make sure that the client ID and client "
                    "secret are valid and that the package is installed and enabled.",
                )
            requested = body.get("account_id")
            try:
                mid = account.mids[0] if requested in (None, "") else int(str(requested))
            except ValueError:
                return _oauth_error(400, "invalid_request", "account_id must be an integer MID.")
            if mid not in account.mids:
                return _oauth_error(
                    401,
                    "unauthorized_client",
                    f"The client is not authorized to access account_id {mid}.",
                )
            scope = str(body.get("scope") or account.scope)
            token = self.tenant.issue_token(account, mid, scope, ctx.now)
            ctx.mid = mid
        base = ctx.base_url
        return JSONResponse(
            {
                "access_token": token.value,
                "token_type": "Bearer",
                "expires_in": TOKEN_EXPIRES_IN,
                "scope": scope,
                "soap_instance_url": base,
                "rest_instance_url": base,
            }
        )

    def check(self, ctx: Ctx, value: str | None) -> tuple[Token | None, TokenCheck]:
        """Look a presented token up; the expire-token knob expires it for good first."""
        if not value:
            return None, "missing"
        with self.tenant.lock:
            token = self.tenant.tokens.get(value)
            if token is None:
                return None, "unknown"
            if ctx.force_expire:
                token.revoked = True
            ctx.mid = token.mid
            if token.expired(ctx.now):
                return token, "expired"
            return token, "ok"

    def bearer(self, ctx: Ctx) -> Token | Response:
        """The REST caller's token, or the 401 SFMC answers for a missing/bad/expired one."""
        header = ctx.request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token, verdict = self.check(ctx, value.strip() if scheme.lower() == "bearer" else None)
        if token is not None and verdict == "ok":
            return token
        return JSONResponse(
            {"documentation": DOC_URL, "errorcode": 0, "message": "Not Authorized"},
            status_code=401,
        )
