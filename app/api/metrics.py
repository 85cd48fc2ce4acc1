"""``GET /metrics``: Prometheus text format, public like ``/health`` (counts and timings, no ids or
data; keep it off the public internet at the proxy). Request count and latency by route template
come from Litestar's Prometheus middleware, the domain metrics from ``app.lib.metrics``, and the
job queue from the database, read when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import structlog
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import JobRecord, utcnow
from app.jobs.services import Services
from app.jobs.store import ACTIVE, QUEUED
from app.lib import metrics

logger = structlog.get_logger(__name__)
REQUEST_BUCKETS: list[str | float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
"""Synchronous extractions take seconds to minutes; the library's default stops at 10 s."""


def prometheus_config() -> PrometheusConfig:
    """Requests counted by route template (``/jobs/{job_id}``), never by raw path: one series
    per route, whatever ids clients send."""
    return PrometheusConfig(
        app_name="docextract", prefix="docextract_http", group_path=True, buckets=REQUEST_BUCKETS
    )


class QueueCollector(Collector):
    """The job queue as it stood when scraped: jobs by status, and how long the oldest queued one
    has waited since it was submitted."""

    def __init__(self, counts: dict[str, int], oldest_queued: datetime | None, now: datetime) -> None:
        self.counts = counts
        self.oldest_queued = oldest_queued
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("docextract_jobs", "Jobs queued or running now.", labels=["status"])
        for status in ACTIVE:
            jobs.add_metric([status], self.counts.get(status, 0))
        yield jobs
        age = (self.now - self.oldest_queued).total_seconds() if self.oldest_queued else 0.0
        yield GaugeMetricFamily(
            "docextract_jobs_oldest_queued_age_seconds",
            "Seconds since the oldest queued job was submitted (0: none queued).",
            value=max(age, 0.0),
        )


async def read_queue(sessions: async_sessionmaker[AsyncSession]) -> QueueCollector:
    """One grouped query over the active jobs (indexed by status)."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(JobRecord.status, func.count(), func.min(JobRecord.created_at))
                .where(JobRecord.status.in_(ACTIVE))
                .group_by(JobRecord.status)
            )
        ).all()
    counts = {status: count for status, count, _ in rows}
    oldest = next((first for status, _, first in rows if status == QUEUED), None)
    return QueueCollector(counts, oldest, utcnow())


class MetricsController(PrometheusController):
    """The library's ``/metrics`` controller, with the queue added: the database is the jobs' truth,
    so every API process reports the same queue, computed now rather than written by each process."""

    @get(include_in_schema=False)
    async def get(self, services: NamedDependency[Services]) -> Response[bytes]:
        queue = CollectorRegistry()
        try:
            queue.register(await read_queue(services.sessions))
        except Exception:  # the database is down: the other metrics matter most now
            logger.exception("metrics_queue_unreadable")
        body = generate_latest(metrics.registry()) + generate_latest(queue)
        # The classic text format, the one generate_latest writes.
        return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
