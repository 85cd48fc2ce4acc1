"""Jobs at rest: the database row is the truth about a job, whichever runner carries it.

A runner *claims* a job (queued and due, or running with an expired lease) by writing a fresh lease
token with a compare-and-set UPDATE; only the holder of the current token may renew the lease,
report progress or finish the job. A runner that died simply stops renewing: its lease expires, the
job is claimed again, and the dead runner's late writes (if it was only stalled) match no row. That is
what makes a job finish exactly once as far as the client can see.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import BatchRecord, JobRecord, utcnow
from app.jobs.passwords import SECRET_PARAMS

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, NEEDS_REVIEW, FAILED, CANCELLED = "succeeded", "needs_review", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, NEEDS_REVIEW, FAILED, CANCELLED)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Claim:
    """The right to run one job until the lease expires."""

    job_id: str
    token: str
    attempt: int


def _due(now: datetime) -> Any:
    return or_(
        and_(JobRecord.status == QUEUED, JobRecord.not_before <= now),
        and_(JobRecord.status == RUNNING, JobRecord.lease_expires_at < now),
    )


async def claim(session: AsyncSession, job_id: str, lease: timedelta) -> Claim | None:
    """Take the job if it is due; ``None`` when it is not (another runner has it, it finished, or
    its retry is not due yet). Commits."""
    now, token = utcnow(), secrets.token_hex(16)
    result = await session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, _due(now))
        .values(
            status=RUNNING,
            lease_token=token,
            lease_expires_at=now + lease,
            attempts=JobRecord.attempts + 1,
            started_at=func.coalesce(JobRecord.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempt = await session.scalar(select(JobRecord.attempts).where(JobRecord.id == job_id))
    return Claim(job_id, token, attempt or 1)


async def due_jobs(
    session: AsyncSession, limit: int, queued_for: timedelta = timedelta(0)
) -> list[tuple[str, int]]:
    """Claimable jobs (id, attempts so far), oldest first. ``queued_for`` skips jobs queued more recently than
    that (the Redis sweeper's grace: those are normally on their way through the queue)."""
    now = utcnow()
    due = or_(
        and_(JobRecord.status == QUEUED, JobRecord.not_before <= now - queued_for),
        and_(JobRecord.status == RUNNING, JobRecord.lease_expires_at < now),
    )
    rows = await session.execute(
        select(JobRecord.id, JobRecord.attempts)
        .where(due)
        .order_by(JobRecord.not_before, JobRecord.created_at)
        .limit(limit)
    )
    return [(job_id, attempts) for job_id, attempts in rows]


async def attempts(session: AsyncSession, job_id: str) -> int:
    return int(await session.scalar(select(JobRecord.attempts).where(JobRecord.id == job_id)) or 0)


async def renew(
    session: AsyncSession, held: Claim, lease: timedelta, pages_done: int, pages_total: int | None
) -> bool:
    """Extend the lease and record progress; ``False`` when the job is no longer ours (cancelled,
    or claimed by another runner after our lease expired). Commits."""
    result = await session.execute(
        update(JobRecord)
        .where(*_held(held))
        .values(lease_expires_at=utcnow() + lease, pages_done=pages_done, pages_total=pages_total)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _held(held: Claim) -> tuple[Any, ...]:
    return (JobRecord.id == held.job_id, JobRecord.status == RUNNING, JobRecord.lease_token == held.token)


async def release(
    session: AsyncSession, held: Claim, values: dict[str, Any], *, password_kept: bool = False
) -> JobRecord | None:
    """Move a held job out of ``running`` (finished, or queued again for a retry) in the caller's
    transaction; ``None`` (and nothing written) when the job is no longer ours. A finished job's
    document password is dropped: it was only kept to run the job."""
    job = await session.get(JobRecord, held.job_id, with_for_update=True, populate_existing=True)
    if job is None or job.status != RUNNING or job.lease_token != held.token:
        return None
    for name, value in values.items():
        setattr(job, name, value)
    job.lease_token = None
    job.lease_expires_at = None
    if not password_kept:
        _drop_password(job)
    await session.flush()
    return job


async def count_batch_finished(session: AsyncSession, batch_id: str) -> bool:
    """Count one more finished job of the batch; ``True`` for exactly the call that finishes it.
    The increment is one atomic UPDATE, so concurrent finishers never both (or neither) see the end."""
    row = (
        await session.execute(
            update(BatchRecord)
            .where(BatchRecord.id == batch_id)
            .values(jobs_finished=BatchRecord.jobs_finished + 1)
            .returning(BatchRecord.jobs_finished, BatchRecord.jobs_total)
        )
    ).one_or_none()
    if row is None or row[0] != row[1]:
        return False
    await session.execute(update(BatchRecord).where(BatchRecord.id == batch_id).values(completed_at=utcnow()))
    return True


async def cancel(session: AsyncSession, job_id: str) -> JobRecord | None:
    """Cancel a queued or running job (a running one stops at its next lease renewal); ``None``
    when it had already finished. Does not commit."""
    job = await session.get(JobRecord, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.status not in ACTIVE:
        return None
    job.status = CANCELLED
    job.finished_at = utcnow()
    job.lease_token = None
    job.lease_expires_at = None
    _drop_password(job)
    await session.flush()
    return job


def _drop_password(job: JobRecord) -> None:
    """The (encrypted) document password was kept only to run the job."""
    if SECRET_PARAMS & job.params.keys():
        job.params = {k: v for k, v in job.params.items() if k not in SECRET_PARAMS}


async def in_flight(session: AsyncSession, owner: str | None = None) -> int:
    """Jobs queued or running, in all or for one API key (the backpressure limits)."""
    query = select(func.count()).select_from(JobRecord).where(JobRecord.status.in_(ACTIVE))
    if owner is not None:
        query = query.where(JobRecord.created_by == owner)
    return int(await session.scalar(query) or 0)
