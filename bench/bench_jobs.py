"""Jobs per second through the Redis runner against the synchronous endpoint, and how long after a
job finishes its webhook arrives.

    python bench/bench_jobs.py [--jobs 200] [--workers 2] [--concurrency 8]

Same run, same documents, same instant fake SGLang (another process), same API process on
PostgreSQL (DOCEXTRACT_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres) and
Redis (DOCEXTRACT_TEST_REDIS_URL, default redis://127.0.0.1:6379/0):

- ``sync``: ``POST /extract`` with ``--concurrency`` requests in flight; the API process does all the
  work.
- ``async``: ``POST /extract?async=true`` for every document, ``--workers`` ``docextract worker``
  processes run them; from the first submission to the last job finished.
- webhook delay: receiver arrival time minus the job's ``finished_at`` (one clock: one machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DOCEXTRACT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

import orjson
from sqlalchemy import func, select

from app.db.models import JobRecord
from app.jobs import store
from tests.conftest import fresh_database, redis_available
from tests.documents import invoice_pdf
from tests.worker_stack import Stack, worker_stack


async def sync_rate(stack: Stack, pdf: bytes, jobs: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)
    headers = {**stack.headers, "Content-Type": "application/pdf"}

    async def one() -> None:
        async with slots:
            response = await stack.client.post("/extract/invoice", content=pdf, headers=headers)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(jobs)))
    return jobs / (time.perf_counter() - started)


async def finished_count(stack: Stack) -> int:
    async with stack.db() as session:
        query = select(func.count()).select_from(JobRecord).where(JobRecord.status.in_(store.FINISHED))
        return int(await session.scalar(query) or 0)


async def wait_finished(stack: Stack, count: int) -> None:
    while await finished_count(stack) < count:  # noqa: ASYNC110 - polling another process's work
        await asyncio.sleep(0.02)


async def async_rate(stack: Stack, pdf: bytes, jobs: int) -> tuple[float, float, list[str]]:
    """Jobs/s end to end and submissions/s; the measured job ids."""
    await stack.submit(pdf)  # warm-up: the workers are up and have run one job
    await wait_finished(stack, 1)
    started = time.perf_counter()
    job_ids = [await stack.submit(pdf) for _ in range(jobs)]
    submitted = time.perf_counter() - started
    await wait_finished(stack, jobs + 1)
    return jobs / (time.perf_counter() - started), jobs / submitted, job_ids


async def one_at_a_time(stack: Stack, pdf: bytes, jobs: int) -> list[str]:
    """Jobs submitted only when the previous one has finished: the webhook delay without load."""
    job_ids = []
    for _ in range(jobs):
        job_ids.append(await stack.submit(pdf))
        await wait_finished(stack, await finished_count(stack) + 1)
    await asyncio.sleep(0.5)
    return job_ids


async def webhook_delays(stack: Stack, arrivals: dict[str, float], job_ids: list[str]) -> list[float]:
    """Milliseconds from each job's ``finished_at`` to its webhook's arrival."""
    async with stack.db() as session:
        rows = await session.execute(
            select(JobRecord.id, JobRecord.finished_at).where(JobRecord.id.in_(job_ids))
        )
    finished = {job_id: at.timestamp() for job_id, at in rows if at is not None}
    return sorted((arrivals[j] - finished[j]) * 1000 for j in job_ids if j in arrivals and j in finished)


def percentiles(delays: list[float]) -> str:
    if not delays:
        return "no webhooks arrived"
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return f"p50 {statistics.median(delays):.0f} ms, p99 {p99:.0f} ms ({len(delays)} webhooks)"


async def main(args: argparse.Namespace) -> None:
    pdf, _ = invoice_pdf(pages=1)
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_sglang", "--no-check-images"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # The receiver has its own process: its arrival times must not wait for this busy one.
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.webhook_receiver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        assert receiver.stdout is not None
        url, hook_url = fake.stdout.readline().strip(), receiver.stdout.readline().strip()
        redis_url = await redis_available()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            async with (
                fresh_database("postgresql", root) as database_url,
                worker_stack(
                    root, database_url, redis_url, url, hook_url, concurrency=args.concurrency, lease_s=30
                ) as stack,
            ):
                sync = await sync_rate(stack, pdf, args.jobs, args.concurrency)
                for _ in range(args.workers):
                    stack.start_worker()
                rate, submissions, loaded = await async_rate(stack, pdf, args.jobs)
                idle = await one_at_a_time(stack, pdf, args.idle_jobs)
                await asyncio.sleep(2.0)  # the last deliveries
                output, _ = receiver.communicate("", timeout=30)
                arrivals: dict[str, float] = {}
                for line in output.splitlines():
                    record = orjson.loads(line)
                    job_id = orjson.loads(record["body"])["data"].get("job_id")
                    if job_id is not None:
                        arrivals.setdefault(job_id, record["wall"])
                under_load = await webhook_delays(stack, arrivals, loaded)
                without_load = await webhook_delays(stack, arrivals, idle)
    finally:
        fake.terminate()
        receiver.kill()
    print(f"{args.jobs} one-page invoices, instant fake engine, PostgreSQL + Redis, this machine")
    print(f"  sync POST /extract (concurrency {args.concurrency}):       {sync:6.1f} jobs/s")
    print(f"  async via Redis, {args.workers} workers x {args.concurrency}:            {rate:6.1f} jobs/s")
    print(f"  ratio async/sync: {rate / sync:.2f}   (submissions alone: {submissions:.1f} jobs/s)")
    print(f"  webhook delay after job end, during the async run: {percentiles(under_load)}")
    print(f"  webhook delay after job end, one job at a time:    {percentiles(without_load)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--idle-jobs", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
