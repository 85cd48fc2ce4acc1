"""Shared fixtures: settings built explicitly (never from a mutated environment), a fresh database
per test on SQLite and on PostgreSQL, an app started through its real lifespan, and API keys."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis
import redis.asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.keys import ApiKeys, Scope
from app.lib.settings import (
    AppSettings,
    AuthSettings,
    DatabaseSettings,
    RegistrySettings,
    Settings,
    load_settings,
)
from app.server.core import create_app

PG_ENV = "DOCEXTRACT_TEST_DATABASE_URL"
REDIS_ENV = "DOCEXTRACT_TEST_REDIS_URL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
"""Where PostgreSQL and Redis usually run (and where ``.ci/run`` starts them): used when the
variables are unset, so a machine that runs both needs no setup."""
CONNECT_TIMEOUT_S = 2.0
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_DOWN: dict[str, str] = {}
"""Why a server failed to answer, by URL: the tests after the first skip at once instead of waiting."""


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where the PostgreSQL tests must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: PostgreSQL and Redis tests may not be skipped)")
    pytest.skip(reason)


def server_url(env: str, default: str) -> str:
    return os.environ.get(env) or default


def unreachable_reason(service: str, url: str, env: str, exc: BaseException) -> str:
    """Why the tests cannot use ``service``: the real cause (refused, silent, refused the login, ...)
    and what to set, e.g. "PostgreSQL at 127.0.0.1:5432 refused the connection; set ..."."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or {'PostgreSQL': 5432, 'Redis': 6379}.get(service)}"
    cause = exc.__context__ if isinstance(exc, redis.ConnectionError) and exc.__context__ else exc
    if isinstance(cause, ConnectionRefusedError):
        what = "refused the connection"
    elif isinstance(cause, (TimeoutError, redis.TimeoutError)):
        what = f"did not answer within {CONNECT_TIMEOUT_S:g} s"
    else:
        what = f"could not be used ({type(exc).__name__}: {exc})"
    hint = f"set {env}" if not os.environ.get(env) else f"check {env}"
    return f"{service} at {where} {what}; {hint}"


async def _pg_admin(url: str) -> asyncpg.Connection:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    if url in _DOWN:
        _unavailable(_DOWN[url])
    try:
        return await asyncpg.connect(plain, timeout=CONNECT_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError) as exc:  # TimeoutError is an OSError
        _DOWN[url] = unreachable_reason("PostgreSQL", plain, PG_ENV, exc)
        _unavailable(_DOWN[url])
        raise


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new, empty database: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        return
    base = server_url(PG_ENV, PG_DEFAULT)
    name = f"docextract_test_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield (
            make_url(base)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new, empty database for one test."""
    async with fresh_database(request.param, tmp_path) as url:
        yield url


async def redis_available() -> str:
    """The test Redis URL, after checking it answers (skip, or fail in CI, when it does not)."""
    url = server_url(REDIS_ENV, REDIS_DEFAULT)
    if url in _DOWN:
        _unavailable(_DOWN[url])
    client = redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        await client.ping()  # type: ignore[misc]  # redis-py types ping as sync-or-async
    except (OSError, redis.RedisError) as exc:
        _DOWN[url] = unreachable_reason("Redis", url, REDIS_ENV, exc)
        _unavailable(_DOWN[url])
    finally:
        await client.aclose()
    return url


def make_settings(data_dir: Path, database_url: str | None, **groups: Any) -> Settings:
    return load_settings(
        app=groups.pop("app", AppSettings(data_dir=data_dir, log_level="WARNING")),
        database=groups.pop("database", DatabaseSettings(url=database_url)),
        auth=groups.pop("auth", AuthSettings()),
        registry=groups.pop("registry", RegistrySettings()),
        **groups,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions for the test itself. The test client runs the app in its own event loop and
    thread, so the test must not borrow the app's pooled connections: it gets its own."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def issue_key(db: async_sessionmaker[AsyncSession], *scopes: Scope, name: str = "test") -> str:
    async with db() as session:
        return (await ApiKeys(session).create(name, list(scopes))).key


@pytest.fixture
async def admin_headers(
    db: async_sessionmaker[AsyncSession], client: AsyncTestClient[Litestar]
) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_key(db, Scope.ADMIN, name='admin')}"}


@pytest.fixture
async def extract_headers(
    db: async_sessionmaker[AsyncSession], client: AsyncTestClient[Litestar]
) -> dict[str, str]:
    return {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="extract")}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every DOCEXTRACT_* variable, for tests of reading settings from the environment."""
    for name in list(os.environ):
        if name.startswith("DOCEXTRACT_"):
            monkeypatch.delenv(name)
    return monkeypatch
