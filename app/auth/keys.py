"""API keys: ``dxk_<id>_<secret>``. The id is public (it names the key in logs and lists); only the
SHA-256 of the secret is stored, and it is compared in constant time. Secrets have 256 bits of
entropy, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKeyRecord, AppStateRecord, utcnow
from app.lib.errors import RequestError
from app.lib.problems import API_KEY_NOT_FOUND, INVALID_REQUEST

PREFIX = "dxk"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
LAST_USED_RESOLUTION = timedelta(minutes=1)
BOOTSTRAP_MARKER = "bootstrap_admin_key"


class Scope(StrEnum):
    ADMIN = "admin"
    """Manage schemas and keys (and everything ``extract`` may do)."""
    EXTRACT = "extract"
    """Read schemas and run extractions."""
    REVIEW = "review"
    """List, read and review extractions (the review page); nothing else."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and what it may do."""

    key_id: str
    name: str
    scopes: frozenset[str]
    team: str | None = None
    teammates: frozenset[str] = frozenset()
    """The ids of the other keys of ``team`` (revoked ones included: what they made stays the team's)."""

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def allows(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    @property
    def owners(self) -> frozenset[str]:
        """Whose objects this key sees (unless it is an admin key): its own and its team's."""
        return self.teammates | {self.key_id}

    def sees(self, owner: str | None) -> bool:
        """Keys see what they or their team created (extractions, jobs, batches, webhooks); admin
        keys see everything."""
        return self.is_admin or owner in self.owners

    def owned(self, column: Any) -> Any:
        """The SQL condition for the rows of ``column`` (a ``created_by``) this key sees."""
        return true() if self.is_admin else column.in_(sorted(self.owners))

    @property
    def memory_owner(self) -> str:
        """Who owns what this key teaches (sender memory): its team, or the key alone."""
        return f"team:{self.team}" if self.team else f"key:{self.key_id}"


ANONYMOUS_ADMIN = Principal(key_id="auth-disabled", name="auth disabled", scopes=frozenset(Scope))


@dataclass(frozen=True)
class IssuedKey:
    key: str
    """The full key, shown once and never stored."""
    record: ApiKeyRecord


def secret_hash(secret: str) -> str:
    """What is stored of a secret (a key's, a session cookie's): its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def parse_scopes(values: list[str]) -> list[str]:
    scopes = sorted(set(values))
    unknown = [s for s in scopes if s not in Scope.__members__.values()]
    if not scopes or unknown:
        raise RequestError(
            INVALID_REQUEST,
            f"Scopes must be a non-empty list of {[s.value for s in Scope]}; got {values!r}.",
            errors=[
                {
                    "pointer": "/scopes",
                    "detail": f"unknown scopes {unknown}" if unknown else "empty",
                }
            ],
        )
    return scopes


class ApiKeys:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str, scopes: list[str], team: str | None = None) -> IssuedKey:
        if not name.strip() or len(name) > 100:
            raise RequestError(
                INVALID_REQUEST,
                "A key name is 1 to 100 characters.",
                errors=[{"pointer": "/name", "detail": "1 to 100 characters"}],
            )
        if team is not None and not (0 < len(team.strip()) <= 64):
            raise RequestError(
                INVALID_REQUEST,
                "A team name is 1 to 64 characters.",
                errors=[{"pointer": "/team", "detail": "1 to 64 characters"}],
            )
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=key_id,
            name=name.strip(),
            secret_sha256=secret_hash(secret),
            scopes=parse_scopes(scopes),
            team=team.strip() if team else None,
        )
        self.session.add(record)
        await self.session.commit()
        return IssuedKey(key=f"{PREFIX}_{key_id}_{secret}", record=record)

    async def list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        query = select(ApiKeyRecord).order_by(ApiKeyRecord.created_at, ApiKeyRecord.id)
        if not include_revoked:
            query = query.where(ApiKeyRecord.revoked_at.is_(None))
        return list(await self.session.scalars(query))

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        record = await self.session.get(ApiKeyRecord, key_id)
        if record is None:
            raise RequestError(API_KEY_NOT_FOUND, f"No API key has the id {key_id!r}.")
        if record.revoked_at is None:
            record.revoked_at = utcnow()
            await self.session.commit()
        return record

    async def authenticate(self, key: str) -> Principal | None:
        """The principal for a valid, unrevoked key; ``None`` otherwise."""
        parts = split_key(key)
        record = await self.session.get(ApiKeyRecord, parts[0]) if parts else None
        expected = record.secret_sha256 if record else _DUMMY_HASH
        matches = hmac.compare_digest(expected, secret_hash(parts[1] if parts else key))
        if record is None or not matches or record.revoked_at is not None:
            return None
        now = utcnow()
        if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
            record.last_used_at = now
            await self.session.commit()
        return await self.principal(record)

    async def principal(self, record: ApiKeyRecord) -> Principal:
        teammates: frozenset[str] = frozenset()
        if record.team is not None:
            query = select(ApiKeyRecord.id).where(
                ApiKeyRecord.team == record.team, ApiKeyRecord.id != record.id
            )
            teammates = frozenset(await self.session.scalars(query))
        return Principal(
            key_id=record.id,
            name=record.name,
            scopes=frozenset(record.scopes),
            team=record.team,
            teammates=teammates,
        )

    async def bootstrap_admin_key(self) -> IssuedKey | None:
        """On the very first start, issue one admin key. Never again, even if all keys are revoked."""
        if await self.session.get(AppStateRecord, BOOTSTRAP_MARKER) is not None:
            return None
        self.session.add(AppStateRecord(key=BOOTSTRAP_MARKER, value=utcnow().isoformat()))
        try:
            await self.session.flush()
        except IntegrityError:  # another process won the race
            await self.session.rollback()
            return None
        if await self.list():
            await self.session.commit()  # keys were made before the first start (CLI)
            return None
        return await self.create("bootstrap admin", [Scope.ADMIN])
