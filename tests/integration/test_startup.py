"""Start-up: migrations checked (and refused from the future), built-ins loaded without ever
overwriting a user's versions, readiness."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import create_engine, create_session_maker
from app.db.migrate import DatabaseBehind, DatabaseNewerThanCode, ensure_current, migration_state
from app.jobs.runners import InProcessRunner
from app.jobs.services import DELIVERER, Services
from app.lib.settings import AppSettings, DatabaseSettings, RegistrySettings, Settings
from app.registry.builtins import default_builtin_dir
from app.server.core import create_app
from app.server.startup import PREPARED_ENV, prepare
from tests.conftest import make_settings
from tests.helpers import assert_problem, object_schema

Sessions = async_sessionmaker[AsyncSession]


def _startup_fails(exc: type[Exception], match: str) -> pytest.RaisesGroup[Exception]:
    """The test client reports a failed lifespan inside (possibly nested) exception groups."""
    return pytest.RaisesGroup(pytest.RaisesExc(exc, match=match), flatten_subgroups=True)


async def _set_revision(db: Sessions, revision: str) -> None:
    async with db() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        await session.commit()


async def test_fresh_database_is_migrated_and_ready(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "migrations": "current",
            "engine": "ok",  # the default `auto` falls back to the layout engine: always there
            "runner": "ok",
            "webhook_delivery": "ok",
        },
    }
    engine = create_engine(settings)
    try:
        assert (await migration_state(engine)).is_current
    finally:
        await engine.dispose()


async def test_not_ready_when_jobs_or_webhooks_stopped(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner or webhook deliverer that died would leave jobs queued and webhooks unsent for good:
    the service is not ready, and says which. (The app runs in the client's event loop: stand-ins
    are swapped in rather than the app's tasks stopped from this one.)"""
    services: Services = client.app.state.services
    died = asyncio.get_running_loop().create_future()
    died.set_exception(OSError("boom"))
    monkeypatch.setitem(services.background, DELIVERER, died)
    body = assert_problem(await client.get("/ready"), 503, "not-ready")
    assert body["checks"]["webhook_delivery"] == "stopped: OSError('boom')"
    assert body["checks"]["runner"] == "ok"

    never_started = InProcessRunner(services.executor, services.sessions, services.settings.jobs)
    monkeypatch.setattr(services, "runner", never_started)
    body = assert_problem(await client.get("/ready"), 503, "not-ready")
    assert body["checks"]["runner"] == "unavailable: its tasks are not running"


async def test_refuses_a_database_newer_than_the_code(settings: Settings, db: Sessions) -> None:
    async with AsyncTestClient(create_app(settings)):
        pass
    await _set_revision(db, "9999_from_the_future")
    with _startup_fails(DatabaseNewerThanCode, "newer release"):
        async with AsyncTestClient(create_app(settings)):
            pass
    engine = create_engine(settings)
    try:
        with pytest.raises(DatabaseNewerThanCode):
            await ensure_current(engine, auto_migrate=True)  # and never "upgrades" it
    finally:
        await engine.dispose()


async def test_readiness_fails_when_the_database_moves_ahead(
    client: AsyncTestClient[Litestar], db: Sessions
) -> None:
    await _set_revision(db, "9999_from_the_future")
    body = assert_problem(await client.get("/ready"), 503, "not-ready")
    assert body["checks"]["database"] == "ok"
    assert "newer release" in body["checks"]["migrations"]
    assert (await client.get("/health")).status_code == 200  # liveness is not readiness


async def test_without_auto_migrate_a_database_behind_is_refused(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, database=DatabaseSettings(url=database_url, auto_migrate=False)
    )
    with _startup_fails(DatabaseBehind, "docextract db upgrade"):
        async with AsyncTestClient(create_app(settings)):
            pass


async def test_builtins_are_refreshed_only_while_untouched(
    tmp_path: Path, database_url: str, db: Sessions
) -> None:
    shipped = tmp_path / "builtins"
    shutil.copytree(default_builtin_dir(), shipped)
    settings = make_settings(tmp_path, database_url, registry=RegistrySettings(builtin_dir=shipped))
    async with AsyncTestClient(create_app(settings)):
        pass
    async with AsyncTestClient(create_app(settings)) as client:
        key = await _admin_key(db)
        headers = {"Authorization": f"Bearer {key}"}
        user_version = object_schema(my_field={"type": "string"})
        added = await client.post("/schemas/invoice/versions", json={"schema": user_version}, headers=headers)
        assert added.status_code == 201 and added.json()["version"] == 2
        await client.delete("/schemas/form", headers=headers)

    # A new release ships changed invoice, receipt and form schemas.
    for name in ["invoice", "receipt", "form"]:
        path = shipped / f"{name}.json"
        schema = json.loads(path.read_text())
        schema["properties"]["release_note"] = {
            "type": "string",
            "description": "New in this release.",
        }
        path.write_text(json.dumps(schema))

    async with AsyncTestClient(create_app(settings)) as client:
        invoice = (await client.get("/schemas/invoice", headers=headers)).json()
        assert (invoice["version"], invoice["schema"]) == (
            2,
            user_version,
        )  # the user's version stays latest
        receipt = (await client.get("/schemas/receipt", headers=headers)).json()
        assert receipt["version"] == 2 and "release_note" in receipt["schema"]["properties"]
        form = (await client.get("/schemas/form", headers=headers)).json()
        assert form["version"] == 1 and form["deprecated"] is True  # deprecation is respected
        po = (await client.get("/schemas/purchase_order", headers=headers)).json()
        assert po["version"] == 1  # unchanged file, no new version


