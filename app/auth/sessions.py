"""Browser sessions of the review page.

A reviewer signs in once with an API key; the page then authenticates with an HttpOnly cookie, so
the key never sits in JavaScript where an injected script could read it. The cookie carries a random
token and only its SHA-256 is stored (like API keys). Each session also has a CSRF token that every
request changing something must echo in ``X-CSRF-Token``: SameSite=Strict already keeps other sites'
requests from carrying the cookie, and the token is the second lock. A session lives for
``DOCEXTRACT_AUTH_SESSION_HOURS``, ends when the reviewer signs out, and ends as soon as its API key
is revoked (checked on every request).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import ApiKeys, Principal, Scope, secret_hash
from app.db.models import ApiKeyRecord, BrowserSessionRecord, utcnow

COOKIE = "docextract_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: they need no CSRF token."""
SIGN_IN_SCOPES = (Scope.REVIEW, Scope.EXTRACT, Scope.ADMIN)
"""Keys with one of these scopes may sign in to the review page."""
MAX_TOKEN_LENGTH = 128
"""Longer cookie values are refused unhashed (ours are 43 characters)."""


@dataclass(frozen=True)
class SignedIn:
    """A valid session: who it speaks for and the CSRF token its page must send."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    token: str
    """The cookie value: given to the browser once, never stored."""
    signed_in: SignedIn


def csrf_matches(sent: str | None, expected: str) -> bool:
    """Constant-time comparison, so the token cannot be guessed a character at a time."""
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


class BrowserSessions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sign_in(self, key: str, lifetime: timedelta) -> NewSession | None:
        """A new session for a valid, unrevoked key that may review; ``None`` otherwise (the caller
        answers 401 without saying which of the two it was)."""
        principal = await ApiKeys(self.session).authenticate(key)
        if principal is None or not any(principal.allows(scope) for scope in SIGN_IN_SCOPES):
            return None
        token = secrets.token_urlsafe(32)
        now = utcnow()
        record = BrowserSessionRecord(
            token_sha256=secret_hash(token),
            key_id=principal.key_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + lifetime,
        )
        self.session.add(record)
        await self.session.commit()
        return NewSession(token, SignedIn(principal, record.csrf_token, record.expires_at))

    async def find(self, token: str) -> SignedIn | None:
        """The session of a cookie value; ``None`` when unknown, expired or its key was revoked (an
        expired or orphaned row is deleted on the way)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        record = await self.session.get(BrowserSessionRecord, secret_hash(token))
        if record is None:
            return None
        key = await self.session.get(ApiKeyRecord, record.key_id)
        if record.expires_at <= utcnow() or key is None or key.revoked_at is not None:
            await self.session.delete(record)
            await self.session.commit()
            return None
        principal = await ApiKeys(self.session).principal(key)
        return SignedIn(principal, record.csrf_token, record.expires_at)

    async def sign_out(self, token: str) -> None:
        """Deletes the session (nothing happens for an unknown token)."""
        if token and len(token) <= MAX_TOKEN_LENGTH:
            await self.session.execute(
                delete(BrowserSessionRecord).where(BrowserSessionRecord.token_sha256 == secret_hash(token))
            )
            await self.session.commit()


async def purge_sessions(session: AsyncSession, now: datetime) -> int:
    """Deletes expired sessions; returns how many. The caller commits."""
    purged = await session.execute(delete(BrowserSessionRecord).where(BrowserSessionRecord.expires_at <= now))
    return int(purged.rowcount or 0)  # type: ignore[attr-defined]
