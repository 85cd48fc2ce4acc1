"""One ownership rule for every object a key creates (``Principal.sees``), checked route by route.

Key A creates one of everything (a sync extraction, an async job, a batch, a webhook endpoint with a
delivery); key B then calls every route that names one of them and must get 404, as if it did not
exist, while A (and an admin key) gets past the rule. The route table is read from the app itself:
a new route must be listed here as owned, as a filtered list, or as exempt (with the reason), so a
route added without thinking about ownership fails this test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Scope, split_key
from app.lib.settings import JobSettings, Settings
from app.memory.store import remember
from app.webhooks.events import emit
from tests.conftest import issue_key, make_settings
from tests.documents import invoice_pdf
from tests.webhook_receiver import eventually

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
Ids = dict[str, str]

OWNED: dict[tuple[str, str], Callable[[Ids], str]] = {
    ("GET", "/extractions/{extraction_id:str}"): lambda ids: f"/extractions/{ids['extraction']}",
    ("GET", "/extractions/{extraction_id:str}/export"): lambda ids: (
        f"/extractions/{ids['extraction']}/export?format=json"
    ),
    ("GET", "/extractions/{extraction_id:str}/pages/{number:int}"): lambda ids: (
        f"/extractions/{ids['extraction']}/pages/1"
    ),
    ("GET", "/extractions/{extraction_id:str}/pages/{number:int}/words"): lambda ids: (
        f"/extractions/{ids['extraction']}/pages/1/words"
    ),
    ("POST", "/extractions/{extraction_id:str}/review"): lambda ids: (
        f"/extractions/{ids['extraction']}/review"
    ),
    ("GET", "/jobs/{job_id:str}"): lambda ids: f"/jobs/{ids['job']}",
    ("GET", "/jobs/{job_id:str}/result"): lambda ids: f"/jobs/{ids['job']}/result",
    ("DELETE", "/jobs/{job_id:str}"): lambda ids: f"/jobs/{ids['job']}",
    ("GET", "/batches/{batch_id:str}"): lambda ids: f"/batches/{ids['batch']}",
    ("GET", "/batches/{batch_id:str}/export"): lambda ids: f"/batches/{ids['batch']}/export",
    ("GET", "/webhooks/{endpoint_id:str}"): lambda ids: f"/webhooks/{ids['endpoint']}",
    ("POST", "/webhooks/{endpoint_id:str}/enable"): lambda ids: f"/webhooks/{ids['endpoint']}/enable",
    ("POST", "/webhooks/{endpoint_id:str}/rotate"): lambda ids: f"/webhooks/{ids['endpoint']}/rotate",
    ("GET", "/webhooks/{endpoint_id:str}/deliveries"): lambda ids: f"/webhooks/{ids['endpoint']}/deliveries",
    ("POST", "/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/replay"): lambda ids: (
        f"/webhooks/{ids['endpoint']}/deliveries/{ids['delivery']}/replay"
    ),
    ("DELETE", "/webhooks/{endpoint_id:str}"): lambda ids: f"/webhooks/{ids['endpoint']}",
    ("DELETE", "/senders/{sender_id:int}"): lambda ids: f"/senders/{ids['sender']}",
}
"""Routes that name one object a key created: another key gets 404. POST routes are sent ``{}``."""

FILTERED_LISTS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/extractions"): ("/extractions", "extraction"),
    ("GET", "/jobs"): ("/jobs", "job"),
    ("GET", "/webhooks"): ("/webhooks", "endpoint"),
    ("GET", "/senders"): ("/senders", "sender"),
}
"""Lists of such objects: another key's list leaves them out."""

EXEMPT: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness, no data",
    ("GET", "/ready"): "readiness, no data",
    ("GET", "/metrics"): "Prometheus metrics: counts and timings by route and status, no ids or data",
    ("GET", "/problems"): "the public catalogue of problem types",
    ("GET", "/problems/{slug:str}"): "the public catalogue of problem types",
    ("GET", "/openapi"): "the API description",
    ("GET", "/openapi/swagger"): "the API description",
    ("GET", "/openapi/oauth2-redirect.html"): "Swagger UI's OAuth2 redirect page, no data",
    ("GET", "/openapi-assets/{file_path:path}"): "Swagger UI's scripts and styles, no data",
    ("GET", "/openapi/openapi.json"): "the API description",
    ("GET", "/openapi/{path:str}"): "the API description",
    ("GET", "/schemas"): "the schema registry is shared by all keys; writes need admin",
    ("POST", "/schemas"): "the schema registry is shared by all keys; writes need admin",
    ("GET", "/schemas/{ref:str}"): "the schema registry is shared by all keys",
    ("DELETE", "/schemas/{name:str}"): "the schema registry is shared; admin only",
    ("POST", "/schemas/{name:str}/restore"): "the schema registry is shared; admin only",
    ("GET", "/schemas/{name:str}/versions"): "the schema registry is shared by all keys",
    ("POST", "/schemas/{name:str}/versions"): "the schema registry is shared; admin only",
    ("GET", "/schemas/{name:str}/versions/{version:str}"): "the schema registry is shared by all keys",
    ("GET", "/keys"): "admin only: keys are managed by admins",
    ("POST", "/keys"): "admin only",
    ("DELETE", "/keys/{key_id:str}"): "admin only",
    ("POST", "/webhooks/callback-secret"): "sets the calling key's own secret",
    ("POST", "/webhooks"): "creates an endpoint owned by the caller",
    ("POST", "/extract/{schema:str}"): "creates an extraction or job owned by the caller",
    ("POST", "/batches"): "creates a batch owned by the caller",
    ("POST", "/documents/analyze"): "reads the uploaded document, stores nothing",
    ("GET", "/review"): "the review page: static HTML, no data",
    ("GET", "/review/static/{file_path:path}"): "the review page's scripts and styles, no data",
    ("POST", "/review/session"): "signs the caller's own key in",
    ("GET", "/review/session"): "the caller's own session",
    ("DELETE", "/review/session"): "signs the caller's own session out",
    ("POST", "/review/session/delete"): "signs the caller's own session out",
}
"""Routes with nothing of another key's to show, and why."""

