"""``docextract serve`` and ``docextract worker``: the long-running processes."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import asyncio
import os
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
    uvicorn.run(
        "app.server.core:create_app",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        workers=workers or settings.server.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


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
