"""The review page's cookie session: signing in with a key, the cookie's flags, CSRF on changes made
with the cookie (and not on requests with a key), signing out, revoked keys and expiry; and the page
itself, served without a key and loading nothing from anywhere else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ApiKeys, Scope, split_key
from app.auth.sessions import COOKIE
from app.db.models import BrowserSessionRecord, utcnow
from app.server.retention import purge_all
from tests.conftest import issue_key
from tests.helpers import assert_problem

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PAGE = Path(__file__).resolve().parents[2] / "app" / "review_page"


def set_cookie(response: httpx.Response) -> str:
    """The session cookie the response sets, with its attributes."""
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    return cookie


async def sign_in(client: Client, key: str) -> dict[str, str]:
    response = await client.post("/review/session", json={"api_key": key})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def session_rows(db: Sessions) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(BrowserSessionRecord)) or 0)


@pytest.mark.parametrize("scope", [Scope.REVIEW, Scope.EXTRACT, Scope.ADMIN])
async def test_a_key_of_each_scope_signs_in(client: Client, db: Sessions, scope: Scope) -> None:
    key = await issue_key(db, scope, name="rita")
    response = await client.post("/review/session", json={"api_key": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key_id"] == split_key(key)[0]  # type: ignore[index]
    assert body["name"] == "rita" and body["scopes"] == [scope.value]
    assert len(body["csrf_token"]) >= 32 and body["expires_at"]
    assert response.headers["cache-control"] == "no-store"
    cookie = set_cookie(response)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "max-age=28800" in flags  # DOCEXTRACT_AUTH_SESSION_HOURS=8
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    token = cookie.split(";")[0].removeprefix(f"{COOKIE}=")
    assert key not in cookie and len(token) >= 32
    # The page reads who it is and its CSRF token with the cookie alone.
    me = await client.get("/review/session")
    assert me.status_code == 200 and me.json()["csrf_token"] == body["csrf_token"]
    assert await session_rows(db) == 1
    # Signing in again replaces the session (and its token).
    again = await sign_in(client, key)
    assert again["csrf_token"] != body["csrf_token"] and await session_rows(db) == 1


async def test_the_cookie_is_secure_over_https(app: Litestar, db: Sessions) -> None:
    async with AsyncTestClient(app, base_url="https://docextract.example") as client:
        key = await issue_key(db, Scope.REVIEW)
        response = await client.post("/review/session", json={"api_key": key})
        assert response.status_code == 200, response.text
        assert "secure" in [part.strip().lower() for part in set_cookie(response).split(";")]


async def test_a_form_signs_in_too(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.REVIEW)
    response = await client.post("/review/session", data={"api_key": key})
    assert response.status_code == 200, response.text
    assert (await client.get("/review/session")).status_code == 200


async def test_bad_sign_ins_are_problems(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.REVIEW)
    revoked = await issue_key(db, Scope.REVIEW, name="old")
    async with db() as session:
        await ApiKeys(session).revoke(split_key(revoked)[0])  # type: ignore[index]
    for wrong in ["dxk_nope_nope", key + "x", revoked, "not a key at all"]:
        assert_problem(await client.post("/review/session", json={"api_key": wrong}), 401, "unauthenticated")
    for body in [{}, {"api_key": ""}, {"api_key": 12}, {"api_key": "x" * 600}, [], "key"]:
        answer = await client.post("/review/session", json=body)
        assert assert_problem(answer, 400, "bad-request")["errors"][0]["pointer"] == "/api_key"
    malformed = await client.post(
        "/review/session", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 400, "bad-request")
    assert_problem(
        await client.post("/review/session", content=b"k", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    assert_problem(
        await client.post(
            "/review/session",
            content=b"\xff=\xfe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        "bad-request",
    )
    cross_site = await client.post(
        "/review/session", json={"api_key": key}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert_problem(cross_site, 403, "csrf-token-invalid")
    assert await session_rows(db) == 0
    assert COOKIE not in client.cookies


async def test_changes_made_with_the_cookie_need_the_csrf_token(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.EXTRACT)
    token = (await sign_in(client, key))["csrf_token"]
    # A change authenticated by the cookie alone: refused, whether the token is missing or wrong.
    missing = assert_problem(await client.post("/webhooks/callback-secret"), 403, "csrf-token-invalid")
    assert "X-CSRF-Token" in missing["detail"]
    wrong = await client.post("/webhooks/callback-secret", headers={"X-CSRF-Token": token[:-1] + "!"})
    assert_problem(wrong, 403, "csrf-token-invalid")
    assert_problem(
        await client.delete("/review/session", headers={"X-CSRF-Token": ""}), 403, "csrf-token-invalid"
    )
    # With the token it goes through; reading needs none.
    made = await client.post("/webhooks/callback-secret", headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    assert (await client.get("/webhooks")).status_code == 200
    # A request with an API key needs no token, with or without the cookie beside it.
    rotated = await client.post("/webhooks/callback-secret", headers={"X-API-Key": key})
    assert rotated.status_code == 200, rotated.text
    client.cookies.clear()
    assert (await client.post("/webhooks/callback-secret", headers={"X-API-Key": key})).status_code == 200
    assert_problem(await client.get("/webhooks"), 401, "unauthenticated")


async def test_the_session_keeps_the_keys_scopes(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.REVIEW)
    token = (await sign_in(client, key))["csrf_token"]
    refused = await client.post("/webhooks/callback-secret", headers={"X-CSRF-Token": token})
    assert_problem(refused, 403, "forbidden")


async def test_signing_out_ends_the_session(client: Client, db: Sessions) -> None:
    token = (await sign_in(client, await issue_key(db, Scope.REVIEW)))["csrf_token"]
    cookie = client.cookies[COOKIE]
    response = await client.delete("/review/session", headers={"X-CSRF-Token": token})
    assert response.status_code == 204, response.text
    flags = [part.strip().lower() for part in set_cookie(response).split(";")]
    assert "max-age=0" in flags
    assert await session_rows(db) == 0
    # The old cookie, sent again, no longer authenticates.
    client.cookies.set(COOKIE, cookie)
    assert_problem(await client.get("/review/session"), 401, "unauthenticated")


async def test_signing_out_by_post(client: Client, db: Sessions) -> None:
    token = (await sign_in(client, await issue_key(db, Scope.REVIEW)))["csrf_token"]
    assert_problem(await client.post("/review/session/delete"), 403, "csrf-token-invalid")
    answer = await client.post("/review/session/delete", headers={"X-CSRF-Token": token})
    assert answer.status_code == 204, answer.text
    assert await session_rows(db) == 0


async def test_revoking_the_key_ends_its_sessions(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.REVIEW)
    await sign_in(client, key)
    assert (await client.get("/review/session")).status_code == 200
    async with db() as session:
        await ApiKeys(session).revoke(split_key(key)[0])  # type: ignore[index]
    assert_problem(await client.get("/review/session"), 401, "unauthenticated")
    assert await session_rows(db) == 0


async def test_an_expired_session_is_refused_and_purged(client: Client, db: Sessions) -> None:
    await sign_in(client, await issue_key(db, Scope.REVIEW))
    past = utcnow() - timedelta(seconds=1)
    async with db() as session:
        await session.execute(update(BrowserSessionRecord).values(expires_at=past))
        await session.commit()
    body = assert_problem(await client.get("/review/session"), 401, "unauthenticated")
    assert "expired" in body["detail"]
    # Sessions nobody comes back to go with the other expired rows.
    await sign_in(client, await issue_key(db, Scope.REVIEW, name="other"))
    async with db() as session:
        await session.execute(update(BrowserSessionRecord).values(expires_at=past))
        await session.commit()
        purged = await purge_all(session)
    assert purged["browser_sessions"] == 1
    assert await session_rows(db) == 0


async def test_unknown_and_oversized_cookies_are_401_not_500(client: Client) -> None:
    for value in ["nope", "x" * 4000, "%00%ff"]:
        client.cookies.set(COOKIE, value)
        assert_problem(await client.get("/extractions"), 401, "unauthenticated")


@pytest.fixture
async def anonymous(app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app) as client:
        yield client


async def test_the_page_and_its_assets_need_no_key(anonymous: Client) -> None:
    page = await anonymous.get("/review")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assets = re.findall(r'(?:src|href)="(/review/static/[^"]+)"', page.text)
    assert len(assets) == 2
    for asset in assets:
        answer = await anonymous.get(asset)
        assert answer.status_code == 200, asset
    assert (await anonymous.get("/review/")).status_code == 200
    assert_problem(await anonymous.get("/review/session"), 401, "unauthenticated")
    assert_problem(await anonymous.get("/review/static/nothing.js"), 404, "not-found")
    # Only the page is public: the API next to it is not.
    assert_problem(await anonymous.get("/extractions"), 401, "unauthenticated")


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, font or analytics: the service runs offline (the CSP enforces it in browsers)."""
    for path in [PAGE / "index.html", *sorted((PAGE / "static").iterdir())]:
        text = path.read_text()
        assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path
        assert not re.search(r"\.(?:inner|outer)HTML\b|insertAdjacentHTML|document\.write|\beval\(", text), (
            path
        )
