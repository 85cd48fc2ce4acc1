"""The document password of an async job at rest: only encrypted in the jobs row, used to open the
PDF when the job runs, wiped when it ends; a password the runner cannot decrypt fails the job for
good. On SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from app.auth.keys import Scope
from app.jobs.passwords import ENCRYPTED, KEY_FILE, JobPasswords
from app.lib.settings import EngineSettings, JobSettings
from app.server.core import create_app
from tests.conftest import issue_key, make_settings
from tests.documents import encrypted_pdf
from tests.fake_sglang import FakeSGLang, delay
from tests.helpers import wait_for
from tests.jobs_harness import invoice_pdf, job_settings, running

Client = AsyncTestClient[Litestar]
PASSWORD = "s3cret-pw"


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang() as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, database_url: str, fake: FakeSGLang) -> AsyncIterator[Client]:
    """The embedded default: no DOCEXTRACT_JOBS_SECRET_KEY, so a key file in the data directory."""
    settings = make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=fake.url, engine_retries=0),
        jobs=JobSettings(lease_s=2.0, poll_s=0.1, retry_base_s=0.05),
    )
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        yield client


@pytest.fixture
async def headers(db: Any, client: Client) -> dict[str, str]:
    return {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="erp")}


async def submit_locked(client: Client, headers: dict[str, str], password: str = PASSWORD) -> str:
    response = await client.post(
        "/extract/invoice",
        content=encrypted_pdf(invoice_pdf(), PASSWORD),
        headers={
            **headers,
            "Content-Type": "application/pdf",
            "Prefer": "respond-async",
            "X-Document-Password": password,
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def stored_params(db: Any, job_id: str) -> str:
    """The jobs row's params column as the database holds it (no ORM in between)."""
    async with db() as session:
        row = await session.execute(text("SELECT params FROM jobs WHERE id = :id"), {"id": job_id})
        value = row.scalar_one()
    return value if isinstance(value, str) else orjson.dumps(value).decode()


async def test_the_password_is_stored_encrypted_used_and_wiped(
    client: Client, headers: dict[str, str], db: Any, fake: FakeSGLang, tmp_path: Path
) -> None:
    fake.script(delay(1.0))  # the job is still running when the row is read
    job_id = await submit_locked(client, headers)
    stored = await stored_params(db, job_id)
    assert "s3cret" not in stored and '"password"' not in stored  # in no JSON spelling
    token = orjson.loads(stored)[ENCRYPTED]
    key_file = tmp_path / KEY_FILE  # no DOCEXTRACT_JOBS_SECRET_KEY: the data directory's key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Fernet(key_file.read_bytes().strip()).decrypt(token.encode()).decode() == PASSWORD

    finished = await wait_for(client, headers, job_id)
    assert finished["status"] in ("succeeded", "needs_review"), finished  # the PDF was opened
    assert ENCRYPTED not in await stored_params(db, job_id)


async def test_a_wrong_password_fails_and_is_wiped(client: Client, headers: dict[str, str], db: Any) -> None:
    job_id = await submit_locked(client, headers, password="not-it")
    finished = await wait_for(client, headers, job_id)
    assert finished["status"] == "failed"
    assert finished["error"]["type"].endswith("/document-password-incorrect")
    assert ENCRYPTED not in await stored_params(db, job_id)


async def test_cancelling_wipes_the_password(
    client: Client, headers: dict[str, str], db: Any, fake: FakeSGLang
) -> None:
    fake.script(delay(3.0))
    job_id = await submit_locked(client, headers)
    assert ENCRYPTED in await stored_params(db, job_id)
    assert (await client.delete(f"/jobs/{job_id}", headers=headers)).json()["status"] == "cancelled"
    assert ENCRYPTED not in await stored_params(db, job_id)


async def test_a_password_under_another_key_fails_the_job_at_once(tmp_path: Path, database_url: str) -> None:
    """The runner's key is not the one the password was encrypted with (a worker without the shared
    DOCEXTRACT_JOBS_SECRET_KEY, or a changed key): one attempt, a clear error, nothing left behind."""
    runner_key, other_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with FakeSGLang() as fake:
        settings = job_settings(
            tmp_path,
            database_url,
            fake.url,
            runner="inprocess",
            redis_url="redis://127.0.0.1:1/0",
            secret_key=runner_key,
            max_attempts=5,
        )
        async with running(settings) as harness:
            token = JobPasswords([other_key]).seal(PASSWORD)
            job_id = await harness.submit(encrypted_pdf(invoice_pdf(), PASSWORD), password_encrypted=token)
            job = await harness.wait(job_id)
            assert fake.requests == []  # failed before any extraction work
    assert job.status == "failed" and job.attempts == 1
    assert job.error is not None
    assert job.error["category"] == "password_unreadable" and job.error["phase"] == "internal"
    assert "submit the document again" in job.error["detail"] and job.error["retryable"] is True
    assert ENCRYPTED not in job.params
