"""The objects that run jobs and deliver webhooks, built the same way by the API and the worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.documents.service import DocumentAnalyzer
from app.engines.factory import build_engine
from app.extraction.service import Extractor
from app.jobs.executor import JobExecutor
from app.jobs.passwords import JobPasswords
from app.jobs.runners import InProcessRunner, JobRunner, RedisRunner
from app.lib.settings import Settings
from app.webhooks.delivery import Deliverer


def build_extractor(settings: Settings, documents: DocumentAnalyzer) -> Extractor:
    return Extractor(
        build_engine(settings.engine),
        documents,
        max_tokens=settings.engine.max_tokens,
        page_concurrency=settings.engine.page_concurrency,
        calibration_dir=settings.app.data_dir / "calibration",
    )


def build_job_services(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], extractor: Extractor
) -> dict[str, Any]:
    """``deliverer``, ``executor``, the configured ``runner`` (the API process submits to it) and
    ``passwords`` (which encrypt document passwords of jobs)."""
    deliverer = Deliverer(sessions, settings.webhooks)
    passwords = JobPasswords.from_settings(settings)
    executor = JobExecutor(settings, sessions, extractor, passwords, on_deliveries=lambda _: deliverer.kick())
    runner: JobRunner
    if settings.jobs.runner == "redis":
        runner = RedisRunner(sessions, settings.jobs)
    else:
        runner = InProcessRunner(executor, sessions, settings.jobs)
    return {"deliverer": deliverer, "executor": executor, "runner": runner, "passwords": passwords}
