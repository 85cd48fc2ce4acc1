"""Fail-closed API-key authentication and scope guards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ANONYMOUS_ADMIN, ApiKeys, Principal, Scope
from app.lib.problems import FORBIDDEN, UNAUTHENTICATED, Problem

PUBLIC_PATHS = ["^/health$", "^/ready$", "^/openapi", "^/problems"]
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
        if key is None:
            raise Problem(UNAUTHENTICATED, "No API key was sent.", headers=_CHALLENGE)
        sessions: async_sessionmaker[AsyncSession] = connection.app.state.sessions
        async with sessions() as session:
            principal = await ApiKeys(session).authenticate(key)
        if principal is None:
            raise Problem(UNAUTHENTICATED, "The API key is unknown or revoked.", headers=_CHALLENGE)
        return AuthenticationResult(user=principal, auth=key)


@dataclass(frozen=True)
class ScopeGuard:
    """A route guard admitting keys with ``scope`` (``admin`` admits everything). Its ``scope``
    also tells the OpenAPI documentation that the route can answer 403."""

    scope: Scope

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # not authenticated (CORS preflights carry no key); it only answers `Allow`
        principal: Principal = connection.user
        if not principal.allows(self.scope):
            raise Problem(
                FORBIDDEN,
                f"The key {principal.key_id!r} lacks the {self.scope.value!r} scope.",
                required_scope=self.scope.value,
            )


def requires(scope: Scope) -> ScopeGuard:
    return ScopeGuard(scope)
