"""Results and documents at rest: documents content-addressed (stored once per SHA-256), results as
the JSON the client got, both purged after the retention period."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Principal
from app.db.models import DocumentRecord, ExtractionRecord, JobRecord, utcnow
from app.lib.errors import RequestError
from app.lib.problems import EXTRACTION_NOT_FOUND


async def save_document(session: AsyncSession, data: bytes, media_type: str, retention: timedelta) -> str:
    """Store the bytes once; a repeated upload extends the existing copy's retention."""
    sha = hashlib.sha256(data).hexdigest()
    expires = utcnow() + retention
    existing = await session.get(DocumentRecord, sha)
    if existing is None:
        session.add(
            DocumentRecord(
                sha256=sha, content=data, size=len(data), media_type=media_type, expires_at=expires
            )
        )
    else:
        existing.expires_at = max(existing.expires_at, expires)
    await session.flush()
    return sha


async def save_extraction(
    session: AsyncSession,
    result: dict[str, Any],
    document_sha256: str,
    created_by: str | None,
    retention: timedelta,
    document_name: str | None = None,
) -> None:
    session.add(
        ExtractionRecord(
            id=result["id"],
            schema_name=result["schema"]["name"],
            schema_version=result["schema"]["version"],
            status=result["status"],
            document_sha256=document_sha256,
            document_name=document_name[:255] if document_name else None,
            confidence=result["confidence"],
            review_reasons=reasons_column(result["review"]["reasons"]),
            result=orjson.dumps(result).decode(),
            created_by=created_by,
            expires_at=utcnow() + retention,
        )
    )
    await session.commit()


def reasons_column(reasons: list[str]) -> str:
    """Each reason on its own line behind a newline: ``LIKE '%\n<kind>%'`` finds a kind."""
    return "".join(f"\n{reason}" for reason in reasons)


async def load_extraction(
    session: AsyncSession, extraction_id: str, principal: Principal
) -> ExtractionRecord:
    """The stored record, if ``principal`` may see it (``Principal.sees``, the rule of every object
    a key creates); one answer for "not yours" and "not there", so ids cannot be probed."""
    record = await session.get(ExtractionRecord, extraction_id)
    if record is None or record.expires_at <= utcnow() or not principal.sees(record.created_by):
        raise RequestError(EXTRACTION_NOT_FOUND, f"No extraction has the id {extraction_id!r}.")
    return record


async def get_extraction(session: AsyncSession, extraction_id: str, principal: Principal) -> dict[str, Any]:
    """The stored result (see ``load_extraction``)."""
    result: dict[str, Any] = orjson.loads((await load_extraction(session, extraction_id, principal)).result)
    return result


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> tuple[int, int]:
    """Delete expired results, then documents that no live result or job refers to."""
    now = now or utcnow()
    results = await session.execute(delete(ExtractionRecord).where(ExtractionRecord.expires_at <= now))
    live = select(ExtractionRecord.document_sha256).union(select(JobRecord.document_sha256))
    documents = await session.execute(
        delete(DocumentRecord).where(DocumentRecord.expires_at <= now, DocumentRecord.sha256.not_in(live))
    )
    # A document still used by a live result lives as long as that result.
    await session.execute(
        update(DocumentRecord)
        .where(DocumentRecord.expires_at <= now)
        .values(expires_at=now + timedelta(days=1))
    )
    await session.commit()
    return results.rowcount or 0, documents.rowcount or 0  # type: ignore[attr-defined]
