"""``Idempotency-Key`` for POST routes: a retried request gets the original response, not a second
job, schema version or batch.

The key is reserved (inserted) before the work starts, in its own committed transaction, so a
duplicate arriving while the first is still running is told to retry (409) instead of doing the work
twice. A request that fails releases its key: errors are not replayed, the client may try again.
The fingerprint is of what the request *means* (route, parameters, content hashes), not its raw
bytes, so a multipart upload with a different boundary is still the same request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
import orjson
from litestar import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import IdempotencyRecord, utcnow
from app.lib.problems import (
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_IDEMPOTENCY_KEY,
    Problem,
)

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
STALE = timedelta(minutes=10)
"""A reservation older than this was left by a process that died mid-request: it may be taken over."""
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_KEPT_HEADERS = ("location", "retry-after")


def fingerprint(*parts: Any) -> str:
    """A stable hash of the request's meaning (any JSON value: key order does not count)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def idempotent(
    request: Request[Any, Any, Any],
    owner: str,
    print_: str,
    handle: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    """Run ``handle`` once per (owner, key); without the header, just run it."""
    key = request.headers.get(HEADER)
    if key is None:
        return await handle()
    if not _KEY.match(key):
        raise Problem(INVALID_IDEMPOTENCY_KEY, "Idempotency-Key must be 1-255 printable ASCII characters.")
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        replay = await _reserve(session, owner, key, print_)
    if replay is not None:
        return replay
    try:
        response = await handle()
    except BaseException:
        async with sessions() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.owner == owner, IdempotencyRecord.key == key
                )
            )
            await session.commit()
        raise
    async with sessions() as session:
        record = await _get(session, owner, key)
        if record is not None:
            record.status_code = response.status_code
            record.headers = {
                name: value for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS
            }
            record.body = orjson.dumps(msgspec.to_builtins(response.content)).decode()
            await session.commit()
    return response


async def _get(session: AsyncSession, owner: str, key: str) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)
    )


async def _reserve(session: AsyncSession, owner: str, key: str, print_: str) -> Response[Any] | None:
    now = utcnow()
    session.add(IdempotencyRecord(owner=owner, key=key, fingerprint=print_, expires_at=now + KEEP))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
    else:
        return None
    record = await _get(session, owner, key)
    if record is None or record.expires_at <= now:  # expired meanwhile (purge pending): start over
        if record is not None:
            await session.delete(record)
            await session.commit()
        return await _reserve(session, owner, key, print_)
    if record.fingerprint != print_:
        raise Problem(
            IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for a different request; use a new key.",
        )
    if record.status_code is None:
        if record.created_at > now - STALE:
            raise Problem(
                IDEMPOTENCY_KEY_IN_USE,
                "A request with this Idempotency-Key is still in progress.",
                headers={"Retry-After": "1"},
            )
        record.created_at = now  # its process died: this request takes the reservation over
        await session.commit()
        return None
    return Response(
        orjson.loads(record.body or "null"),
        status_code=record.status_code,
        headers={**record.headers, REPLAYED_HEADER: "true"},
    )


async def purge_idempotency_keys(session: AsyncSession) -> int:
    result = await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
