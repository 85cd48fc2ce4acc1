"""Everything kept for the retention period, purged together: jobs and batches first, so the
documents they referred to can go with the results; expired review page sessions too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.idempotency import purge_idempotency_keys
from app.auth.sessions import purge_sessions
from app.db.models import BatchRecord, JobRecord, utcnow
from app.extraction.store import purge_expired
from app.webhooks.delivery import purge_deliveries


async def purge_all(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Delete what expired; returns how many of each. Idempotent; commits."""
    now = now or utcnow()
    jobs = await session.execute(delete(JobRecord).where(JobRecord.expires_at <= now))
    batches = await session.execute(delete(BatchRecord).where(BatchRecord.expires_at <= now))
    counts = {
        "jobs": int(jobs.rowcount or 0),  # type: ignore[attr-defined]
        "batches": int(batches.rowcount or 0),  # type: ignore[attr-defined]
        "webhook_deliveries": await purge_deliveries(session, now),
        "idempotency_keys": await purge_idempotency_keys(session),
        "browser_sessions": await purge_sessions(session, now),
    }
    counts["results"], counts["documents"] = await purge_expired(session, now)
    return counts
