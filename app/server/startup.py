"""What must be true before the API takes requests, run once per start (before workers fork).

``docextract serve`` prepares once in its own process, then marks the environment its uvicorn
workers inherit: their lifespans only check the database is current, so each start-up fact (the
migration, the built-in schemas, the first admin key) is said once, not once per process."""

from __future__ import annotations

import os
import sys

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.keys import ApiKeys
from app.db.migrate import ensure_current
from app.lib.settings import Settings
from app.registry.builtins import default_builtin_dir, load_builtin_schemas
from app.registry.validation import schema_limits
from app.server.retention import purge_all

logger = structlog.get_logger(__name__)
PREPARED_ENV = "_DOCEXTRACT_PREPARED"
"""Set by ``docextract serve`` after ``prepare``; inherited by the workers it starts."""


async def prepare_app(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The app's lifespan step: ``prepare``, unless ``docextract serve`` already did for this start."""
    if os.environ.get(PREPARED_ENV) == "1":
        await ensure_current(engine, auto_migrate=False)  # still refuse a database moved since
        return
    await prepare(settings, engine, sessions)


async def prepare(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Migrate (or refuse), load built-in schemas, issue the first admin key, warn about auth."""
    state = await ensure_current(engine, auto_migrate=settings.database.auto_migrate)
    logger.info("database_ready", dialect=engine.dialect.name, migration=state.current)
    async with sessions() as session:
        purged = await purge_all(session)
    if any(purged.values()):
        logger.info("purged", **purged)
    if settings.registry.load_builtins:
        directory = settings.registry.builtin_dir or default_builtin_dir()
        await load_builtin_schemas(sessions, directory, schema_limits(settings))
    if settings.auth.disabled:
        logger.warning(
            "auth_disabled",
            message="DOCEXTRACT_AUTH_DISABLED is set: every request is treated as admin. "
            "Never expose this service like this.",
        )
    elif settings.auth.bootstrap_admin_key:
        async with sessions() as session:
            issued = await ApiKeys(session).bootstrap_admin_key()
        if issued is not None:
            sys.stderr.flush()  # the log lines so far first, then the box on its own
            sys.stdout.write(admin_key_box(issued.key))
            sys.stdout.flush()
            logger.warning("bootstrap_admin_key_issued", key_id=issued.record.id)


def admin_key_box(key: str) -> str:
    """The first admin key framed on stdout, apart from the log lines: it is shown only this once."""
    lines = [
        "docextract: first start, so an admin API key was created:",
        "",
        f"    {key}",
        "",
        "It is shown only now: store it. Send it as `Authorization: Bearer <key>`;",
        "create keys for your apps with it (POST /keys or `docextract keys create`).",
    ]
    rule = "═" * max(len(line) for line in lines)
    return "\n".join(["", rule, *lines, rule, ""]) + "\n"
