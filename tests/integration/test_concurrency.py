"""Concurrent writers never share a version number, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.db.models import SchemaVersionRecord
from app.lib.settings import Settings
from app.registry.service import SchemaRegistry
from app.registry.validation import SchemaLimits
from tests.helpers import object_schema

WRITERS = 8


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The production engine (pool, SQLite pragmas and busy timeout), migrated, with schema "shared"."""
    engine = create_engine(settings)
    await upgrade(engine)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        await SchemaRegistry(session, SchemaLimits()).create("shared", object_schema(), None, source="api")
    yield maker
    await engine.dispose()


async def _add(sessions: async_sessionmaker[AsyncSession], schema: dict[str, object]) -> tuple[int, bool]:
    async with sessions() as session:
        version, created = await SchemaRegistry(session, SchemaLimits()).add_version(
            "shared", schema, None, source="api"
        )
        return version.version, created


async def test_simultaneous_new_versions_get_distinct_numbers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    schemas = [object_schema(**{f"field_{i}": {"type": "string"}}) for i in range(WRITERS)]
    results = await asyncio.gather(*(_add(sessions, s) for s in schemas))
    numbers = sorted(number for number, created in results if created)
    assert numbers == list(range(2, WRITERS + 2))
    async with sessions() as session:
        stored = list(
            await session.scalars(select(SchemaVersionRecord).order_by(SchemaVersionRecord.version))
        )
    assert [v.version for v in stored] == list(range(1, WRITERS + 2))
    assert len({v.sha256 for v in stored}) == WRITERS + 1


async def test_simultaneous_identical_submissions_add_one_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    same = object_schema(due={"type": "string", "format": "date"})
    results = await asyncio.gather(*(_add(sessions, same) for _ in range(WRITERS)))
    assert {number for number, _ in results} == {2}
    assert sum(created for _, created in results) == 1
