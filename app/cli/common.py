"""What several ``docextract`` commands share: loading settings, running database work, resolving a
schema, error text. Heavy modules are imported inside the functions (see ``app.cli``)."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from app.lib.errors import DocextractError
    from app.lib.problems import Problem
    from app.lib.settings import Settings
    from app.registry.service import SchemaVersion

T = TypeVar("T")


def cli_settings() -> Settings:
    """Load the settings (a bad value becomes a one-line error) and configure logging from them."""
    from app.lib import tracing
    from app.lib.logging import configure_logging
    from app.lib.settings import ConfigurationError, load_settings

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.app.log_level, settings.app.log_format)
    tracing.setup_tracing(settings.app.tracing)
    return settings


def run_with_database(settings: Settings, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run ``work(engine_or_session)`` with a fresh engine, turning known failures into messages."""
    from app.db.engine import create_engine, create_session_maker
    from app.db.migrate import DatabaseBehind, DatabaseNewerThanCode, ensure_current
    from app.lib.errors import DocextractError
    from app.lib.problems import Problem
    from app.registry.builtins import default_builtin_dir, load_builtin_schemas
    from app.registry.validation import schema_limits

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


def is_schema_file(ref: str) -> bool:
    """``--schema`` names a file when it contains a path separator, or is an existing ``.json``
    file; anything else is a registered schema's ``name`` or ``name@version``."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(s in ref for s in separators) or (ref.endswith(".json") and Path(ref).is_file())


def resolve_schema(settings: Settings, ref: str) -> SchemaVersion:
    """A registered schema by ref, or a JSON Schema file unregistered (see ``is_schema_file``)."""
    from app.registry.refs import parse_ref
    from app.registry.service import SchemaRegistry
    from app.registry.validation import schema_limits

    if is_schema_file(ref):
        return schema_from_file(settings, Path(ref))
    return run_with_database(
        settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(ref))
    )


def schema_from_file(settings: Settings, path: Path) -> SchemaVersion:
    """A JSON Schema file as an unregistered version (validated as registration would), named
    after the file (``sroie.schema.json`` -> ``sroie``). A file that cannot be used is a message."""
    import orjson

    from app.db.models import utcnow
    from app.lib.canonical import canonical_sha256
    from app.lib.errors import DocextractError
    from app.lib.problems import Problem
    from app.registry.service import SchemaVersion
    from app.registry.validation import schema_limits, validate_schema

    try:
        schema = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"Cannot read the schema file {path}: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"The schema file {path} is not valid JSON: {exc}") from exc
    try:
        validate_schema(schema, schema_limits(settings))
    except (Problem, DocextractError) as exc:
        raise click.ClickException(f"The schema file {path}: {problem_text(exc)}") from exc
    return SchemaVersion(
        name=path.stem.split(".")[0],
        version=0,
        description=None,
        schema=schema,
        sha256=canonical_sha256(schema),
        source="file",
        created_at=utcnow(),
        deprecated_at=None,
        latest_version=0,
    )
