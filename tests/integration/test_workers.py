"""``docextract worker`` processes on Redis and PostgreSQL: a worker killed with SIGKILL mid-job (the
one that takes over serves its own metrics), and 300 jobs through two workers, every webhook checked
at a real loopback receiver."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.db.models import ExtractionRecord, JobRecord, WebhookDeliveryRecord
from app.jobs import store
from app.webhooks.signing import verify
from tests.conftest import fresh_database, redis_available
from tests.fake_sglang import FakeSGLang, delay
from tests.helpers import free_port, metric, metric_samples
from tests.jobs_harness import invoice_pdf
from tests.webhook_receiver import eventually
from tests.worker_stack import Stack, worker_stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
EXTRACTION_EVENTS = {"extraction.completed", "extraction.needs_review"}


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang(check_images=False) as server:
        yield server


@pytest.fixture
async def stack(tmp_path: Path, fake: FakeSGLang, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    redis_url = await redis_available()
    concurrency = getattr(request, "param", 4)
    async with (
        fresh_database("postgresql", tmp_path) as url,
        worker_stack(tmp_path, url, redis_url, fake.url, concurrency=concurrency) as stack,
    ):
        yield stack


async def job_row(stack: Stack, job_id: str) -> JobRecord:
    async with stack.db() as session:
        job = await session.get(JobRecord, job_id)
    assert job is not None
    return job


async def test_a_worker_killed_mid_job_does_not_lose_it(stack: Stack, fake: FakeSGLang) -> None:
    fake.script(delay(5.0))  # the first generation hangs: the worker is killed while waiting for it
    first = stack.start_worker()
    job_id = await stack.submit(invoice_pdf("Invoice 7 Total 10.00"))

    async def engine_busy() -> bool:
        return fake.in_flight > 0 and (await job_row(stack, job_id)).status == store.RUNNING

    await eventually(engine_busy, within_s=60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    metrics_port = free_port()
    stack.start_worker(DOCEXTRACT_METRICS_WORKER_PORT=str(metrics_port))

    async def finished() -> bool:
        return (await job_row(stack, job_id)).status in store.FINISHED

    await eventually(finished, within_s=60)
    job = await job_row(stack, job_id)
    assert job.status in (store.SUCCEEDED, store.NEEDS_REVIEW), job.error
    assert job.attempts == 2  # the killed run, then the one that finished
    async with stack.db() as session:
        assert await session.scalar(select(func.count()).select_from(ExtractionRecord)) == 1
    await eventually(lambda: any(e["type"] in EXTRACTION_EVENTS for e in stack.events()), within_s=30)

    async def outbox_settled() -> bool:  # every event written has been delivered: none is yet to come
        async with stack.db() as session:
            statuses = list(await session.scalars(select(WebhookDeliveryRecord.status)))
        return bool(statuses) and "pending" not in statuses

    await eventually(outbox_settled, within_s=30)
    # The worker that ran it serves its own metrics: the page it read, the webhook it delivered.
    async with httpx.AsyncClient(timeout=5) as client:
        served = metric_samples((await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text)
    assert metric(served, "docextract_pages_total") == 1
    assert metric(served, "docextract_extractions_total") == 1
    assert metric(served, "docextract_webhook_deliveries_total", outcome="delivered") >= 1
    events = [e for e in stack.events() if e["type"] in EXTRACTION_EVENTS]
    assert len({e["id"] for e in events}) == 1
    event = events[0]
    assert event["data"]["job_id"] == job_id and event["data"]["extraction_id"] == job.extraction_id
    verify(stack.secret, event["headers"], event["body"])
    result = await stack.client.get(f"/jobs/{job_id}/result", headers=stack.headers)
    assert result.status_code == 200 and result.json()["id"] == job.extraction_id


@pytest.mark.parametrize("stack", [8], indirect=True)
async def test_300_jobs_through_two_workers_each_end_once(stack: Stack, fake: FakeSGLang) -> None:
    workers = [stack.start_worker(), stack.start_worker()]
    job_ids = [await stack.submit(invoice_pdf(f"Invoice {n} Total {n}.00")) for n in range(300)]

    async def all_finished() -> bool:
        async with stack.db() as session:
            done = await session.scalar(
                select(func.count()).select_from(JobRecord).where(JobRecord.status.in_(store.FINISHED))
            )
        return done == len(job_ids)

    started = time.monotonic()
    await eventually(all_finished, within_s=300)
    assert all(w.poll() is None for w in workers), "a worker died"
    async with stack.db() as session:
        jobs = list(await session.scalars(select(JobRecord)))
        extractions = await session.scalar(select(func.count()).select_from(ExtractionRecord))
    assert Counter(j.status for j in jobs).keys() <= {store.SUCCEEDED, store.NEEDS_REVIEW}
    assert all(j.attempts == 1 for j in jobs)  # no job was run twice
    assert extractions == len(job_ids) and len(fake.requests) == len(job_ids)

    def every_job_notified() -> bool:
        return len({e["data"]["job_id"] for e in stack.events() if e["type"] in EXTRACTION_EVENTS}) == len(
            job_ids
        )

    await eventually(every_job_notified, within_s=120)
    by_job: dict[str, set[str]] = defaultdict(set)
    for event in stack.events():
        if event["type"] in EXTRACTION_EVENTS:
            by_job[event["data"]["job_id"]].add(event["id"])
    assert set(by_job) == set(job_ids)
    assert all(len(ids) == 1 for ids in by_job.values())  # one completed event each, by webhook-id
    print(f"300 jobs through 2 workers in {time.monotonic() - started:.1f} s")
