"""Who runs jobs, chosen by ``DOCEXTRACT_JOBS_RUNNER``; both behind ``JobRunner``.

- ``inprocess`` (embedded default): tasks inside the API process claim due jobs straight from the
  database, woken at once by new submissions and every ``poll_s`` for retries and expired leases.
- ``redis``: the API puts job ids on a Redis queue through SAQ and ``docextract worker`` processes
  (any number, any host) pull them. SAQ because it is asyncio-native like the rest of the service,
  small, maintained, and has what we need (blocking dequeue, scheduled jobs for retry backoff,
  dedup by job key, several workers per queue); arq is in maintenance mode and Celery is
  thread/prefork-first. The queue only carries ids: the database stays the truth, so a message lost
  with a dead worker (or a submission made while Redis was down) is re-sent by the sweeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol, cast

import structlog
from saq import Queue, Worker
from saq.types import Context, PartialTimersDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.executor import JobExecutor
from app.lib.settings import JobSettings

logger = structlog.get_logger(__name__)
RUN_JOB = "run_job"
SWEEP_BATCH = 500


class JobRunner(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submitted(self, job_ids: list[str]) -> None:
        """The jobs are committed: start them when there is room (never raises: the sweeper or the
        poll loop catches up with anything this could not hand over)."""

    async def check(self) -> None:
        """Raise when the runner cannot take jobs (for ``/ready``)."""


class InProcessRunner:
    """``concurrency`` tasks that claim due jobs from the database."""

    def __init__(
        self, executor: JobExecutor, sessions: async_sessionmaker[AsyncSession], settings: JobSettings
    ):
        self.executor = executor
        self.sessions = sessions
        self.settings = settings
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.settings.concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def submitted(self, job_ids: list[str]) -> None:
        self._wake.set()

    async def check(self) -> None:
        if not self._tasks or any(task.done() for task in self._tasks):
            raise RuntimeError("its tasks are not running")

    async def _loop(self) -> None:
        while True:
            try:
                ran = await self._run_one()
            except Exception:
                logger.exception("runner_failed")
                ran = False
            if not ran:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)

    async def _run_one(self) -> bool:
        async with self.sessions() as session:
            due = await store.due_jobs(session, limit=self.settings.concurrency)
        for job_id, _ in due:
            if await self.executor.run(job_id) is not None:
                if len(due) > 1:
                    self._wake.set()  # more is waiting: let idle siblings look too
                return True
        return False


def redis_queue(settings: JobSettings) -> Queue:
    return Queue.from_url(settings.redis_url, name=settings.queue_name)


def dispatch_key(job_id: str, attempts: int) -> str:
    """One SAQ job per run of ours: SAQ drops a duplicate while the same key is still pending, and a
    retry or a recovery after a dead worker (attempts moved on) gets a new key."""
    return f"{job_id}.{attempts}"


async def enqueue(queue: Queue, job_id: str, attempts: int, delay_s: float = 0.0) -> None:
    await queue.enqueue(
        RUN_JOB,
        job_id=job_id,
        key=dispatch_key(job_id, attempts),
        timeout=0,  # a job runs as long as it holds its lease; the lease is the limit, not SAQ
        retries=1,  # retries are ours (database), with backoff and a public error at the end
        scheduled=int(time.time() + delay_s) if delay_s > 0 else 0,
        ttl=600,
    )


class RedisRunner:
    """The API side: put submitted jobs on the Redis queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: JobSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.queue = redis_queue(settings)

    async def start(self) -> None:
        await self.queue.connect()

    async def stop(self) -> None:
        await self.queue.disconnect()

    async def check(self) -> None:
        await self.queue.count("queued")  # a round trip to Redis

    async def submitted(self, job_ids: list[str]) -> None:
        try:
            for job_id in job_ids:
                await enqueue(self.queue, job_id, 0)
        except Exception:
            # Committed already: the workers' sweeper will dispatch it.
            logger.exception("enqueue_failed", jobs=len(job_ids))


class RedisWorker:
    """``docextract worker``: SAQ consumer, sweeper (re-dispatches jobs whose message was lost or
    whose runner died) and the webhook deliverer, in one process."""

    def __init__(
        self,
        executor: JobExecutor,
        sessions: async_sessionmaker[AsyncSession],
        settings: JobSettings,
        background: list[Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        self.executor = executor
        self.sessions = sessions
        self.settings = settings
        self.queue = redis_queue(settings)
        executor.on_requeued = self.requeued
        heartbeat = max(1, int(settings.lease_s * 2))
        self.worker = Worker(
            self.queue,
            functions=[(RUN_JOB, self._run_job)],
            concurrency=settings.concurrency,
            timers=cast(PartialTimersDict, {"sweep": heartbeat}),
        )
        self._heartbeat_s = heartbeat
        self._background = background or []
        self._tasks: list[asyncio.Task[Any]] = []

    async def requeued(self, job_id: str, delay_s: float) -> None:
        async with self.sessions() as session:
            attempts = await store.attempts(session, job_id)
        await enqueue(self.queue, job_id, attempts, delay_s)

    async def _run_job(self, ctx: Context, *, job_id: str) -> str | None:
        """SAQ's function. Touches SAQ's job while ours runs, so SAQ's own sweeper only clears
        messages of workers that really died."""
        saq_job = ctx.get("job")
        assert saq_job is not None
        saq_job.heartbeat = self._heartbeat_s
        run = asyncio.create_task(self.executor.run(job_id))
        while not run.done():
            await asyncio.wait({run}, timeout=self._heartbeat_s / 3)
            if not run.done():
                await saq_job.update()
        return run.result()

    async def sweep(self) -> int:
        """Dispatch what the queue may have lost: jobs queued for a while, and running jobs whose
        lease expired (their worker died). Duplicates are harmless: SAQ drops a pending key, and
        only one runner can claim a job."""
        grace = timedelta(seconds=max(5.0, self.settings.lease_s))
        async with self.sessions() as session:
            due = await store.due_jobs(session, SWEEP_BATCH, queued_for=grace)
        for job_id, attempts in due:
            await enqueue(self.queue, job_id, attempts)
        return len(due)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                swept = await self.sweep()
                if swept:
                    logger.info("jobs_redispatched", jobs=swept)
            except Exception:
                logger.exception("sweep_failed")
            await asyncio.sleep(self.settings.poll_s)

    async def run(self) -> None:
        """Until cancelled or SIGTERM/SIGINT (SAQ stops taking jobs and lets running ones finish)."""
        await self.queue.connect()
        self._tasks = [asyncio.create_task(self._sweep_forever())]
        self._tasks += [asyncio.create_task(job()) for job in self._background]
        try:
            await self.worker.start()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.queue.disconnect()
