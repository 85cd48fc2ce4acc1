"""The long-lived objects of a process, built and closed in one place: the API's lifespan and the
worker hold the same ``Services`` (the API's handlers get it injected); the CLI builds and closes
its extractor with the same functions."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.engine import create_engine, create_session_maker
from app.documents.page_images import PageImages
from app.documents.service import DocumentAnalyzer
from app.engines.factory import build_engine
from app.extraction.service import Extractor
from app.jobs.executor import JobExecutor
from app.jobs.passwords import JobPasswords
from app.jobs.runners import InProcessRunner, JobRunner, RedisRunner
from app.lib.settings import Settings
from app.webhooks.delivery import Deliverer

DELIVERER = "deliverer"
"""The name of the webhook deliverer's background task (the API's, with the in-process runner)."""


def build_extractor(settings: Settings, documents: DocumentAnalyzer) -> Extractor:
    return Extractor(
        build_engine(settings.engine),
        documents,
        max_tokens=settings.engine.max_tokens,
        page_concurrency=settings.engine.page_concurrency,
        calibration_dir=settings.app.data_dir / "calibration",
    )


async def close_extractor(extractor: Extractor) -> None:
    """Release the engine (connections, model memory) and the analyzer's OCR workers."""
    await extractor.engine.aclose()
    extractor.analyzer.close()


@dataclass
class Services:
    """Everything the handlers, the job runner and the worker use; see ``Services.build``."""

    settings: Settings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    documents: DocumentAnalyzer
    extractor: Extractor
    passwords: JobPasswords
    """Encrypt the document passwords of jobs."""
    deliverer: Deliverer
    executor: JobExecutor
    runner: JobRunner
    """The configured runner: the API process submits jobs to it."""
    page_images: PageImages = field(default_factory=PageImages)
    """Rendered pages of stored documents, for the review page."""
    background: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    """Tasks started with ``run_in_background``, by name (the webhook deliverer, the purge)."""
    followups: set[asyncio.Task[None]] = field(default_factory=set)
    """One-off tasks started after an answer (``after_response``)."""

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Build only: nothing runs until the runner is started and tasks are put in the background."""
        database = create_engine(settings)
        sessions = create_session_maker(database)
        documents = DocumentAnalyzer(settings)
        extractor = build_extractor(settings, documents)
        deliverer = Deliverer(sessions, settings.webhooks)
        passwords = JobPasswords.from_settings(settings)
        executor = JobExecutor(
            settings, sessions, extractor, passwords, on_deliveries=lambda _: deliverer.kick()
        )
        runner: JobRunner
        if settings.jobs.runner == "redis":
            runner = RedisRunner(sessions, settings.jobs)
        else:
            runner = InProcessRunner(executor, sessions, settings.jobs)
        return cls(settings, database, sessions, documents, extractor, passwords, deliverer, executor, runner)

    def run_in_background(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self.background[name] = asyncio.create_task(work, name=name)

    def after_response(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` once, after the answer (e.g. learning from an approval); it forgets itself
        when done, and shutdown cancels it."""
        task = asyncio.create_task(work)
        self.followups.add(task)
        task.add_done_callback(self.followups.discard)

    def background_state(self, name: str) -> str | None:
        """``ok`` while the task runs, why it stopped otherwise; None when it was never started."""
        task = self.background.get(name)
        if task is None:
            return None
        if not task.done():
            return "ok"
        if task.cancelled():
            return "stopped: cancelled"
        return f"stopped: {task.exception()!r}"

    async def stop_background(self) -> None:
        tasks = [*self.background.values(), *self.followups]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.background.clear()

    async def aclose(self) -> None:
        """Stop what runs and release what is held, in the reverse order of starting."""
        await self.stop_background()
        await close_extractor(self.extractor)
        await self.database.dispose()
