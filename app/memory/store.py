"""Sender memories in the database (``sender_memories``): one per owner, schema and sender.

``owner`` is ``Principal.memory_owner`` (``team:<name>`` or ``key:<id>``): a memory is found only
by its owner's extractions, never by another key's or team's. The functions flush; the caller
commits (``learn_from_approved`` and the API routes do).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SenderMemoryRecord, utcnow
from app.memory.identity import matches, primary
from app.memory.profile import Profile, merge

MAX_IDENTITIES = 24
"""Identities kept per memory (the newest win): a sender's names and layouts change over years."""


async def find(
    session: AsyncSession, owner: str, schema_name: str, identities: list[str]
) -> SenderMemoryRecord | None:
    """The owner's memory of the sender whose identities fit ``identities`` best, or None."""
    if not identities:
        return None
    query = select(SenderMemoryRecord.id, SenderMemoryRecord.identities).where(
        SenderMemoryRecord.owner == owner, SenderMemoryRecord.schema_name == schema_name
    )
    best: tuple[int, int] | None = None
    for memory_id, remembered in (await session.execute(query)).all():
        fit = matches(list(remembered or []), identities)
        if fit and (best is None or fit > best[0]):
            best = (fit, memory_id)
    return None if best is None else await session.get(SenderMemoryRecord, best[1])


async def remember(
    session: AsyncSession, owner: str, schema_name: str, identities: list[str], profile: Profile
) -> SenderMemoryRecord:
    """Keep what an approved document taught; a second approval of the same sender merges into its
    memory (``profile.merge``) and adds the identities it printed."""
    record = await find(session, owner, schema_name, identities)
    now = utcnow()
    if record is None:
        record = SenderMemoryRecord(
            owner=owner,
            schema_name=schema_name,
            sender=primary(identities)[:200],
            identities=identities[:MAX_IDENTITIES],
            profile=profile,
            documents=1,
            created_at=now,
            updated_at=now,
        )
        session.add(record)
    else:
        combined = list(dict.fromkeys([*identities, *record.identities]))
        record.identities = combined[:MAX_IDENTITIES]
        record.profile = merge(record.profile, profile)
        record.documents += 1
        record.updated_at = now
    await session.flush()
    return record


async def listing(
    session: AsyncSession, owner: str | None, schema_name: str | None = None
) -> list[SenderMemoryRecord]:
    """The owner's memories (every owner's for ``None``: admin keys), most recently taught first."""
    query = select(SenderMemoryRecord)
    if owner is not None:
        query = query.where(SenderMemoryRecord.owner == owner)
    if schema_name is not None:
        query = query.where(SenderMemoryRecord.schema_name == schema_name)
    query = query.order_by(SenderMemoryRecord.updated_at.desc(), SenderMemoryRecord.id.desc())
    return list(await session.scalars(query))


async def forget(session: AsyncSession, owner: str | None, memory_id: int) -> bool:
    """Delete one memory of the owner (of anyone's for ``None``: admin keys); False when there is
    none by that id for them (another owner's is not theirs to see)."""
    record = await session.get(SenderMemoryRecord, memory_id)
    if record is None or (owner is not None and record.owner != owner):
        return False
    await session.delete(record)
    await session.flush()
    return True


def summary(record: SenderMemoryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "sender": record.sender,
        "identities": list(record.identities),
        "schema": record.schema_name,
        "documents": record.documents,
        "fields": sorted((record.profile or {}).get("fields") or {}),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