PUBLIC_URL = "https://93.184.215.14/hooks/docextract"  # an address literal: no DNS needed


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # The app's deliverer waits a minute between rounds: the delivery stays in the log untouched.
    return make_settings(tmp_path / "data", database_url, jobs=JobSettings(poll_s=60))


def routes(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        for method in route.methods
        if method not in {"OPTIONS", "HEAD"}
    }


def test_every_route_is_classified(app: Litestar) -> None:
    declared = set(OWNED) | set(FILTERED_LISTS) | set(EXEMPT)
    served = routes(app)
    assert served - declared == set(), "new routes: add them to OWNED, FILTERED_LISTS or EXEMPT"
    assert declared - served == set(), "routes listed here that the app no longer serves"


async def key(db: Sessions, scope: Scope, name: str) -> tuple[dict[str, str], str]:
    full = await issue_key(db, scope, name=name)
    parts = split_key(full)
    assert parts is not None
    return {"Authorization": f"Bearer {full}"}, parts[0]


async def objects_of(client: Client, db: Sessions, headers: dict[str, str], key_id: str) -> Ids:
    """One of everything, created by the key of ``headers``."""
    pdf, _ = invoice_pdf()
    extraction = await client.post("/extract/invoice", content=pdf, headers=headers)
    assert extraction.status_code == 200, extraction.text
    job = await client.post("/extract/invoice?async=true", content=pdf, headers=headers)
    assert job.status_code == 202, job.text
    batch = await client.post(
        "/batches?schema=invoice", files=[("file", ("a.pdf", pdf, "application/pdf"))], headers=headers
    )
    assert batch.status_code == 202, batch.text
    endpoint = await client.post("/webhooks", json={"url": PUBLIC_URL}, headers=headers)
    assert endpoint.status_code == 201, endpoint.text
    async with db() as session:
        deliveries = await emit(
            session,
            event_type="extraction.needs_review",
            data={"job_id": job.json()["id"]},
            owner=key_id,
            callback_url=None,
            retention=timedelta(days=1),
        )
        await session.commit()
        # What an approved review of A's teaches (app.memory): A's (team's) sender memory.
        sender = await remember(session, f"key:{key_id}", "invoice", ["vat:DE136695976"], {"fields": {}})
        await session.commit()
    assert len(deliveries) == 1
    return {
        "extraction": extraction.json()["id"],
        "job": job.json()["id"],
        "batch": batch.json()["batch_id"],
        "endpoint": endpoint.json()["id"],
        "delivery": deliveries[0],
        "sender": str(sender.id),
    }


async def test_another_key_gets_404_on_every_owned_route(client: Client, db: Sessions) -> None:
    owner, owner_id = await key(db, Scope.EXTRACT, "key-a")
    stranger, _ = await key(db, Scope.EXTRACT, "key-b")
    admin, _ = await key(db, Scope.ADMIN, "admin")
    ids = await objects_of(client, db, owner, owner_id)

    async def job_finished() -> bool:
        status = (await client.get(f"/jobs/{ids['job']}", headers=owner)).json()["status"]
        return bool(status in {"succeeded", "needs_review", "failed"})

    await eventually(job_finished, within_s=60)
    for path, kind in FILTERED_LISTS.values():
        assert ids[kind] not in await listed(client, path, stranger), f"{path} shows another key's {kind}"
        assert ids[kind] in await listed(client, path, admin)
        assert ids[kind] in await listed(client, path, owner)
    # Deletions last, so every other route still finds its object.
    for method, template in sorted(OWNED, key=lambda route: route[0] == "DELETE"):
        path = OWNED[method, template](ids)
        body: dict[str, Any] | None = {} if method == "POST" else None
        refused = await client.request(method, path, headers=stranger, json=body)
        assert refused.status_code == 404, f"{method} {path} answered {refused.status_code} to another key"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("-not-found")
        for allowed in (owner,) if method == "DELETE" else (admin, owner):
            answer = await client.request(method, path, headers=allowed, json=body)
            assert answer.status_code != 404, f"{method} {path}: {answer.status_code} {answer.text}"


async def listed(client: Client, path: str, headers: dict[str, str]) -> set[str]:
    body = (await client.get(path, headers=headers)).json()
    return {str(item["id"]) for item in body["items"]}


async def test_results_of_jobs_follow_their_owner(client: Client, db: Sessions) -> None:
    """The extraction a job stored is readable by the job's key only, through both routes."""
    owner, _ = await key(db, Scope.EXTRACT, "key-a")
    stranger, _ = await key(db, Scope.EXTRACT, "key-b")
    pdf, _ = invoice_pdf()
    job = (await client.post("/extract/invoice?async=true", content=pdf, headers=owner)).json()

    async def result() -> Any:
        answer = await client.get(f"/jobs/{job['id']}/result", headers=owner)
        return answer.json() if answer.status_code == 200 else None

    await eventually(result, within_s=60)
    extraction = await result()
    assert (await client.get(f"/extractions/{extraction['id']}", headers=owner)).json() == extraction
    assert (await client.get(f"/extractions/{extraction['id']}", headers=stranger)).status_code == 404
