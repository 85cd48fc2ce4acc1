"""``docextract worker``: one process pulling jobs from Redis, recovering lost ones, delivering
webhooks. Run as many as the engine can keep busy, on any hosts that reach Redis and the database."""

from __future__ import annotations

import structlog
from prometheus_client import start_http_server

from app.db.migrate import ensure_current
from app.jobs.runners import RedisWorker
from app.jobs.services import Services
from app.lib import metrics
from app.lib.settings import ConfigurationError, Settings

logger = structlog.get_logger(__name__)


async def run_worker(settings: Settings) -> None:
    if settings.jobs.runner != "redis":
        raise ConfigurationError(
            "docextract worker pulls jobs from Redis: set DOCEXTRACT_JOBS_RUNNER=redis (and "
            "DOCEXTRACT_JOBS_REDIS_URL) for the API and the workers. With the default "
            "DOCEXTRACT_JOBS_RUNNER=inprocess the API process runs jobs itself."
        )
    if settings.is_sqlite:
        logger.warning("worker_on_sqlite", message="Workers on several hosts need PostgreSQL.")
    services = Services.build(settings)
    port = settings.metrics.worker_port
    # Its own /metrics: workers run apart from the API (other hosts, other containers).
    exporter = start_http_server(port, settings.server.host, metrics.registry()) if port else None
    try:
        # Migrate (or refuse) only: schemas and keys are the API's business.
        await ensure_current(services.database, auto_migrate=settings.database.auto_migrate)
        deliverer = services.deliverer
        worker = RedisWorker(
            services.executor,
            services.sessions,
            settings.jobs,
            background=[lambda: deliverer.run(settings.jobs.poll_s)],
        )
        logger.info("worker_started", queue=settings.jobs.queue_name, concurrency=settings.jobs.concurrency)
        await worker.run()
    finally:
        await services.aclose()
        if exporter is not None:
            exporter[0].shutdown()
