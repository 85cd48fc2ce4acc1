"""Accepting asynchronous work: limits first, then the document and the job committed together,
before the client hears 202. Nothing here runs the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import BatchRecord, JobRecord, utcnow
from app.documents.detect import detect_type
from app.extraction.store import save_document
from app.jobs import store
from app.jobs.services import Services
from app.lib.errors import RequestError
from app.lib.problems import QUEUE_FULL, TOO_MANY_JOBS_IN_FLIGHT, UNSUPPORTED_DOCUMENT_TYPE
from app.lib.settings import Settings
from app.registry.service import SchemaVersion
from app.webhooks.events import require_callback

QUEUE_FULL_RETRY_AFTER_S = 30


@dataclass(frozen=True)
class JobOptions:
    """What a request asks of every job it creates."""

    version: SchemaVersion
    owner: str | None
    callback_url: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """``pages``, ``password_encrypted`` (see ``app.jobs.passwords``; never the password itself),
    ``min_confidence``, ``require``, ``checks`` (None values dropped)."""


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str | None = None
    """The file name (a multipart part's, a zip entry's); None for a raw body."""


async def submit_jobs(
    session: AsyncSession,
    services: Services,
    options: JobOptions,
    uploads: list[Upload],
    *,
    batch: BatchRecord | None = None,
) -> list[JobRecord]:
    """The one way asynchronous work is accepted (``POST /extract`` async, ``POST /batches``):
    every check first, then the documents, the jobs (and the batch) committed together, then the
    runner told. One job per upload, in order."""
    settings = services.settings
    options.version.require_active()
    services.extractor.require_engine()
    kinds = [require_media_type(upload.data, upload.name) for upload in uploads]
    if options.callback_url is not None:
        await require_callback(session, options.owner, options.callback_url, settings.webhooks)
    await check_capacity(session, settings, options.owner, len(uploads))
    now = utcnow() if batch is None else batch.created_at
    if batch is not None:
        session.add(batch)
    jobs = [
        # Distinct creation times keep the submission order in listings and in the queue.
        await add_job(
            session,
            settings,
            options,
            upload.data,
            kind,
            filename=upload.name,
            batch_id=None if batch is None else batch.id,
            created_at=now + timedelta(microseconds=index),
        )
        for index, (upload, kind) in enumerate(zip(uploads, kinds, strict=True))
    ]
    await session.commit()
    await services.runner.submitted([job.id for job in jobs])
    return jobs


def require_media_type(data: bytes, name: str | None = None) -> str:
    """The document's type from its first bytes; 415 before anything is stored."""
    kind = detect_type(data[:1024])
    if kind is None:
        what = f"{name!r} is" if name else "The document is"
        raise RequestError(
            UNSUPPORTED_DOCUMENT_TYPE,
            f"{what} not a PDF, PNG, JPEG, TIFF, WebP or XML file (recognised by its content).",
        )
    return kind


async def check_capacity(
    session: AsyncSession, settings: Settings, owner: str | None, count: int = 1
) -> None:
    """429 before anything is stored when the queue, or this key's share of it, is full."""
    limits = settings.jobs
    if await store.in_flight(session) + count > limits.max_queued:
        raise RequestError(
            QUEUE_FULL,
            f"{limits.max_queued} jobs are already queued or running.",
            headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        )
    if owner is not None and await store.in_flight(session, owner) + count > limits.max_in_flight_per_key:
        raise RequestError(
            TOO_MANY_JOBS_IN_FLIGHT,
            f"This key has {limits.max_in_flight_per_key} jobs queued or running at most.",
            headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        )


async def add_job(
    session: AsyncSession,
    settings: Settings,
    options: JobOptions,
    data: bytes,
    kind: str,
    *,
    filename: str | None = None,
    batch_id: str | None = None,
    created_at: datetime | None = None,
) -> JobRecord:
    """Store the document and a queued job in the caller's transaction (the caller commits)."""
    retention = timedelta(days=settings.app.retention_days)
    sha = await save_document(session, data, kind, retention)
    now = created_at or utcnow()
    job = JobRecord(
        id=store.new_id("job"),
        status=store.QUEUED,
        schema_name=options.version.name,
        schema_version=options.version.version,
        document_sha256=sha,
        filename=filename[:255] if filename else None,  # zip entry names can be longer than the column
        params={k: v for k, v in options.params.items() if v is not None},
        callback_url=options.callback_url,
        batch_id=batch_id,
        created_by=options.owner,
        attempts=0,
        pages_done=0,
        not_before=now,
        created_at=now,
        expires_at=now + retention,
    )
    session.add(job)
    await session.flush()
    return job
