"""A recursive schema stored before the registry refused them fails cleanly at extraction: a 422
``schema-recursive`` naming the cycle (sync), a job failed at once without retries (async); never
a RecursionError."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import SchemaRecord, SchemaVersionRecord, utcnow
from app.lib.canonical import canonical_sha256
from tests.documents import invoice_pdf
from tests.helpers import assert_problem
from tests.webhook_receiver import eventually

Client = AsyncTestClient[Litestar]
RECURSIVE: dict[str, Any] = {
    "type": "object",
    "properties": {"number": {"type": "string"}, "parent": {"$ref": "#"}},
}


async def store_unchecked(db: async_sessionmaker[AsyncSession], name: str, schema: dict[str, Any]) -> None:
    """Straight into the tables, as an older release's registry would have stored it."""
    now = utcnow()
    record = SchemaRecord(name=name, latest_version=1, created_at=now, updated_at=now)
    record.versions = [
        SchemaVersionRecord(
            version=1,
            description=None,
            schema_json=orjson.dumps(schema).decode(),
            sha256=canonical_sha256(schema),
            source="api",
            created_by=None,
            created_at=now,
        )
    ]
    async with db() as session:
        session.add(record)
        await session.commit()


async def test_sync_extraction_names_the_cycle(
    client: Client, db: async_sessionmaker[AsyncSession], extract_headers: dict[str, str]
) -> None:
    await store_unchecked(db, "nested", RECURSIVE)
    pdf, _ = invoice_pdf()
    problem = assert_problem(
        await client.post("/extract/nested", content=pdf, headers=extract_headers), 422, "schema-recursive"
    )
    assert problem["errors"] == [
        {"pointer": "/schema/properties/parent/$ref", "detail": "closes a reference cycle"}
    ]


async def test_an_async_job_fails_once_without_retrying(
    client: Client, db: async_sessionmaker[AsyncSession], extract_headers: dict[str, str]
) -> None:
    await store_unchecked(db, "nested", RECURSIVE)
    pdf, _ = invoice_pdf()
    job = (await client.post("/extract/nested?async=true", content=pdf, headers=extract_headers)).json()

    async def failed() -> Any:
        body = (await client.get(f"/jobs/{job['id']}", headers=extract_headers)).json()
        return body if body["status"] == "failed" else None

    await eventually(failed, within_s=60)
    body = await failed()
    assert body["attempts"] == 1
    assert body["error"]["type"] == "/problems/schema-recursive"
    assert (body["error"]["retryable"], body["error"]["phase"]) == (False, "schema")
