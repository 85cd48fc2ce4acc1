"""Async extraction over HTTP: 202 + Location, job status and result, cancellation, batches (files
and zips), idempotency, backpressure, callback checks and retention, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from app.auth.keys import Scope
from app.db.models import (
    ApiKeyRecord,
    BatchRecord,
    DocumentRecord,
    ExtractionRecord,
    IdempotencyRecord,
    JobRecord,
    WebhookDeliveryRecord,
    WebhookEndpointRecord,
    utcnow,
)
from app.lib.settings import EngineSettings, JobSettings, WebhookSettings
from app.server.core import create_app
from app.server.retention import purge_all
from app.webhooks.events import EVENT_TYPES
from app.webhooks.signing import new_secret, verify
from tests.conftest import issue_key, make_settings
from tests.fake_sglang import FakeSGLang, delay
from tests.helpers import assert_problem, wait_for
from tests.jobs_harness import invoice_pdf
from tests.webhook_receiver import Receiver, eventually

Client = AsyncTestClient[Litestar]


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang() as server:
        yield server


def settings_for(tmp_path: Path, database_url: str, fake: FakeSGLang, **jobs: Any) -> Any:
    return make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=fake.url, engine_retries=0),
        jobs=JobSettings(**{"lease_s": 2.0, "poll_s": 0.1, "retry_base_s": 0.05, **jobs}),
        webhooks=WebhookSettings(allow_networks=[]),
    )


@pytest.fixture
async def client(tmp_path: Path, database_url: str, fake: FakeSGLang) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(settings_for(tmp_path, database_url, fake)), timeout=60) as client:
        yield client


@pytest.fixture
async def headers(db: Any, client: Client) -> dict[str, str]:
    return {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="erp")}


async def submit(
    client: Client, headers: dict[str, str], data: bytes | None = None, idempotency_key: str | None = None
) -> Any:
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return await client.post(
        "/extract/invoice",
        content=data or invoice_pdf(),
        headers={**headers, "Content-Type": "application/pdf", "Prefer": "respond-async", **extra},
    )


async def count(db: Any, model: Any, *where: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_async_extraction_answers_202_then_the_result(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    response = await submit(client, headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert response.headers["preference-applied"] == "respond-async"
    assert job["status"] == "queued" and job["schema"] == {"name": "invoice", "version": 1}
    finished = await wait_for(client, headers, job["id"])
    assert finished["status"] in ("succeeded", "needs_review")
    assert finished["progress"] == {"pages_done": 1, "pages_total": 1}
    result = await client.get(f"/jobs/{job['id']}/result", headers=headers)
    assert result.status_code == 200
    body = result.json()
    assert body["id"] == finished["extraction_id"] and body["status"] == finished["status"]
    assert (await client.get(f"/extractions/{body['id']}", headers=headers)).json() == body
    # ?async=true is the same as the Prefer header.
    other = await client.post(
        "/extract/invoice?async=true",
        content=invoice_pdf("Other"),
        headers={**headers, "Content-Type": "application/pdf"},
    )
    assert other.status_code == 202


async def test_the_job_is_stored_before_the_answer(client: Client, headers: dict[str, str], db: Any) -> None:
    response = await submit(client, headers)
    async with db() as session:
        job = await session.get(JobRecord, response.json()["id"])
        assert job is not None and await session.get(DocumentRecord, job.document_sha256) is not None


async def test_result_of_an_unfinished_job_is_409_with_retry_after(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    fake.script(delay(2.0))
    job = (await submit(client, headers)).json()
    pending = await client.get(f"/jobs/{job['id']}/result", headers=headers)
    problem = assert_problem(pending, 409, "job-not-finished")
    assert problem["job_status"] in ("queued", "running") and pending.headers["retry-after"]
    await wait_for(client, headers, job["id"])


async def test_cancel_a_job(client: Client, headers: dict[str, str], fake: FakeSGLang, db: Any) -> None:
    fake.script(delay(3.0))
    job = (await submit(client, headers)).json()
    await eventually(lambda: fake.in_flight == 1, within_s=30)  # running: the engine is working on it
    cancelled = await client.delete(f"/jobs/{job['id']}", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_problem(await client.get(f"/jobs/{job['id']}/result", headers=headers), 409, "job-cancelled")
    assert_problem(await client.delete(f"/jobs/{job['id']}", headers=headers), 409, "job-finished")
    await eventually(lambda: fake.in_flight == 0, within_s=30)  # the engine has answered
    assert (await client.get(f"/jobs/{job['id']}", headers=headers)).json()["status"] == "cancelled"
    assert await count(db, ExtractionRecord) == 0


async def test_unknown_jobs_and_other_keys_jobs_are_404(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    assert_problem(await client.get("/jobs/job_nope", headers=headers), 404, "job-not-found")
    assert_problem(await client.get("/jobs/job_nope/result", headers=headers), 404, "job-not-found")
    assert_problem(await client.delete("/jobs/job_nope", headers=headers), 404, "job-not-found")
    job = (await submit(client, headers)).json()
    stranger = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="other")}
    assert_problem(await client.get(f"/jobs/{job['id']}", headers=stranger), 404, "job-not-found")
    assert (await client.get("/jobs", headers=stranger)).json()["items"] == []
    mine = (await client.get("/jobs", headers=headers)).json()["items"]
    assert [j["id"] for j in mine] == [job["id"]]


async def test_bad_async_submissions_are_refused_before_anything_is_stored(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    assert_problem(await submit(client, headers, b"just some text"), 415, "unsupported-document-type")
    refused = await client.post(
        "/extract/invoice?callback_url=http://127.0.0.1:9/hook",
        content=invoice_pdf(),
        headers={**headers, "Content-Type": "application/pdf"},
    )
    assert_problem(refused, 422, "unsafe-callback-url")
    for url in (
        "ftp://example.com/x",
        "http://user:pw@example.com/",
        "not a url",
        "http://93.184.215.14/" + "x" * 2100,
    ):
        bad = await client.post(
            "/extract/invoice", params={"callback_url": url}, content=invoice_pdf(), headers=headers
        )
        assert_problem(bad, 422, "unsafe-callback-url")
    no_secret = await client.post(
        "/extract/invoice",
        params={"callback_url": "http://93.184.215.14/hook"},
        content=invoice_pdf(),
        headers=headers,
    )
    assert_problem(no_secret, 422, "callback-secret-missing")
    assert await count(db, JobRecord) == 0 and await count(db, DocumentRecord) == 0


async def test_idempotency_key_returns_the_original_job(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    pdf = invoice_pdf()
    first = await submit(client, headers, pdf, idempotency_key="order-4711")
    again = await submit(client, headers, pdf, idempotency_key="order-4711")
    assert first.status_code == again.status_code == 202, again.text
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(db, JobRecord) == 1
    # Same key, another document: refused, nothing stored.
    other = await submit(client, headers, invoice_pdf("Another invoice"), idempotency_key="order-4711")
    assert_problem(other, 422, "idempotency-key-reused")
    assert await count(db, JobRecord) == 1
    # Keys are per API key: another key may use the same string.
    stranger = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="other")}
    assert (await submit(client, stranger, pdf, idempotency_key="order-4711")).status_code == 202
    assert_problem(await submit(client, headers, idempotency_key="bad key"), 400, "invalid-idempotency-key")


async def test_a_failed_request_releases_its_idempotency_key(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    refused = await submit(client, headers, b"not a document", idempotency_key="k1")
    assert_problem(refused, 415, "unsupported-document-type")
    assert await count(db, IdempotencyRecord) == 0


async def test_idempotency_key_on_schema_registration(
    client: Client, admin_headers: dict[str, str], db: Any
) -> None:
    body = {"name": "po_x", "schema": {"type": "object", "properties": {"n": {"type": "string"}}}}
    headers = {**admin_headers, "Idempotency-Key": "schema-1"}
    first = await client.post("/schemas", json=body, headers=headers)
    again = await client.post("/schemas", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    changed = await client.post("/schemas", json={**body, "name": "po_y"}, headers=headers)
    assert_problem(changed, 422, "idempotency-key-reused")


async def test_backpressure_answers_429_with_retry_after(
    tmp_path: Path, database_url: str, fake: FakeSGLang, db: Any
) -> None:
    fake.script(*[delay(5.0)] * 4)
    settings = settings_for(
        tmp_path, database_url, fake, max_queued=2, max_in_flight_per_key=1, concurrency=1
    )
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        first_key = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="a")}
        second_key = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="b")}
        assert (await submit(client, first_key)).status_code == 202
        per_key = await submit(client, first_key, invoice_pdf("2"))
        assert_problem(per_key, 429, "too-many-jobs-in-flight")
        assert (await submit(client, second_key, invoice_pdf("3"))).status_code == 202
        third = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="c")}
        full = await submit(client, third, invoice_pdf("4"))
        assert_problem(full, 429, "queue-full")
        assert int(full.headers["retry-after"]) > 0
        assert await count(db, JobRecord) == 2


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_batch_of_files_runs_one_job_each_and_completes_once(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    async with db() as session:  # an endpoint for this key, to count batch.completed events
        key = (await session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.name == "erp"))).one()
        session.add(
            WebhookEndpointRecord(
                id="wh_batch",
                url="http://203.0.113.9/",
                events=list(EVENT_TYPES),
                secret=new_secret(),
                created_by=key.id,
            )
        )
        await session.commit()
    files = [("file", (f"inv-{n}.pdf", invoice_pdf(f"Invoice {n}"), "application/pdf")) for n in range(3)]
    response = await client.post("/batches?schema=invoice", files=files, headers=headers)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["jobs_total"] == 3 and [j["filename"] for j in batch["jobs"]] == [
        "inv-0.pdf",
        "inv-1.pdf",
        "inv-2.pdf",
    ]
    for job in batch["jobs"]:
        await wait_for(client, headers, job["id"])
    done = (await client.get(f"/batches/{batch['batch_id']}", headers=headers)).json()
    assert done["status"] == "completed" and done["jobs_finished"] == 3
    assert sum(done["counts"].values()) == 3
    assert await count(db, WebhookDeliveryRecord, WebhookDeliveryRecord.event_type == "batch.completed") == 1


async def test_batch_from_a_zip(client: Client, headers: dict[str, str]) -> None:
    long_name = "d" * 300 + ".pdf"
    archive = zipped(
        {
            "a/one.pdf": invoice_pdf("One"),
            "two.pdf": invoice_pdf("Two"),
            "__MACOSX/._two.pdf": b"junk",
            long_name: invoice_pdf("Three"),
        }
    )
    response = await client.post(
        "/batches?schema=invoice", content=archive, headers={**headers, "Content-Type": "application/zip"}
    )
    assert response.status_code == 202, response.text
    assert sorted(j["filename"] for j in response.json()["jobs"]) == ["a/one.pdf", long_name[:255], "two.pdf"]


@pytest.mark.parametrize(
    ("archive", "status", "slug"),
    [
        (zipped({"../evil.pdf": b"%PDF-1.7"}), 422, "unsafe-archive"),
        (zipped({"/etc/evil.pdf": b"%PDF-1.7"}), 422, "unsafe-archive"),
        (zipped({"inner.zip": b"PK\x03\x04"}), 422, "unsafe-archive"),
        (zipped({"bomb.pdf": b"%PDF-" + b"\x00" * (20 * 1024 * 1024)}), 413, "batch-too-large"),
        (zipped({f"{n}.pdf": b"%PDF-1.7" for n in range(4)}), 413, "batch-too-large"),
        (zipped({"note.txt": b"hello"}), 415, "unsupported-document-type"),
        (b"PK\x03\x04 broken zip", 422, "unsafe-archive"),
        (b"", 422, "invalid-batch"),
    ],
    ids=["dotdot", "absolute", "nested", "bomb", "too-many", "not-a-document", "broken", "empty"],
)
async def test_bad_batches_are_refused(
    tmp_path: Path, database_url: str, fake: FakeSGLang, db: Any, archive: bytes, status: int, slug: str
) -> None:
    settings = settings_for(tmp_path, database_url, fake, max_batch_documents=3)
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        headers = {"X-API-Key": await issue_key(db, Scope.EXTRACT)}
        response = await client.post(
            "/batches?schema=invoice", content=archive, headers={**headers, "Content-Type": "application/zip"}
        )
        assert_problem(response, status, slug)
        assert await count(db, JobRecord) == 0 and await count(db, BatchRecord) == 0


async def test_unknown_batch_is_404(client: Client, headers: dict[str, str]) -> None:
    assert_problem(await client.get("/batches/bat_nope", headers=headers), 404, "batch-not-found")


async def test_retention_purges_jobs_batches_results_and_documents(
    client: Client, headers: dict[str, str], db: Any
) -> None:
    job = (await submit(client, headers)).json()
    await wait_for(client, headers, job["id"])
    async with db() as session:
        await session.execute(update(JobRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.execute(update(ExtractionRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.execute(update(DocumentRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert_problem(await client.get(f"/jobs/{job['id']}", headers=headers), 404, "job-not-found")
    async with db() as session:
        purged = await purge_all(session)
    assert purged["jobs"] == 1 and purged["results"] == 1 and purged["documents"] == 1
    assert await count(db, JobRecord) == 0 and await count(db, DocumentRecord) == 0


async def test_idempotency_key_on_batches(client: Client, headers: dict[str, str], db: Any) -> None:
    files = [("file", (f"inv-{n}.pdf", invoice_pdf(f"Invoice {n}"), "application/pdf")) for n in range(2)]
    keyed = {**headers, "Idempotency-Key": "batch-march"}
    first = await client.post("/batches?schema=invoice", files=files, headers=keyed)
    again = await client.post("/batches?schema=invoice", files=files, headers=keyed)
    assert first.status_code == again.status_code == 202
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert await count(db, BatchRecord) == 1 and await count(db, JobRecord) == 2
    fewer = await client.post("/batches?schema=invoice", files=files[:1], headers=keyed)
    assert_problem(fewer, 422, "idempotency-key-reused")


async def test_a_batch_larger_than_the_byte_limit_is_413(
    tmp_path: Path, database_url: str, fake: FakeSGLang, db: Any
) -> None:
    settings = settings_for(tmp_path, database_url, fake, max_batch_bytes=1024)
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        headers = {"X-API-Key": await issue_key(db, Scope.EXTRACT)}
        big = invoice_pdf() + b"%" + b"x" * (100 * 1024)
        files = [("file", ("big.pdf", big, "application/pdf"))]
        assert_problem(
            await client.post("/batches?schema=invoice", files=files, headers=headers), 413, "batch-too-large"
        )
        assert await count(db, JobRecord) == 0


async def test_a_callback_url_gets_the_signed_event_of_its_job(
    tmp_path: Path, database_url: str, fake: FakeSGLang, db: Any
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=fake.url, engine_retries=0),
        jobs=JobSettings(lease_s=2.0, poll_s=0.1),
        webhooks=WebhookSettings(allow_networks=["127.0.0.0/8"]),
    )
    with Receiver() as receiver:
        async with AsyncTestClient(create_app(settings), timeout=60) as client:
            headers = {"X-API-Key": await issue_key(db, Scope.EXTRACT)}
            secret = (await client.post("/webhooks/callback-secret", headers=headers)).json()["secret"]
            response = await client.post(
                "/extract/invoice",
                params={"callback_url": receiver.url("/erp/hook")},
                content=invoice_pdf(),
                headers=headers,
            )
            assert response.status_code == 202, response.text  # a callback_url implies async
            job = await wait_for(client, headers, response.json()["id"])
            await eventually(lambda: len(receiver.requests) >= 1)
    request = receiver.requests[0]
    verify(secret, request.headers, request.body)
    event = orjson.loads(request.body)
    assert request.path == "/erp/hook" and len(receiver.requests) == 1
    assert event["type"] in ("extraction.completed", "extraction.needs_review")
    assert event["data"]["job_id"] == job["id"] and event["data"]["extraction_id"] == job["extraction_id"]
    assert event["data"]["result_url"] == f"/jobs/{job['id']}/result" and "data" not in event["data"]
