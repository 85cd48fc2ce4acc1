"""API keys: fail closed, scopes, revocation, management over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Scope
from app.db.models import ApiKeyRecord
from app.lib.settings import AuthSettings, Settings
from app.server.core import create_app
from tests.conftest import issue_key, make_settings
from tests.helpers import assert_problem, object_schema, stored_state

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
CREATE = {"name": "guarded", "schema": object_schema()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer dxk_000000000000_wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": "dxk__"},
    ],
)
async def test_requests_without_a_valid_key_get_401(
    client: Client, db: Sessions, headers: dict[str, str]
) -> None:
    before = await stored_state(db)
    for method, path, kwargs in [
        ("get", "/schemas", {}),
        ("get", "/schemas/invoice", {}),
        ("post", "/schemas", {"json": CREATE}),
        ("get", "/keys", {}),
        ("delete", "/schemas/invoice", {}),
    ]:
        response = await getattr(client, method)(path, headers=headers, **kwargs)
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await stored_state(db) == before


async def test_a_key_with_a_wrong_secret_is_refused(client: Client, db: Sessions) -> None:
    key = await issue_key(db, Scope.ADMIN)
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_problem(await client.get("/schemas", headers={"X-API-Key": tampered}), 401, "unauthenticated")
    assert (await client.get("/schemas", headers={"X-API-Key": key})).status_code == 200


async def test_scopes(
    client: Client, db: Sessions, extract_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    before = await stored_state(db)
    assert (await client.get("/schemas", headers=extract_headers)).status_code == 200
    assert (await client.get("/schemas/invoice", headers=extract_headers)).status_code == 200
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("post", "/schemas", {"json": CREATE}),
        ("post", "/schemas/invoice/versions", {"json": {"schema": object_schema()}}),
        ("delete", "/schemas/invoice", {}),
        ("post", "/schemas/invoice/restore", {}),
        ("get", "/keys", {}),
        ("post", "/keys", {"json": {"name": "x", "scopes": ["admin"]}}),
    ]
    for method, path, kwargs in attempts:
        response = await getattr(client, method)(path, headers=extract_headers, **kwargs)
        body = assert_problem(response, 403, "forbidden")
        assert body["required_scope"] == "admin"
    assert await stored_state(db) == before
    assert (await client.post("/schemas", json=CREATE, headers=admin_headers)).status_code == 201


async def test_revoked_keys_stop_working_at_once(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    issued = await client.post("/keys", json={"name": "erp", "scopes": ["extract"]}, headers=admin_headers)
    assert issued.status_code == 201, issued.text
    key, key_id = issued.json()["key"], issued.json()["api_key"]["id"]
    assert key.startswith(f"dxk_{key_id}_")
    assert (await client.get("/schemas", headers={"X-API-Key": key})).status_code == 200

    listed = (await client.get("/keys", headers=admin_headers)).json()["items"]
    assert {k["id"] for k in listed} >= {key_id}
    assert all("key" not in k and "secret" not in str(k) for k in listed)
    last_used = next(k for k in listed if k["id"] == key_id)["last_used_at"]
    assert last_used is not None

    revoked = await client.delete(f"/keys/{key_id}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(await client.get("/schemas", headers={"X-API-Key": key}), 401, "unauthenticated")
    assert key_id not in {k["id"] for k in (await client.get("/keys", headers=admin_headers)).json()["items"]}
    assert key_id in {
        k["id"]
        for k in (await client.get("/keys?include_revoked=true", headers=admin_headers)).json()["items"]
    }
    assert (await client.delete(f"/keys/{key_id}", headers=admin_headers)).status_code == 200  # idempotent
    assert_problem(await client.delete("/keys/nope", headers=admin_headers), 404, "api-key-not-found")


async def test_keys_are_stored_hashed(client: Client, db: Sessions, admin_headers: dict[str, str]) -> None:
    key = (
        await client.post("/keys", json={"name": "erp", "scopes": ["extract"]}, headers=admin_headers)
    ).json()["key"]
    secret = key.split("_", 2)[2]
    async with db() as session:
        rows = list(await session.scalars(select(ApiKeyRecord)))
    assert rows and all(secret not in (r.secret_sha256 + r.id + r.name) for r in rows)


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"name": "x", "scopes": ["root"]}, 422, "invalid-request"),
        ({"name": "x", "scopes": []}, 422, "invalid-request"),
        ({"name": "", "scopes": ["extract"]}, 422, "invalid-request"),
        ({"name": "x"}, 400, "bad-request"),
    ],
)
async def test_bad_key_requests(
    client: Client,
    db: Sessions,
    admin_headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    slug: str,
) -> None:
    before = await stored_state(db)
    assert_problem(await client.post("/keys", json=body, headers=admin_headers), status, slug)
    assert await stored_state(db) == before


async def test_public_routes_need_no_key(client: Client) -> None:
    for path in ["/health", "/ready", "/openapi/openapi.json", "/problems", "/problems/forbidden"]:
        assert (await client.get(path)).status_code == 200, path


async def test_first_start_prints_one_admin_key_once(
    settings: Settings, db: Sessions, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        printed = capsys.readouterr().out
        key = next(word for word in printed.split() if word.startswith("dxk_"))
        assert (
            await client.post(
                "/keys",
                json={"name": "x", "scopes": ["extract"]},
                headers={"Authorization": f"Bearer {key}"},
            )
        ).status_code == 201
        revoked_id = key.split("_")[1]
        await client.delete(f"/keys/{revoked_id}", headers={"Authorization": f"Bearer {key}"})
    # Second start, even with every admin key revoked: no new key appears.
    async with AsyncTestClient(create_app(settings)):
        assert "dxk_" not in capsys.readouterr().out
    async with db() as session:
        admins = [r for r in await session.scalars(select(ApiKeyRecord)) if "admin" in r.scopes]
    assert len(admins) == 1


async def test_auth_can_be_disabled_only_explicitly_and_loudly(
    tmp_path: Any, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url, auth=AuthSettings(disabled=True))
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.post("/schemas", json=CREATE)).status_code == 201
    captured = capsys.readouterr()
    assert "auth_disabled" in captured.err
    assert "dxk_" not in captured.out  # no bootstrap key when auth is off
