"""The scaled-out deployment on one machine, for tests and benchmarks: the API (in this process) on
PostgreSQL with the Redis runner, ``docextract worker`` processes, the fake SGLang and a loopback
webhook receiver."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.keys import Scope
from app.lib.settings import EngineSettings, JobSettings, Settings, WebhookSettings
from app.server.core import create_app
from tests.conftest import issue_key, make_settings
from tests.jobs_harness import clear_queue
from tests.webhook_receiver import Receiver

LOOPBACK = ["127.0.0.0/8"]


@dataclass
class Stack:
    client: AsyncTestClient[Litestar]
    settings: Settings
    env: dict[str, str]
    db: async_sessionmaker[AsyncSession]
    headers: dict[str, str]
    secret: str
    receiver: Receiver
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    root: Path = Path()

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """``env``: more DOCEXTRACT_* variables for this worker."""
        log = (self.root / f"worker-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def submit(self, data: bytes) -> str:
        response = await self.client.post(
            "/extract/invoice?async=true",
            content=data,
            headers={**self.headers, "Content-Type": "application/pdf"},
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def events(self) -> list[dict[str, Any]]:
        """Every webhook received, as (webhook-id, parsed body) dicts."""
        with self.receiver.lock:
            received = list(self.receiver.requests)
        return [
            {"id": r.headers["webhook-id"], "headers": r.headers, "body": r.body, **orjson.loads(r.body)}
            for r in received
        ]


def worker_env(settings: Settings, root: Path, sglang_url: str, **extra: str) -> dict[str, str]:
    jobs = settings.jobs
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCEXTRACT_")}
    env.update(
        {
            "DOCEXTRACT_DATA_DIR": str(root / "worker-data"),
            "DOCEXTRACT_DATABASE_URL": settings.database_url,
            "DOCEXTRACT_LOG_LEVEL": "WARNING",
            "DOCEXTRACT_SGLANG_URL": sglang_url,
            "DOCEXTRACT_ENGINE_RETRIES": "0",
            "DOCEXTRACT_JOBS_RUNNER": "redis",
            "DOCEXTRACT_JOBS_REDIS_URL": jobs.redis_url,
            "DOCEXTRACT_JOBS_QUEUE_NAME": jobs.queue_name,
            "DOCEXTRACT_JOBS_LEASE_S": str(jobs.lease_s),
            "DOCEXTRACT_JOBS_POLL_S": str(jobs.poll_s),
            "DOCEXTRACT_JOBS_CONCURRENCY": str(jobs.concurrency),
            "DOCEXTRACT_WEBHOOKS_ALLOW_NETWORKS": orjson.dumps(settings.webhooks.allow_networks).decode(),
            "DOCEXTRACT_WEBHOOKS_RETRY_BASE_S": str(settings.webhooks.retry_base_s),
            **extra,
        }
    )
    return env


@contextlib.asynccontextmanager
async def worker_stack(
    root: Path, database_url: str, redis_url: str, sglang_url: str, hook_url: str | None = None, **jobs: Any
) -> AsyncIterator[Stack]:
    """``hook_url``: where the key's webhook endpoint points (default: the in-process receiver)."""
    settings = make_settings(
        root,
        database_url,
        engine=EngineSettings(sglang_url=sglang_url, engine_retries=0),
        jobs=JobSettings(
            **{
                "runner": "redis",
                "redis_url": redis_url,
                "queue_name": f"test-{uuid.uuid4().hex[:10]}",
                "lease_s": 2.0,
                "poll_s": 0.2,
                **jobs,
            }
        ),
        webhooks=WebhookSettings(allow_networks=LOOPBACK, retry_base_s=0.2),
    )
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    db = async_sessionmaker(engine, expire_on_commit=False)
    with Receiver() as receiver:
        async with AsyncTestClient(create_app(settings), timeout=120) as client:  # migrates first
            headers = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="erp")}
            hook = await client.post("/webhooks", json={"url": hook_url or receiver.url()}, headers=headers)
            assert hook.status_code == 201, hook.text
            stack = Stack(
                client,
                settings,
                worker_env(settings, root, sglang_url),
                db,
                headers,
                hook.json()["secret"],
                receiver,
                root=root,
            )
            try:
                yield stack
            finally:
                stack.stop_workers()
                await clear_queue(settings.jobs)
    await engine.dispose()
