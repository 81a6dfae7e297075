"""A small router that matches on the raw, percent-encoded request path.

Starlette matches on the decoded path, so ``key:a%2Fb`` would look like two segments. Here
the raw path is split on ``/`` first and each segment is decoded on its own: ``key:a%2Fb``
is the key ``a/b``, and no decoded ``..`` can climb into another route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DOC_URL = (
    "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"
)

Flavor = Literal["rest", "soap", "token"]


@dataclass
class Ctx:
    """One request as a handler sees it."""

    request: Request
    path: str  # the raw path, still percent-encoded
    params: dict[str, str]
    now: datetime
    flavor: Flavor
    mid: int | None = None
    soap_action: str | None = None
    force_expire: bool = False  # the expire-token knob fired for this call

    @property
    def base_url(self) -> str:
        """``scheme://host:port/`` as the client addressed us."""
        return str(self.request.base_url)


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    flavor: Flavor
    authenticated: bool = True


def raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("latin-1")
    return str(request.scope.get("path", "/"))


def split_path(path: str) -> list[str] | None:
    """Decoded segments of a raw path, or None when a segment is ``.`` or ``..``."""
    parts = path.split("/")[1:]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # one trailing slash is the same route
    segments = [unquote(p) for p in parts]
    if any(s in (".", "..") for s in segments):
        return None
    return segments


def _match_segment(pattern: str, segment: str, params: dict[str, str]) -> bool:
    if pattern.startswith("key:{") and pattern.endswith("}"):
        if not segment.startswith("key:") or len(segment) == 4:
            return False
        params[pattern[5:-1]] = segment[4:]
        return True
    if pattern.startswith("{") and pattern.endswith("}"):
        if segment.startswith("key:") or segment == "":
            return False  # an id never starts with key: (stop/key:x is not a route)
        params[pattern[1:-1]] = segment
        return True
    return pattern == segment


@dataclass
class Router:
    routes: list[Route] = field(default_factory=list)

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        flavor: Flavor = "rest",
        authenticated: bool = True,
    ) -> None:
        pattern = tuple(path.split("/")[1:])
        self.routes.append(Route(method, pattern, handler, flavor, authenticated))

    def match(self, method: str, segments: list[str]) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_matched_other_method)."""
        other_method = False
        for route in self.routes:
            if len(route.pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            if all(
                _match_segment(p, s, params) for p, s in zip(route.pattern, segments, strict=True)
            ):
                if route.method == method:
                    return route, params, False
                other_method = True
        return None, {}, other_method


def rest_error(
    status: int,
    errorcode: int,
    message: str,
    *,
    documentation: str = DOC_URL,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """SFMC's REST error body: ``{message, errorcode, documentation}`` (+ extras)."""
    body: dict[str, Any] = {
        "message": message,
        "errorcode": errorcode,
        "documentation": documentation,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def not_found() -> JSONResponse:
    """The platform's generic 404 for an unknown route."""
    return JSONResponse(
        {"documentation": DOC_URL, "errorcode": 404, "message": "Not Found"}, status_code=404
    )
