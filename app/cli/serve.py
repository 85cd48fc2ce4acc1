"""``docextract serve`` and ``docextract worker``: the long-running processes."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from app.cli.common import cli_settings, run_with_database


@click.command()
@click.option("--host", help="Interface to bind [DOCEXTRACT_SERVER_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port [DOCEXTRACT_SERVER_PORT, default 8000].")
@click.option("--workers", type=int, help="Worker processes [DOCEXTRACT_SERVER_WORKERS, default 1].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the API with uvicorn (migrates, loads built-in schemas, issues the first key)."""
    import uvicorn

    from app.db.engine import create_session_maker
    from app.lib.settings import ConfigurationError
    from app.regions.factory import build_region_detector
    from app.server.startup import PREPARED_ENV, prepare

    settings = cli_settings()
    try:
        build_region_detector(settings.layout)  # fail here, not in every worker, when layout cannot work
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc

    async def once(engine: Any) -> None:
        await prepare(settings, engine, create_session_maker(engine))

    run_with_database(settings, once, migrate=False)
    os.environ[PREPARED_ENV] = "1"  # the app in this process and each worker: no second prepare
    workers = workers or settings.server.workers
    with ExitStack() as stack:
        if workers > 1:
            stack.enter_context(shared_metrics(settings.metrics.dir))
        uvicorn.run(
            "app.server.core:create_app",
            factory=True,
            host=host or settings.server.host,
            port=port or settings.server.port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=True,
        )


@contextmanager
def shared_metrics(directory: Path | None) -> Iterator[Path]:
    """The worker processes of one server write their metrics to one directory, so ``/metrics``
    (served by any of them) adds them all up. It is emptied first: values a previous run left
    would count again. Set here, before uvicorn spawns the workers, because prometheus-client
    reads it once at import; a directory of our own (unset) is removed when the server stops."""
    from app.lib import metrics

    if directory is None:
        with tempfile.TemporaryDirectory(prefix="docextract-metrics-") as made:
            os.environ[metrics.MULTIPROCESS_ENV] = made
            yield Path(made)
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[metrics.MULTIPROCESS_ENV] = str(directory)
    yield directory


@click.command()
def worker() -> None:
    """Run jobs from the Redis queue (DOCEXTRACT_JOBS_RUNNER=redis) and deliver webhooks.

    Stops on SIGTERM/SIGINT after the jobs in hand finish (or their leases let another worker
    take them over)."""
    from app.db.migrate import DatabaseBehind, DatabaseNewerThanCode
    from app.jobs.worker import run_worker
    from app.lib.settings import ConfigurationError

    settings = cli_settings()
    try:
        asyncio.run(run_worker(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    except (DatabaseNewerThanCode, DatabaseBehind) as exc:
        raise click.ClickException(str(exc)) from exc
