"""The schema registry: named schemas with immutable, numbered versions.

Versions are numbered by an optimistic compare-and-set on ``schemas.latest_version``: the writer
that moves it from n to n+1 owns version n+1; a writer that loses re-reads and tries again (and,
if the winner stored the same content, returns that version instead of adding one). This needs no
dialect-specific locking, so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import func, select, true, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SchemaRecord, SchemaVersionRecord, utcnow
from app.lib.canonical import NotCanonicalizable, canonical_sha256
from app.lib.errors import ExtractionError, SchemaError
from app.lib.problems import (
    INVALID_SCHEMA,
    SCHEMA_DEPRECATED,
    SCHEMA_EXISTS,
    SCHEMA_NOT_FOUND,
    SCHEMA_NOT_SUPPORTED,
    SCHEMA_VERSION_NOT_FOUND,
)
from app.registry.refs import SchemaRef
from app.registry.validation import SchemaLimits, validate_name, validate_schema
from app.schema.compiled import CompiledSchema, compile_schema
from app.schema.decoding import grammar_error

MAX_ATTEMPTS = 20
logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SchemaVersion:
    """A stored version as the rest of the application sees it."""

    name: str
    version: int
    description: str | None
    schema: dict[str, Any]
    sha256: str
    source: str
    created_at: datetime
    deprecated_at: datetime | None
    latest_version: int

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def require_active(self) -> None:
        """409 schema-deprecated: nothing is extracted against a deprecated schema."""
        if self.deprecated_at is not None:
            raise ExtractionError(
                SCHEMA_DEPRECATED, f"The schema {self.name!r} is deprecated; restore it to extract."
            )

    @property
    def compiled(self) -> CompiledSchema:
        """The schema compiled once per content (cached by ``sha256``)."""
        return compile_schema(self.schema, self.sha256)


@dataclass(frozen=True)
class Page:
    items: list[SchemaVersion]
    total: int


def _view(schema: SchemaRecord, version: SchemaVersionRecord) -> SchemaVersion:
    return SchemaVersion(
        name=schema.name,
        version=version.version,
        description=version.description,
        schema=orjson.loads(version.schema_json),
        sha256=version.sha256,
        source=version.source,
        created_at=version.created_at,
        deprecated_at=schema.deprecated_at,
        latest_version=schema.latest_version,
    )


class SchemaRegistry:
    def __init__(self, session: AsyncSession, limits: SchemaLimits) -> None:
        self.session = session
        self.limits = limits

    def _checked(self, schema: Any, at: str) -> str:
        validate_schema(schema, self.limits, at=at)
        if (reason := grammar_error(schema)) is not None:
            raise SchemaError(
                SCHEMA_NOT_SUPPORTED,
                f"Constrained decoding cannot compile this schema: {reason}",
                errors=[{"pointer": at, "detail": reason}],
            )
        try:
            return canonical_sha256(schema)
        except NotCanonicalizable as exc:
            raise SchemaError(
                INVALID_SCHEMA,
                f"The schema has a value JSON cannot carry exactly: {exc}",
                errors=[{"pointer": at, "detail": str(exc)}],
            ) from exc

    async def create(
        self,
        name: str,
        schema: Any,
        description: str | None,
        *,
        source: str,
        created_by: str | None = None,
    ) -> SchemaVersion:
        """Register a new name with version 1."""
        validate_name(name)
        sha = self._checked(schema, "/schema")
        now = utcnow()
        record = SchemaRecord(name=name, latest_version=1, created_at=now, updated_at=now)
        version = SchemaVersionRecord(
            version=1,
            description=description,
            schema_json=orjson.dumps(schema).decode(),
            sha256=sha,
            source=source,
            created_by=created_by,
            created_at=now,
        )
        record.versions = [version]
        self.session.add(record)
        try:
            await self.session.commit()
        except IntegrityError as exc:
            await self.session.rollback()
            raise SchemaError(
                SCHEMA_EXISTS,
                f"A schema named {name!r} already exists.",
                errors=[{"pointer": "/name", "detail": "name is taken"}],
            ) from exc
        return _view(record, version)

    async def add_version(
        self,
        name: str,
        schema: Any,
        description: str | None,
        *,
        source: str,
        created_by: str | None = None,
    ) -> tuple[SchemaVersion, bool]:
        """Add a version, or return the latest when its content is identical (``created`` False).

        Without a description the new version keeps the previous one's.
        """
        sha = self._checked(schema, "/schema")
        schema_json = orjson.dumps(schema).decode()
        for _ in range(MAX_ATTEMPTS):
            record = await self._schema(name)
            if record.deprecated_at is not None:
                raise SchemaError(SCHEMA_DEPRECATED, f"The schema {name!r} is deprecated.")
            latest = await self._version(record, record.latest_version)
            if latest.sha256 == sha:
                return _view(record, latest), False
            number = record.latest_version + 1
            now = utcnow()
            try:
                claimed = await self.session.execute(
                    update(SchemaRecord)
                    .where(SchemaRecord.id == record.id, SchemaRecord.latest_version == number - 1)
                    .values(latest_version=number, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    await self.session.rollback()
                    logger.debug("schema_version_race_lost", name=name, version=number)
                    continue
                version = SchemaVersionRecord(
                    schema_id=record.id,
                    version=number,
                    description=description if description is not None else latest.description,
                    schema_json=schema_json,
                    sha256=sha,
                    source=source,
                    created_by=created_by,
                    created_at=now,
                )
                self.session.add(version)
                await self.session.commit()
            except (IntegrityError, OperationalError) as exc:
                # Lost a race (or SQLite's busy timeout passed): re-read and try again.
                await self.session.rollback()
                logger.debug("schema_version_race_lost", name=name, version=number, error=type(exc).__name__)
                continue
            self.session.expire(record)
            return _view(await self._schema(name), version), True
        raise RuntimeError(f"could not add a version to {name!r} after {MAX_ATTEMPTS} attempts")

    async def get(self, ref: SchemaRef) -> SchemaVersion:
        record = await self._schema(ref.name)
        return _view(record, await self._version(record, ref.version or record.latest_version))

    async def list_latest(self, *, limit: int, offset: int, include_deprecated: bool) -> Page:
        """The latest version of each schema, by name."""
        condition = true() if include_deprecated else SchemaRecord.deprecated_at.is_(None)
        total = await self.session.scalar(select(func.count()).select_from(SchemaRecord).where(condition))
        rows = await self.session.execute(
            select(SchemaRecord, SchemaVersionRecord)
            .join(
                SchemaVersionRecord,
                (SchemaVersionRecord.schema_id == SchemaRecord.id)
                & (SchemaVersionRecord.version == SchemaRecord.latest_version),
            )
            .where(condition)
            .order_by(SchemaRecord.name)
            .limit(limit)
            .offset(offset)
        )
        return Page([_view(s, v) for s, v in rows], total or 0)

    async def list_versions(self, name: str, *, limit: int, offset: int) -> Page:
        record = await self._schema(name)
        rows = await self.session.scalars(
            select(SchemaVersionRecord)
            .where(SchemaVersionRecord.schema_id == record.id)
            .order_by(SchemaVersionRecord.version)
            .limit(limit)
            .offset(offset)
        )
        return Page([_view(record, v) for v in rows], record.latest_version)

    async def set_deprecated(self, name: str, *, deprecated: bool) -> SchemaVersion:
        """Deprecate (or restore) a schema; repeating either is harmless."""
        record = await self._schema(name)
        if (record.deprecated_at is not None) != deprecated:
            record.deprecated_at = utcnow() if deprecated else None
            record.updated_at = utcnow()
            await self.session.commit()
        return _view(record, await self._version(record, record.latest_version))

    async def sources(self, name: str) -> set[str]:
        """Who made the versions of ``name`` (used to refresh untouched built-ins)."""
        record = await self._schema(name)
        rows = await self.session.scalars(
            select(SchemaVersionRecord.source).where(SchemaVersionRecord.schema_id == record.id).distinct()
        )
        return set(rows)

    async def _schema(self, name: str) -> SchemaRecord:
        record = await self.session.scalar(
            select(SchemaRecord).where(SchemaRecord.name == name).execution_options(populate_existing=True)
        )
        if record is None:
            raise SchemaError(SCHEMA_NOT_FOUND, f"No schema is named {name!r}.")
        return record

    async def _version(self, record: SchemaRecord, number: int) -> SchemaVersionRecord:
        version = await self.session.scalar(
            select(SchemaVersionRecord).where(
                SchemaVersionRecord.schema_id == record.id, SchemaVersionRecord.version == number
            )
        )
        if version is None:
            raise SchemaError(
                SCHEMA_VERSION_NOT_FOUND,
                f"The schema {record.name!r} has no version {number} (latest is {record.latest_version}).",
            )
        return version
