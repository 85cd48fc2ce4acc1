"""Results and documents at rest: content-addressed documents and purge after retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ANONYMOUS_ADMIN
from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.db.models import DocumentRecord, utcnow
from app.extraction.store import get_extraction, purge_expired, save_document, save_extraction
from app.lib.errors import DocextractError
from app.lib.settings import Settings


def result(extraction_id: str) -> dict[str, Any]:
    return {
        "id": extraction_id,
        "status": "succeeded",
        "schema": {"name": "invoice", "version": 1},
        "data": {},
        "confidence": None,
        "review": {"required": False, "reasons": []},
    }


async def test_documents_are_stored_once_and_purged_with_their_results(settings: Settings) -> None:
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            first = await save_document(session, b"%PDF-1 same bytes", "pdf", timedelta(days=1))
            again = await save_document(session, b"%PDF-1 same bytes", "pdf", timedelta(days=30))
            assert first == again
            await save_extraction(session, result("ext_old"), first, None, timedelta(days=1))
            other = await save_document(session, b"%PDF-1 other", "pdf", timedelta(days=1))
            await save_extraction(session, result("ext_new"), other, "key1", timedelta(days=30))
        async with sessions() as session:
            assert len(list(await session.scalars(select(DocumentRecord)))) == 2
            assert (await get_extraction(session, "ext_old", ANONYMOUS_ADMIN))["id"] == "ext_old"
            results, documents = await purge_expired(session, utcnow() + timedelta(days=2))
        assert (results, documents) == (1, 0)  # "same bytes" is kept 30 days by the second upload
        async with sessions() as session:
            with pytest.raises(DocextractError):
                await get_extraction(session, "ext_old", ANONYMOUS_ADMIN)
            results, documents = await purge_expired(session, utcnow() + timedelta(days=31))
        assert (results, documents) == (1, 2)
        async with sessions() as session:
            assert list(await session.scalars(select(DocumentRecord))) == []
    finally:
        await engine.dispose()


async def test_a_document_outlives_its_retention_while_a_result_uses_it(settings: Settings) -> None:
    engine = create_engine(settings)
    await upgrade(engine)
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            sha = await save_document(session, b"%PDF-1 x", "pdf", timedelta(days=1))
            await save_extraction(session, result("ext_1"), sha, None, timedelta(days=10))
            assert await purge_expired(session, utcnow() + timedelta(days=5)) == (0, 0)
        async with sessions() as session:
            assert await session.get(DocumentRecord, sha) is not None
    finally:
        await engine.dispose()
