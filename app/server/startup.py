"""What must be true before the API takes requests, run once per start (before workers fork)."""

from __future__ import annotations

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
            sys.stdout.write(
                "\ndocextract: first start, so an admin API key was created. It is shown only now;"
                f" store it:\n\n    {issued.key}\n\n"
            )
            sys.stdout.flush()
            logger.warning("bootstrap_admin_key_issued", key_id=issued.record.id)
