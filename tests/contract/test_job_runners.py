"""One contract for every job runner: the in-process runner (SQLite and PostgreSQL) and the Redis
runner with a worker (PostgreSQL, as deployed). Same tests, same expectations."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.db.models import JobRecord, utcnow
from app.jobs import store
from tests.conftest import fresh_database, redis_available
from tests.fake_sglang import FakeSGLang, delay, status
from tests.jobs_harness import Harness, invoice_pdf, job_settings, running
from tests.webhook_receiver import eventually

RUNNERS = [
    pytest.param(("inprocess", "sqlite"), id="inprocess-sqlite"),
    pytest.param(("inprocess", "postgresql"), id="inprocess-postgresql", marks=pytest.mark.postgres),
    pytest.param(
        ("redis", "postgresql"), id="redis-postgresql", marks=[pytest.mark.postgres, pytest.mark.redis]
    ),
]


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang() as server:
        yield server


@pytest.fixture(params=RUNNERS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path, fake: FakeSGLang) -> AsyncIterator[Harness]:
    runner, database = request.param
    redis_url = await redis_available() if runner == "redis" else "redis://unused"
    async with fresh_database(database, tmp_path) as url:
        settings = job_settings(tmp_path, url, fake.url, runner=runner, redis_url=redis_url)
        async with running(settings) as harness:
            yield harness


async def test_a_job_runs_once_and_its_result_and_event_are_stored_once(
    harness: Harness, fake: FakeSGLang
) -> None:
    await harness.subscribe()
    job_id = await harness.submit()
    job = await harness.wait(job_id)
    assert job.status in (store.SUCCEEDED, store.NEEDS_REVIEW)
    assert job.attempts == 1 and job.error is None and job.lease_token is None
    assert (job.pages_done, job.pages_total) == (1, 1)
    assert job.extraction_id is not None and await harness.extractions(job) == 1
    assert len(fake.requests) == 1
    events = [d.event_type for d in await harness.deliveries(job_id)]
    assert events == ["extraction.completed" if job.status == store.SUCCEEDED else "extraction.needs_review"]


async def test_transient_engine_failures_are_retried_with_backoff(harness: Harness, fake: FakeSGLang) -> None:
    fake.script(status(503), status(503))
    job = await harness.wait(await harness.submit())
    assert job.status in (store.SUCCEEDED, store.NEEDS_REVIEW)
    assert job.attempts == 3 and len(fake.requests) == 3
    assert job.error is None  # the history of a job that succeeded is not an error


async def test_a_job_that_keeps_failing_ends_failed_with_a_public_error(
    harness: Harness, fake: FakeSGLang
) -> None:
    await harness.subscribe()
    fake.script(*[status(503)] * 3)
    job_id = await harness.submit()
    job = await harness.wait(job_id)
    assert job.status == store.FAILED
    assert job.error is not None
    assert job.error["phase"] == "extraction" and job.error["retryable"] is True
    assert job.error["attempts"] == 3 and job.error["type"] == "/problems/engine-unavailable"
    assert [d.event_type for d in await harness.deliveries(job_id)] == ["extraction.failed"]


async def test_a_document_that_cannot_be_read_fails_at_once(harness: Harness, fake: FakeSGLang) -> None:
    job = await harness.wait(await harness.submit(b"%PDF-1.7\n garbage that is no PDF"))
    assert job.status == store.FAILED and job.attempts == 1
    assert job.error is not None and job.error["phase"] == "ingest" and job.error["retryable"] is False
    assert job.error["type"] == "/problems/document-corrupt"
    assert fake.requests == []


async def test_cancelling_a_running_job_stops_it_and_discards_its_result(
    harness: Harness, fake: FakeSGLang
) -> None:
    fake.script(delay(3.0))
    job_id = await harness.submit()
    await harness.wait(job_id, statuses=(store.RUNNING,))
    await eventually(lambda: fake.in_flight == 1, within_s=30)  # the engine is working on it
    async with harness.sessions() as session:
        assert await store.cancel(session, job_id) is not None
        await session.commit()
    job = await harness.job(job_id)
    assert job.status == store.CANCELLED and job.extraction_id is None
    await eventually(lambda: fake.in_flight == 0, within_s=30)  # the engine has answered...
    job = await harness.job(job_id)  # ...and the job is still cancelled, with nothing stored
    assert job.status == store.CANCELLED and job.extraction_id is None


async def test_a_job_whose_runner_died_is_taken_over_after_its_lease(
    harness: Harness, fake: FakeSGLang
) -> None:
    """A runner that died leaves the job running with a lease nobody renews."""
    job_id = await harness.submit(pages="1")
    dead_lease = secrets.token_hex(16)
    async with harness.sessions() as session:
        # Take it before the runner can: as if a runner had claimed it and then died.
        await session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(
                status=store.RUNNING,
                lease_token=dead_lease,
                attempts=1,
                lease_expires_at=utcnow() + timedelta(seconds=1),
            )
        )
        await session.commit()
    job = await harness.wait(job_id, within_s=30)
    assert job.status in (store.SUCCEEDED, store.NEEDS_REVIEW)
    assert job.attempts == 2 and await harness.extractions(job) == 1


@pytest.mark.slow
async def test_a_job_whose_hand_over_was_lost_still_runs(harness: Harness, fake: FakeSGLang) -> None:
    """Committed, but never handed to the runner (with Redis: the queue was down at submission):
    the poll loop (in process) or the sweeper (Redis) finds it in the database."""
    job_id = await harness.submit(invoice_pdf("Lost"), hand_over=False)
    finished = await harness.wait(job_id, within_s=30)
    assert finished.status in (store.SUCCEEDED, store.NEEDS_REVIEW) and finished.attempts == 1


@pytest.mark.slow
async def test_two_runners_racing_for_one_job_run_it_once(harness: Harness, fake: FakeSGLang) -> None:
    fake.script(delay(0.5))
    job_id = await harness.submit(invoice_pdf("Race"))
    executor = harness.services.executor
    outcomes = await asyncio.gather(executor.run(job_id), executor.run(job_id), executor.run(job_id))
    job = await harness.wait(job_id)
    finished = [o for o in outcomes if o is not None]
    assert len(finished) <= 1  # the runner under test may have won the race instead
    assert job.attempts == 1 and len(fake.requests) == 1 and await harness.extractions(job) == 1
