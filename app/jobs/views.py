"""What clients see of jobs and batches: the API's bodies and the webhooks' thin payloads."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from msgspec import UNSET
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import BatchRecord, JobRecord
from app.jobs.models import (
    BatchJob,
    BatchView,
    JobError,
    JobLinks,
    JobProgress,
    JobStatus,
    JobView,
    SchemaRef,
)
from app.jobs.store import ACTIVE


def absolute(public_url: str | None, path: str) -> str:
    """A link for clients: absolute when the public base URL is configured."""
    return f"{public_url.rstrip('/')}{path}" if public_url else path


def job_view(job: JobRecord, public_url: str | None) -> JobView:
    error = None if job.error is None else msgspec.convert(job.error, JobError)
    retrying = job.status in ACTIVE and error is not None  # the error is history, not the end
    return JobView(
        id=job.id,
        status=cast(JobStatus, job.status),
        schema=SchemaRef(job.schema_name, job.schema_version),
        filename=job.filename,
        progress=JobProgress(job.pages_done, job.pages_total),
        attempts=job.attempts,
        created_at=job.created_at.isoformat(),
        started_at=job.started_at.isoformat() if job.started_at else None,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        expires_at=job.expires_at.isoformat(),
        batch_id=job.batch_id,
        callback_url=job.callback_url,
        extraction_id=job.extraction_id,
        error=UNSET if retrying else error,
        links=JobLinks(
            self=absolute(public_url, f"/jobs/{job.id}"),
            result=absolute(public_url, f"/jobs/{job.id}/result"),
        ),
        last_error=error if retrying and error is not None else UNSET,
    )


def event_data(job: JobRecord, public_url: str | None, reasons: list[str]) -> dict[str, Any]:
    """The webhook's thin payload: ids, status and where to fetch the result, never the data."""
    data: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "schema": {"name": job.schema_name, "version": job.schema_version},
        "extraction_id": job.extraction_id,
        "review_reasons": reasons,
        "result_url": absolute(public_url, f"/jobs/{job.id}/result"),
        "job_url": absolute(public_url, f"/jobs/{job.id}"),
    }
    if job.batch_id is not None:
        data["batch_id"] = job.batch_id
    if job.error is not None:
        data["error"] = job.error
    return data


async def batch_view(
    session: AsyncSession, batch: BatchRecord, public_url: str | None, *, with_jobs: bool
) -> BatchView:
    """Counts per status (and, for the API, every job with its links)."""
    counts = dict(
        (
            await session.execute(
                select(JobRecord.status, func.count())
                .where(JobRecord.batch_id == batch.id)
                .group_by(JobRecord.status)
            )
        ).all()
    )
    view = BatchView(
        batch_id=batch.id,
        status="completed" if batch.completed_at is not None else "running",
        schema=SchemaRef(batch.schema_name, batch.schema_version),
        jobs_total=batch.jobs_total,
        jobs_finished=batch.jobs_finished,
        counts={status: int(n) for status, n in sorted(counts.items())},
        created_at=batch.created_at.isoformat(),
        completed_at=batch.completed_at.isoformat() if batch.completed_at else None,
        batch_url=absolute(public_url, f"/batches/{batch.id}"),
    )
    if with_jobs:
        jobs = await session.scalars(
            select(JobRecord)
            .where(JobRecord.batch_id == batch.id)
            .order_by(JobRecord.created_at, JobRecord.id)
        )
        view.jobs = [
            BatchJob(
                id=job.id,
                filename=job.filename,
                status=cast(JobStatus, job.status),
                result_url=absolute(public_url, f"/jobs/{job.id}/result"),
                error=msgspec.convert(job.error, JobError)
                if job.status == "failed" and job.error is not None
                else None,
            )
            for job in jobs
        ]
    return view


async def batch_summary(
    session: AsyncSession, batch: BatchRecord, public_url: str | None, *, with_jobs: bool
) -> dict[str, Any]:
    """``batch_view`` as plain JSON values (the ``batch.completed`` event's payload)."""
    summary: dict[str, Any] = msgspec.to_builtins(
        await batch_view(session, batch, public_url, with_jobs=with_jobs)
    )
    return summary
