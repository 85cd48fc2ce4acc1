"""Fail-closed API-key authentication and scope guards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ANONYMOUS_ADMIN, ApiKeys, Principal, Scope
from app.auth.sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, BrowserSessions, csrf_matches
from app.lib.problems import CSRF_TOKEN_INVALID, FORBIDDEN, UNAUTHENTICATED, Problem

PUBLIC_PATHS = [
    "^/health$",
    "^/ready$",
    "^/metrics$",
    "^/openapi",
    "^/problems",
    "^/review/?$",
    "^/review/static/",
]
"""Paths served without a key: the review page and its assets are public (they hold no data; the
page signs in through ``POST /review/session``, which opts out of the middleware by itself), and so
is ``/metrics`` for Prometheus (counts and timings, no ids or data; keep it internal at the proxy)."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="docextract"'}


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.headers.get("x-api-key") or None


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        if connection.app.state.settings.auth.disabled:
            return AuthenticationResult(user=ANONYMOUS_ADMIN, auth=None)
        key = presented_key(connection)
        sessions: async_sessionmaker[AsyncSession] = connection.app.state.sessions
        if key is None and (token := connection.cookies.get(COOKIE)):
            return await _by_cookie(connection, sessions, token)
        if key is None:
            raise Problem(UNAUTHENTICATED, "No API key was sent.", headers=_CHALLENGE)
        async with sessions() as session:
            principal = await ApiKeys(session).authenticate(key)
        if principal is None:
            raise Problem(UNAUTHENTICATED, "The API key is unknown or revoked.", headers=_CHALLENGE)
        return AuthenticationResult(user=principal, auth=key)


async def _by_cookie(
    connection: ASGIConnection[Any, Any, Any, Any], sessions: async_sessionmaker[AsyncSession], token: str
) -> AuthenticationResult:
    """The review page's session (an API key, when sent, wins over the cookie). A request that
    changes something must also carry the session's CSRF token."""
    async with sessions() as session:
        signed_in = await BrowserSessions(session).find(token)
    if signed_in is None:
        detail = "The review session expired or was signed out; sign in again."
        raise Problem(UNAUTHENTICATED, detail, headers=_CHALLENGE)
    method = connection.scope.get("method", "GET")
    sent = connection.headers.get(CSRF_HEADER)
    if method not in SAFE_METHODS and not csrf_matches(sent, signed_in.csrf_token):
        raise Problem(
            CSRF_TOKEN_INVALID,
            f"{method} with the session cookie needs the session's token in {CSRF_HEADER}.",
        )
    return AuthenticationResult(user=signed_in.principal, auth=signed_in)


@dataclass(frozen=True)
class ScopeGuard:
    """A route guard admitting keys with ``scope`` (``admin`` admits everything). Its ``scope``
    also tells the OpenAPI documentation that the route can answer 403."""

    scope: Scope
    alternatives: tuple[Scope, ...] = ()
    """Other scopes that admit the key as well (``extract`` or ``review`` may read extractions)."""

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # not authenticated (CORS preflights carry no key); it only answers `Allow`
        principal: Principal = connection.user
        accepted = (self.scope, *self.alternatives)
        if not any(principal.allows(scope) for scope in accepted):
            names = " or ".join(repr(scope.value) for scope in accepted)
            raise Problem(
                FORBIDDEN,
                f"The key {principal.key_id!r} lacks the {names} scope.",
                required_scope=self.scope.value,
            )


def requires(scope: Scope, *alternatives: Scope) -> ScopeGuard:
    return ScopeGuard(scope, alternatives)