async def _admin_key(db: Sessions) -> str:
    from app.auth.keys import ApiKeys, Scope

    async with db() as session:
        return (await ApiKeys(session).create("t", [Scope.ADMIN])).key


async def test_problem_types_are_documented(client: AsyncTestClient[Litestar]) -> None:
    listed = (await client.get("/problems")).json()
    slugs = {p["type"] for p in listed}
    assert {
        "/problems/invalid-schema",
        "/problems/unauthenticated",
        "/problems/schema-remote-ref",
    } <= slugs
    one = (await client.get("/problems/schema-too-large")).json()
    assert one["status"] == 413 and one["description"]
    assert_problem(await client.get("/problems/no-such-thing"), 404, "not-found")


async def test_openapi_documents_routes_examples_and_security(
    client: AsyncTestClient[Litestar],
) -> None:
    spec = (await client.get("/openapi/openapi.json")).json()
    assert spec["info"]["title"] == "docextract"
    paths = spec["paths"]
    for path in [
        "/schemas",
        "/schemas/{ref}",
        "/schemas/{name}/versions",
        "/schemas/{name}/versions/{version}",
        "/keys",
        "/health",
        "/ready",
        "/jobs/{job_id}",
        "/jobs/{job_id}/result",
        "/batches",
        "/batches/{batch_id}",
        "/webhooks",
        "/webhooks/{endpoint_id}/deliveries",
    ]:
        assert path in paths, path
    extract = paths["/extract/{schema}"]["post"]
    assert {"async", "callback_url"} <= {p["name"] for p in extract["parameters"]}
    assert {"202", "422", "429"} <= set(extract["responses"])
    create = paths["/schemas"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["schema"]["examples"]
    assert any(e["name"] == "my_invoice" for e in examples)
    assert "422" in create["responses"] and "413" in create["responses"]
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert paths["/health"]["get"].get("security") == [{}]


def _facts(err: str) -> list[str]:
    """The events of the JSON log lines on stderr."""
    return [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]


async def test_first_start_frames_the_key_and_says_each_fact_once(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        tmp_path, database_url, app=AppSettings(data_dir=tmp_path, log_level="INFO", log_format="json")
    )
    async with AsyncTestClient(create_app(settings)):
        pass
    out, err = capsys.readouterr()
    lines = out.strip("\n").splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"═"}  # framed, on stdout
    assert sum("dxk_" in line for line in lines) == 1 and "shown only now" in out
    assert "dxk_" not in err  # the secret never goes to the logs
    facts = _facts(err)
    for fact in ["database_ready", "builtin_schemas", "bootstrap_admin_key_issued"]:
        assert facts.count(fact) == 1, facts

    async with AsyncTestClient(create_app(settings)):  # a later start: no key, the facts once more
        pass
    out, err = capsys.readouterr()
    assert out == "" and _facts(err).count("database_ready") == 1


async def test_serve_prepares_once_for_all_its_workers(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``docextract serve`` prepares in its own process, then starts N workers (here two apps):
    theirs only check the database, so nothing is said twice."""
    settings = make_settings(
        tmp_path, database_url, app=AppSettings(data_dir=tmp_path, log_level="INFO", log_format="json")
    )
    create_app(settings)  # configures logging as serve's process does
    engine = create_engine(settings)
    try:
        await prepare(settings, engine, create_session_maker(engine))
    finally:
        await engine.dispose()
    monkeypatch.setenv(PREPARED_ENV, "1")
    for _ in range(2):
        async with AsyncTestClient(create_app(settings)) as client:
            assert (await client.get("/ready")).status_code == 200
    out, err = capsys.readouterr()
    assert out.count("dxk_") == 1 and out.count("shown only now") == 1
    facts = _facts(err)
    for fact in ["database_ready", "builtin_schemas", "bootstrap_admin_key_issued"]:
        assert facts.count(fact) == 1, facts
