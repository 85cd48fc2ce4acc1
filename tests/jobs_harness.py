"""Job runners driven directly (no HTTP): the API side submits, a runner carries the job, the test
reads the database. The same harness runs the in-process runner and the Redis runner with a worker,
so one contract suite covers both."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf
import redis.asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ExtractionRecord, JobRecord, WebhookDeliveryRecord, WebhookEndpointRecord
from app.jobs import store
from app.jobs.runners import JobRunner, RedisWorker
from app.jobs.services import Services
from app.jobs.submit import JobOptions, add_job
from app.lib.settings import EngineSettings, JobSettings, Settings
from app.registry.refs import SchemaRef
from app.registry.service import SchemaRegistry
from app.registry.validation import schema_limits
from app.server.startup import prepare
from app.webhooks.events import EVENT_TYPES
from app.webhooks.signing import new_secret
from tests.conftest import make_settings

OWNER = "key_test"


def invoice_pdf(text: str = "Invoice INV-1 Total 10.00") -> bytes:
    doc = pymupdf.open()
    doc.new_page(width=595, height=842).insert_text((60, 80), text, fontsize=11)
    return bytes(doc.tobytes())


def job_settings(
    tmp_path: Path, database_url: str, sglang_url: str, *, runner: str, redis_url: str, **jobs: Any
) -> Settings:
    defaults: dict[str, Any] = {
        "runner": runner,
        "redis_url": redis_url,
        "queue_name": f"test-{uuid.uuid4().hex[:10]}",
        "lease_s": 2.0,
        "retry_base_s": 0.05,
        "poll_s": 0.1,
        "max_attempts": 3,
    }
    return make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=sglang_url, engine_retries=0, engine_timeout_s=10),
        jobs=JobSettings(**{**defaults, **jobs}),
    )


@dataclass
class Harness:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    runner: JobRunner
    services: Services

    async def submit(self, data: bytes | None = None, *, hand_over: bool = True, **params: Any) -> str:
        """Commit a job and hand it to the runner (``hand_over=False``: as if that message was lost)."""
        async with self.sessions() as session:
            version = await SchemaRegistry(session, schema_limits(self.settings)).get(
                SchemaRef("invoice", None)
            )
            job = await add_job(
                session, self.settings, JobOptions(version, OWNER, None, params), data or invoice_pdf(), "pdf"
            )
            await session.commit()
        if hand_over:
            await self.runner.submitted([job.id])
        return job.id

    async def job(self, job_id: str) -> JobRecord:
        async with self.sessions() as session:
            job = await session.get(JobRecord, job_id)
        assert job is not None
        return job

    async def wait(
        self, job_id: str, within_s: float = 30.0, statuses: tuple[str, ...] = store.FINISHED
    ) -> JobRecord:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            job = await self.job(job_id)
            if job.status in statuses:
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} still {job.status} after {within_s} s")

    async def extractions(self, job: JobRecord) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(ExtractionRecord)
                    .where(ExtractionRecord.id == job.extraction_id)
                )
                or 0
            )

    async def deliveries(self, job_id: str) -> list[WebhookDeliveryRecord]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(WebhookDeliveryRecord).order_by(WebhookDeliveryRecord.created_at)
            )
        return [row for row in rows if job_id in row.payload]

    async def subscribe(self, url: str = "http://203.0.113.9/hook") -> None:
        """An endpoint for the test owner (a documentation address; nothing delivers in the harness)."""
        async with self.sessions() as session:
            session.add(
                WebhookEndpointRecord(
                    id=f"wh_{uuid.uuid4().hex[:12]}",
                    url=url,
                    events=list(EVENT_TYPES),
                    secret=new_secret(),
                    created_by=OWNER,
                )
            )
            await session.commit()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    """Migrate, build the services as the API and the worker do, run the configured runner (and, for
    Redis, one worker in this event loop)."""
    services = Services.build(settings)
    sessions, runner = services.sessions, services.runner
    await prepare(settings, services.database, sessions)
    await runner.start()
    worker_task: asyncio.Task[None] | None = None
    if settings.jobs.runner == "redis":
        worker = RedisWorker(services.executor, sessions, settings.jobs)
        worker_task = asyncio.create_task(worker.run())
    try:
        yield Harness(settings, sessions, runner, services)
    finally:
        if worker_task is not None:
            worker_task.cancel()
            await asyncio.gather(worker_task, return_exceptions=True)
        await runner.stop()
        if settings.jobs.runner == "redis":
            await clear_queue(settings.jobs)
        await services.aclose()


async def clear_queue(settings: JobSettings) -> None:
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    try:
        keys = [key async for key in client.scan_iter(f"saq:{settings.queue_name}*")]
        keys += [key async for key in client.scan_iter(f"saq:job:{settings.queue_name}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
