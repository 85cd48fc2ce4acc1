"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.models import ApiKeyRecord, SchemaRecord, SchemaVersionRecord
from app.lib.jsonpointer import escape


def object_schema(**properties: Any) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties or {"total": {"type": "number", "description": "Amount due."}},
    }


async def stored_state(db: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Everything the registry and key store hold, to prove a failed request changed nothing."""
    async with db() as session:
        schemas = [
            (s.name, s.latest_version, s.deprecated_at)
            for s in await session.scalars(select(SchemaRecord).order_by(SchemaRecord.name))
        ]
        versions = [
            (v.schema_id, v.version, v.sha256, v.schema_json)
            for v in await session.scalars(
                select(SchemaVersionRecord).order_by(
                    SchemaVersionRecord.schema_id, SchemaVersionRecord.version
                )
            )
        ]
        keys = [
            (k.id, k.revoked_at)
            for k in await session.scalars(select(ApiKeyRecord).order_by(ApiKeyRecord.id))
        ]
    return {"schemas": schemas, "versions": versions, "keys": keys}


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["request_id"]
    return body


def leaf_pointers(value: Any, at: str = "") -> list[str]:
    """JSON Pointers of every non-container value in ``value``."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_pointers(v, f"{at}/{escape(k)}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_pointers(v, f"{at}/{i}")]
    return [at]


FINISHED = ("succeeded", "needs_review", "failed", "cancelled")


async def wait_for(client: AsyncTestClient[Litestar], headers: dict[str, str], job_id: str) -> dict[str, Any]:
    """The job once it has finished (any of ``FINISHED``), polled through the API."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(f"/jobs/{job_id}", headers=headers)).json()
        if job["status"] in FINISHED:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job_id} did not finish")


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format as ``{(sample name, labels): value}``, read by prometheus-client's own
    parser (so what a test reads is what Prometheus would)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and wanted <= have)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app (any ASGI app) through its real lifespan on a free loopback port, in a thread;
    yields its base URL. For tests that need a real socket: browsers, clients, body limits."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def key_for(database_url: str, *scopes: Any) -> str:
    """A new API key in the database of an app that runs elsewhere (a served one): its own
    engine, not the app's pool."""
    from app.auth.keys import ApiKeys

    async def issue() -> str:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                return (await ApiKeys(session).create("test", list(scopes))).key
        finally:
            await engine.dispose()

    return asyncio.run(issue())
