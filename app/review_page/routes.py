"""The review page's routes: the page, its assets, and the cookie session it signs in with.

They are the page's own plumbing, not part of the JSON API, so they stay out of the OpenAPI spec.
The page and its assets hold no data and are public; signing in checks the API key itself; the
session routes behind the authentication middleware need the cookie (or a key), and signing out
with the cookie needs the CSRF token like every other change."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Principal
from app.auth.sessions import COOKIE, BrowserSessions, SignedIn
from app.jobs.services import Services
from app.lib.problems import (
    BAD_REQUEST,
    CSRF_TOKEN_INVALID,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    Problem,
)

HERE = Path(__file__).parent
STATIC = HERE / "static"
MAX_KEY_LENGTH = 512
PAGE_HEADERS = {
    # Everything the page loads or calls is this server's own: no CDN, no third party, no inline code.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
NO_STORE = {"Cache-Control": "no-store"}


class SessionOut(msgspec.Struct):
    """Who the page is signed in as, and the token its changing requests must send."""

    key_id: str
    name: str
    scopes: list[str]
    team: str | None
    csrf_token: str | None
    """``null`` when the caller sent an API key instead of the cookie (it needs no token)."""
    expires_at: datetime | None


def session_out(principal: Principal, signed_in: SignedIn | None) -> SessionOut:
    return SessionOut(
        key_id=principal.key_id,
        name=principal.name,
        scopes=sorted(principal.scopes),
        team=principal.team,
        csrf_token=signed_in.csrf_token if signed_in else None,
        expires_at=signed_in.expires_at if signed_in else None,
    )


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page, its asset links versioned by their content (so a new release is never served
    from a stale browser cache)."""
    digest = hashlib.sha256()
    for name in ("review.js", "review.css"):
        digest.update((STATIC / name).read_bytes())
    return (HERE / "index.html").read_text().replace("__ASSETS__", digest.hexdigest()[:12])


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's request carries it), Secure
    when the page was served over https."""
    return Cookie(
        key=COOKIE,
        value=value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def presented_key(request: Request[Any, Any, Any]) -> str:
    """The ``api_key`` of a JSON or URL-encoded form body; 400/415 problems for anything else."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    value: Any
    if media_type == "application/x-www-form-urlencoded":
        try:
            values = parse_qs(body.decode(), max_num_fields=16)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Problem(BAD_REQUEST, "The form is not valid URL-encoded UTF-8.") from exc
        value = values.get("api_key", [None])[0]
    elif media_type == "application/json" or media_type.endswith("+json"):
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise Problem(
                BAD_REQUEST,
                f"The request body is not valid JSON: {exc}",
                errors=[{"pointer": "", "detail": str(exc)}],
            ) from exc
        value = document.get("api_key") if isinstance(document, dict) else None
    else:
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            f"Sign in with application/json or a URL-encoded form, not {media_type or 'no body'!r}.",
        )
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY_LENGTH:
        raise Problem(
            BAD_REQUEST,
            "Send the API key as `api_key` (a non-empty string).",
            errors=[{"pointer": "/api_key", "detail": "a non-empty string of at most 512 characters"}],
        )
    return value.strip()


@post("/session", opt={"exclude_from_auth": True}, status_code=200)
async def sign_in(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[SessionOut]:
    """Exchange an API key (scope review, extract or admin) for a session cookie. Outside the
    authentication middleware: this is where the key is checked."""
    # A page of another site may not sign the browser in (login CSRF); browsers say where a request
    # comes from in Sec-Fetch-Site.
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        raise Problem(CSRF_TOKEN_INVALID, "Sign in from the review page of this server.")
    key = await presented_key(request)
    lifetime = timedelta(hours=services.settings.auth.session_hours)
    async with services.sessions() as session:
        sessions = BrowserSessions(session)
        created = await sessions.sign_in(key, lifetime)
        if created is not None and (previous := request.cookies.get(COOKIE)):
            await sessions.sign_out(previous)  # signing in again replaces the session
    if created is None:
        raise Problem(UNAUTHENTICATED, "The API key is unknown, revoked, or may not review.")
    cookie = session_cookie(request, created.token, int(lifetime.total_seconds()))
    return Response(
        session_out(created.signed_in.principal, created.signed_in), cookies=[cookie], headers=NO_STORE
    )


@get("/session", sync_to_thread=False)
def current_session(request: Request[Principal, Any, Any]) -> Response[SessionOut]:
    """Who is signed in, with the CSRF token the page sends on changes (the cookie's holder only:
    another site cannot read this answer)."""
    signed_in = request.auth if isinstance(request.auth, SignedIn) else None
    return Response(session_out(request.user, signed_in), headers=NO_STORE)


async def _sign_out(request: Request[Any, Any, Any], db_session: AsyncSession) -> Response[None]:
    if token := request.cookies.get(COOKIE):
        await BrowserSessions(db_session).sign_out(token)
    return Response(None, status_code=204, cookies=[session_cookie(request, "", 0)], headers=NO_STORE)


@delete("/session", status_code=204)
async def sign_out(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[None]:
    """Delete the session and its cookie."""
    return await _sign_out(request, db_session)


@post("/session/delete", status_code=204)
async def sign_out_by_form(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[None]:
    """The same as ``DELETE /review/session``, for clients that can only POST."""
    return await _sign_out(request, db_session)


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def review_page() -> Response[str]:
    """The single page (public: it holds no data until the reviewer signs in)."""
    return Response(page_html(), media_type=MediaType.HTML, headers=PAGE_HEADERS)


def review_router() -> Router:
    """``/review``, ``/review/static/...`` and ``/review/session``."""
    static = create_static_files_router(
        path="/static", directories=[STATIC], name="review-static", include_in_schema=False
    )
    return Router(
        path="/review",
        route_handlers=[review_page, sign_in, current_session, sign_out, sign_out_by_form, static],
        include_in_schema=False,
    )
