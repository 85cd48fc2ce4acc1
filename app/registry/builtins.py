"""Built-in schemas (``schemas/*.json``), registered at start-up when absent.

A user's schemas are never overwritten: a built-in name is refreshed with a new version only while
every version of it came from the built-in file and it is not deprecated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lib.errors import SchemaError
from app.lib.problems import SCHEMA_EXISTS, SCHEMA_NOT_FOUND
from app.registry.refs import SchemaRef
from app.registry.service import SchemaRegistry
from app.registry.validation import SchemaLimits

logger = structlog.get_logger(__name__)
SOURCE = "builtin"


def default_builtin_dir() -> Path:
    """Inside an installed wheel the files sit in the package; in a checkout, at the top level."""
    packaged = Path(__file__).parent / "builtin_schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schemas"


def read_builtin_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: orjson.loads(path.read_bytes()) for path in sorted(directory.glob("*.json"))}


async def load_builtin_schemas(
    sessions: async_sessionmaker[AsyncSession], directory: Path, limits: SchemaLimits
) -> dict[str, str]:
    """Register or refresh each built-in; returns what happened to each name."""
    outcome: dict[str, str] = {}
    for name, schema in read_builtin_schemas(directory).items():
        async with sessions() as session:
            registry = SchemaRegistry(session, limits)
            description = schema.get("description")
            try:
                await registry.create(name, schema, description, source=SOURCE)
                outcome[name] = "created"
                continue
            except SchemaError as exc:
                if exc.kind is not SCHEMA_EXISTS:
                    raise
            try:
                sources = await registry.sources(name)
                latest = await registry.get(SchemaRef(name))
            except SchemaError as exc:  # pragma: no cover - deleted between the two reads
                if exc.kind is SCHEMA_NOT_FOUND:
                    continue
                raise
            if sources != {SOURCE} or latest.deprecated_at is not None:
                outcome[name] = "kept (changed by a user)"
                continue
            _, created = await registry.add_version(name, schema, description, source=SOURCE)
            outcome[name] = "updated" if created else "unchanged"
    if outcome:
        logger.info("builtin_schemas", **outcome)
    return outcome
