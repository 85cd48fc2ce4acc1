"""What several ``docextract`` commands share: loading settings, running database work, error text."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from app.db.engine import create_engine, create_session_maker
from app.db.migrate import DatabaseBehind, DatabaseNewerThanCode, ensure_current
from app.lib import tracing
from app.lib.errors import DocextractError
from app.lib.logging import configure_logging
from app.lib.problems import Problem
from app.lib.settings import ConfigurationError, Settings, load_settings
from app.registry.builtins import default_builtin_dir, load_builtin_schemas
from app.registry.validation import schema_limits

T = TypeVar("T")


def cli_settings() -> Settings:
    """Load the settings (a bad value becomes a one-line error) and configure logging from them."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.app.log_level, settings.app.log_format)
    tracing.setup_tracing(settings.app.tracing)
    return settings


def run_with_database(settings: Settings, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run ``work(engine_or_session)`` with a fresh engine, turning known failures into messages."""

    async def main() -> T:
        engine = create_engine(settings)
        try:
            if not migrate:
                return await work(engine)
            await ensure_current(engine, auto_migrate=settings.database.auto_migrate)
            sessions = create_session_maker(engine)
            if settings.registry.load_builtins:  # `extract --schema invoice` works before any `serve`
                directory = settings.registry.builtin_dir or default_builtin_dir()
                await load_builtin_schemas(sessions, directory, schema_limits(settings))
            async with sessions() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (DatabaseNewerThanCode, DatabaseBehind) as exc:
        raise click.ClickException(str(exc)) from exc
    except (Problem, DocextractError) as exc:
        raise click.ClickException(problem_text(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"Cannot reach the database: {exc}") from exc


def problem_text(exc: Problem | DocextractError) -> str:
    """The problem's detail, then one indented line per schema error it carries."""
    lines = [str(exc.detail)]
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    lines += [f"  {e['pointer'] or '/'}: {e['detail']}" for e in extra.get("errors", [])]
    return "\n".join(lines)
