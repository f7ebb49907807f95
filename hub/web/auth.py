"""Who may call the hub's API: bearer tokens with roles, checked by a middleware before routing.

Roles, each including the one before it:

* ``viewer``: every read (GET, HEAD, OPTIONS);
* ``operator``: also writes under ``/api/v1/policies``, ``/api/v1/autoscaling`` (policies, dry-run) and
  ``/api/v1/approvals`` (approving or rejecting a decision of an approval-mode policy);
* ``admin``: every other write.

Per request, in this order: an open path is served as it is; otherwise the token is authenticated
(401 when missing or unknown), then the method and path are authorized (403 naming the role
needed), and only then is the request routed. So a viewer's write is refused with 403 whether or
not a route exists for it, and an unauthenticated caller learns nothing about which routes exist.

The authorization rule reads the path exactly as the router matches it (``path_safe``: ``%2F`` stays
encoded), so the two cannot disagree about which path was asked for. A write whose path has ``.``
or ``..`` segments needs ``admin``, and such a path is never open.

Tokens and where they come from are in ``hub/web/tokens.py``; this module only needs a lookup function.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from aiohttp import web

logger = logging.getLogger(__name__)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: for authorization, and for the audit trail of what they changed."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.ADMIN)
"""The principal of every request while authentication is off (no token source configured)."""

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
"""Where the middleware puts the caller on the request: ``request[PRINCIPAL]`` (None on open paths)."""

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPERATOR_PATHS = ("/api/v1/policies", "/api/v1/autoscaling", "/api/v1/approvals")
DEFAULT_OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
PAGE_PATHS = ("/", "/page/*")
"""The web page's shell (``hub/page``): it holds no data and asks the API for everything, with the
user's token."""
QUERY_TOKEN_PATHS = frozenset({"/api/v1/events"})
"""Where ``?access_token=`` is accepted in place of the header (GET only): a browser's
``EventSource`` cannot set headers. Nowhere else, since URLs end up in proxy logs and histories."""

REALM = "fleetscale"

Lookup = Callable[[str], Principal | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _has_dot_segment(path: str) -> bool:
    return any(s in (".", "..") for s in path.split("/"))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def required_role(method: str, path: str) -> Role:
    """The least role that may call ``method`` on ``path`` (``path`` as the router matches it)."""
    if method.upper() in READ_METHODS:
        return Role.VIEWER
    if not _has_dot_segment(path) and any(_under(path, p) for p in OPERATOR_PATHS):
        return Role.OPERATOR
    return Role.ADMIN


class PathSet:
    """Exact paths, and prefixes written with a trailing ``*`` (``/page/*``)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.exact = frozenset(p for p in patterns if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or _has_dot_segment(path):
            return False
        return path in self.exact or any(path.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class AccessPolicy:
    """How the API is guarded. ``lookup`` None means authentication is off: everyone is ``ANONYMOUS``."""

    lookup: Lookup | None
    open_paths: Sequence[str] = DEFAULT_OPEN_PATHS
    open_page: bool = True
    _open: PathSet = field(init=False, repr=False)
    _page: PathSet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_open", PathSet(self.open_paths))
        object.__setattr__(self, "_page", PathSet(PAGE_PATHS if self.open_page else ()))

    def is_open(self, method: str, path: str) -> bool:
        return path in self._open or (method.upper() in ("GET", "HEAD") and path in self._page)


def principal_of(request: web.Request) -> Principal | None:
    """The caller, as the auth middleware found it (None on an open path)."""
    return request.get(PRINCIPAL)


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return token
    if request.method == "GET" and request.rel_url.path_safe in QUERY_TOKEN_PATHS:
        return request.query.get("access_token") or None
    return None


def _refusal(status: int, error: str, details: dict[str, Any], challenge: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": error, "details": details}),
        status=status,
        content_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


def auth_middleware(policy: AccessPolicy, *, on_denied: Callable[[str], None] | None = None) -> Any:
    """The aiohttp middleware enforcing ``policy``; ``on_denied(reason)`` counts refusals."""

    def denied(reason: str) -> None:
        if on_denied is not None:
            on_denied(reason)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.rel_url.path_safe
        if policy.is_open(request.method, path):
            request[PRINCIPAL] = None
            return await handler(request)
        if policy.lookup is None:
            request[PRINCIPAL] = ANONYMOUS
            return await handler(request)
        token = bearer_token(request)
        if token is None:
            denied("missing_token")
            return _refusal(401, "unauthorized", {"reason": "missing bearer token (Authorization: Bearer <token>)"},
                            f'Bearer realm="{REALM}"')
        principal = policy.lookup(token)
        if principal is None:
            denied("invalid_token")
            logger.debug("refused %s %s from %s: unknown token", request.method, path, request.remote)
            return _refusal(401, "unauthorized", {"reason": "unknown token"},
                            f'Bearer realm="{REALM}", error="invalid_token"')
        needed = required_role(request.method, path)
        if not principal.role.allows(needed):
            denied("forbidden")
            logger.info("refused %s %s to %s (%s): needs %s", request.method, path, principal.name,
                        principal.role.value, needed.value)
            return _refusal(
                403,
                "forbidden",
                {"required_role": needed.value, "role": principal.role.value, "principal": principal.name},
                f'Bearer realm="{REALM}", error="insufficient_scope"',
            )
        request[PRINCIPAL] = principal
        return await handler(request)

    return authenticate
