"""Alembic, driven from code: upgrade, report the current revision, refuse a database from the future."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseNewerThanCode(RuntimeError):
    """The database was migrated by a newer docextract; running older code on it could corrupt it."""


class DatabaseBehind(RuntimeError):
    """Migrations are pending and automatic migration is off."""


@dataclass(frozen=True)
class MigrationState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migration_state(engine: AsyncEngine) -> MigrationState:
    """Where the database stands; raises ``DatabaseNewerThanCode`` for an unknown revision."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    script = _script()
    head = script.get_current_head()
    assert head is not None
    if current is not None and not _known(script, current):
        raise DatabaseNewerThanCode(
            f"The database is at migration {current!r}, which this version of docextract does not "
            f"know (its newest is {head!r}). It was upgraded by a newer release: run that release, "
            "or restore a backup made before the upgrade."
        )
    return MigrationState(current=current, head=head)


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several types for an unknown id
        return False


MIGRATION_LOCK_ID = 0x646F6378  # "docx": PostgreSQL advisory lock held while migrating


async def upgrade(engine: AsyncEngine, revision: str = "head") -> MigrationState:
    """Apply migrations up to ``revision`` in one transaction. On PostgreSQL an advisory lock makes
    processes that start together (API replicas, workers) migrate one after the other: the later
    ones find nothing left to do."""
    await migration_state(engine)  # refuse before touching a database from the future
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        await conn.run_sync(_upgrade, revision)
    return await migration_state(engine)


async def ensure_current(engine: AsyncEngine, *, auto_migrate: bool) -> MigrationState:
    """Start-up check: upgrade when allowed, else refuse to run on a database that is behind."""
    state = await migration_state(engine)
    if state.is_current:
        return state
    if not auto_migrate:
        raise DatabaseBehind(
            f"The database is at migration {state.current!r}; this release needs {state.head!r}. "
            "Run `docextract db upgrade` (or set DOCEXTRACT_DATABASE_AUTO_MIGRATE=true)."
        )
    return await upgrade(engine)
