"""The review loop through the API: the queue, pages, corrections, decisions, revisions, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ApiKeys, Scope
from app.db.models import ExtractionRevisionRecord, WebhookDeliveryRecord, utcnow
from app.lib.settings import EngineSettings, JobSettings, Settings
from tests.conftest import make_settings
from tests.documents import invoice_pdf
from tests.helpers import assert_problem

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": ["string", "null"]},
        "date": {"type": ["string", "null"], "format": "date"},
        "total": {"type": ["number", "null"]},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": ["string", "null"]},
                    "amount": {"type": ["number", "null"]},
                },
            },
        },
    },
    # checks make the review run them again on the corrected data (numbers reported as strings)
    "x-checks": [{"name": "total_not_negative", "expr": "total >= 0"}],
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", database_url, engine=EngineSettings(engine="layout"), jobs=JobSettings(poll_s=60)
    )


async def team_key(db: Sessions, name: str, scope: Scope, team: str | None) -> dict[str, str]:
    async with db() as session:
        issued = await ApiKeys(session).create(name, [scope], team)
    return {"Authorization": f"Bearer {issued.key}"}


@pytest.fixture
async def keys(db: Sessions, client: Client, admin_headers: dict[str, str]) -> dict[str, dict[str, str]]:
    registered = await client.post("/schemas", json={"name": "bill", "schema": SCHEMA}, headers=admin_headers)
    assert registered.status_code == 201, registered.text
    return {
        "erp": await team_key(db, "erp", Scope.EXTRACT, "finance"),
        "reviewer": await team_key(db, "alice", Scope.REVIEW, "finance"),
        "stranger": await team_key(db, "other", Scope.EXTRACT, "sales"),
        "admin": admin_headers,
    }


async def extract(
    client: Client, headers: dict[str, str], name: str, *, review: bool = True
) -> dict[str, Any]:
    pdf, _ = invoice_pdf()
    query = "?min_confidence=0.999" if review else "?min_confidence=0"
    answer = await client.post(
        f"/extract/bill{query}", files=[("file", (name, pdf, "application/pdf"))], headers=headers
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_the_queue_filters_pages_with_a_cursor_and_counts_per_status(
    client: Client, keys: dict[str, dict[str, str]]
) -> None:
    first = await extract(client, keys["erp"], "acme-march.pdf")
    second = await extract(client, keys["erp"], "acme-april.pdf")
    third = await extract(client, keys["erp"], "globex.pdf")
    done = await extract(client, keys["erp"], "done.pdf")
    assert [r["status"] for r in (first, second, third, done)] == ["needs_review"] * 4
    approve = await client.post(
        f"/extractions/{done['id']}/review", json={"decision": "approve"}, headers=keys["erp"]
    )
    assert approve.status_code == 200
    await extract(client, keys["stranger"], "foreign.pdf")

    page = (await client.get("/extractions?status=needs_review&limit=2", headers=keys["reviewer"])).json()
    assert [item["id"] for item in page["items"]] == [first["id"], second["id"]]  # oldest first
    assert page["counts"] == {"succeeded": 0, "needs_review": 3, "approved": 1, "rejected": 0}
    assert page["items"][0]["document_name"] == "acme-march.pdf"
    assert page["items"][0]["review_reasons"] == first["review"]["reasons"]
    rest = await client.get(
        f"/extractions?status=needs_review&limit=2&cursor={page['next_cursor']}", headers=keys["reviewer"]
    )
    assert [item["id"] for item in rest.json()["items"]] == [third["id"]]
    assert rest.json()["next_cursor"] is None

    newest = (await client.get("/extractions?order=newest", headers=keys["erp"])).json()
    assert [i["id"] for i in newest["items"]] == [done["id"], third["id"], second["id"], first["id"]]
    named = (await client.get("/extractions?document=ACME", headers=keys["erp"])).json()
    assert {i["id"] for i in named["items"]} == {first["id"], second["id"]}
    reason = first["review"]["reasons"][0]
    by_reason = (await client.get("/extractions", params={"reason": reason}, headers=keys["erp"])).json()
    assert {first["id"], second["id"], third["id"]} <= {i["id"] for i in by_reason["items"]}
    kind = reason.split(":")[0]
    by_kind = (await client.get("/extractions", params={"reason": kind}, headers=keys["erp"])).json()
    assert all(any(r.startswith(kind) for r in i["review_reasons"]) for i in by_kind["items"])
    nothing = await client.get("/extractions", params={"reason": "no_such_reason"}, headers=keys["erp"])
    assert nothing.json()["items"] == []
    later = (utcnow() + timedelta(minutes=5)).isoformat()
    empty = await client.get("/extractions", params={"created_after": later}, headers=keys["erp"])
    assert empty.json()["items"] == [] and empty.json()["counts"]["needs_review"] == 0
    earlier = (utcnow() - timedelta(hours=1)).isoformat()
    ranged = await client.get("/extractions", params={"created_after": earlier}, headers=keys["erp"])
    assert len(ranged.json()["items"]) == 4

    foreign = (await client.get("/extractions", headers=keys["stranger"])).json()
    assert [i["document_name"] for i in foreign["items"]] == ["foreign.pdf"]
    everything = (await client.get("/extractions", headers=keys["admin"])).json()
    assert len(everything["items"]) == 5

    assert_problem(await client.get("/extractions?cursor=nonsense", headers=keys["erp"]), 400, "bad-request")
    assert_problem(await client.get("/extractions?status=lost", headers=keys["erp"]), 400, "bad-request")
    naive = await client.get(
        "/extractions", params={"created_after": "2026-01-01T00:00:00"}, headers=keys["erp"]
    )
    assert_problem(naive, 400, "bad-request")


async def test_pages_render_as_images_at_the_asked_width_with_their_words(
    client: Client, keys: dict[str, dict[str, str]]
) -> None:
    result = await extract(client, keys["erp"], "a.pdf")
    base = f"/extractions/{result['id']}/pages"
    png = await client.get(f"{base}/1?width=400", headers=keys["reviewer"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(__import__("io").BytesIO(png.content))
    assert image.width == 400 and image.height == round(400 * 842 / 595)
    webp = await client.get(f"{base}/1?width=300&format=webp", headers=keys["reviewer"])
    assert webp.headers["content-type"] == "image/webp" and webp.content[8:12] == b"WEBP"
    words = (await client.get(f"{base}/1/words", headers=keys["reviewer"])).json()
    assert words["pages"] == 1 and words["width"] == 595
    texts = {w["text"]: w["bbox"] for w in words["words"]}
    assert "INV-2024-0042" in texts
    x0, y0, x1, y1 = texts["INV-2024-0042"]
    assert 0.6 < x0 < x1 < 1 and 0 < y0 < y1 < 0.15  # printed at the top right
    assert_problem(await client.get(f"{base}/2", headers=keys["reviewer"]), 404, "page-not-found")
    assert_problem(await client.get(f"{base}/2/words", headers=keys["reviewer"]), 404, "page-not-found")
    assert_problem(await client.get(f"{base}/1?width=5", headers=keys["reviewer"]), 400, "bad-request")
    assert_problem(await client.get(f"{base}/1", headers=keys["stranger"]), 404, "extraction-not-found")


async def test_a_review_corrects_reads_like_an_extraction_and_records_a_revision(
    client: Client, db: Sessions, keys: dict[str, dict[str, str]]
) -> None:
    result = await extract(client, keys["erp"], "a.pdf")
    url = f"/extractions/{result['id']}"
    read = await client.get(url, headers=keys["reviewer"])
    assert read.headers["etag"] == '"r0"'
    assert read.json()["review"]["status"] == "pending" and read.json()["review"]["revisions"] == []
    old_total = result["data"]["total"]

    saved = await client.post(
        f"{url}/review",
        json={
            "corrections": [
                {
                    "pointer": "/total",
                    "value": "1.234,50",
                    "evidence": {"page": 1, "bbox": [0.6, 0.4, 0.7, 0.42]},
                },
                {"pointer": "/date", "value": "15.03.2024"},
            ]
        },
        headers={**keys["reviewer"], "If-Match": '"r0"'},
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["etag"] == '"r1"'
    body = saved.json()
    assert body["data"]["total"] == 1234.5 and body["data"]["date"] == "2024-03-15"
    assert body["fields"]["/total"]["source"] == "reviewer"
    assert body["fields"]["/total"]["confidence"] == 1.0
    assert body["fields"]["/total"]["evidence"][0]["bbox"] == [0.6, 0.4, 0.7, 0.42]
    assert body["fields"]["/invoice_number"]["source"] == "engine"
    assert not any(r.endswith(":/total") for r in body["review"]["reasons"])
    assert body["review"]["status"] == "pending"  # corrections only: no decision yet
    [check] = body["checks"]
    assert (
        check["rule"] == "total_not_negative" and check["status"] == "passed" and check["actual"] == "1234.5"
    )
    [revision] = body["review"]["revisions"]
    assert revision["number"] == 1 and revision["reviewer_name"] == "alice" and revision["decision"] is None
    assert {
        "pointer": "/total",
        "old": old_total,
        "new": 1234.5,
        "confidence": result["fields"]["/total"]["confidence"],
    } in revision["changes"]

    stale = await client.post(
        f"{url}/review", json={"decision": "approve"}, headers={**keys["erp"], "If-Match": '"r0"'}
    )
    assert_problem(stale, 412, "review-conflict")
    assert stale.headers["etag"] == '"r1"'

    approved = await client.post(
        f"{url}/review",
        json={"decision": "approve", "note": "checked against the PDF"},
        headers={**keys["reviewer"], "If-Match": '"r1"'},
    )
    assert approved.status_code == 200
    final = (await client.get(url, headers=keys["erp"])).json()
    assert final["review"]["status"] == "approved" and final["review"]["revision"] == 2
    assert final["data"]["total"] == 1234.5 and final["fields"]["/total"]["source"] == "reviewer"
    assert [r["decision"] for r in final["review"]["revisions"]] == [None, "approve"]
    listed = (await client.get("/extractions?status=approved", headers=keys["erp"])).json()
    assert [i["id"] for i in listed["items"]] == [result["id"]]

    async with db() as session:
        rows = list(
            await session.scalars(select(ExtractionRevisionRecord).order_by(ExtractionRevisionRecord.number))
        )
    assert [(r.number, r.decision, r.status_after) for r in rows] == [
        (1, None, "needs_review"),
        (2, "approve", "approved"),
    ]
    assert rows[1].note == "checked against the PDF"


async def test_a_decision_sends_extraction_reviewed_to_subscribed_endpoints(
    client: Client, db: Sessions, keys: dict[str, dict[str, str]]
) -> None:
    endpoint = await client.post(
        "/webhooks",
        json={"url": "https://93.184.215.14/hooks", "events": ["extraction.reviewed"]},
        headers=keys["erp"],
    )
    assert endpoint.status_code == 201, endpoint.text
    result = await extract(client, keys["erp"], "a.pdf")
    await client.post(
        f"/extractions/{result['id']}/review", json={"corrections": []}, headers=keys["reviewer"]
    )
    async with db() as session:
        assert list(await session.scalars(select(WebhookDeliveryRecord))) == []  # no decision, no event
    rejected = await client.post(
        f"/extractions/{result['id']}/review", json={"decision": "reject"}, headers=keys["reviewer"]
    )
    assert rejected.json()["review"]["status"] == "rejected"
    async with db() as session:
        [delivery] = list(await session.scalars(select(WebhookDeliveryRecord)))
    assert delivery.event_type == "extraction.reviewed" and delivery.endpoint_id == endpoint.json()["id"]
    payload = __import__("orjson").loads(delivery.payload)
    assert payload["data"]["extraction_id"] == result["id"]
    assert payload["data"]["status"] == "rejected" and payload["data"]["decision"] == "reject"
    assert payload["data"]["result_url"].endswith(f"/extractions/{result['id']}")
    assert "data" not in payload["data"] and payload["data"]["changed"] == []  # thin: never the data


async def test_invalid_corrections_are_refused_with_their_pointer_and_nothing_is_saved(
    client: Client, keys: dict[str, dict[str, str]]
) -> None:
    result = await extract(client, keys["erp"], "a.pdf")
    url = f"/extractions/{result['id']}/review"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"pointer": "/nope", "value": "x"}, "/corrections/0/pointer"),
        ({"pointer": "total", "value": "1"}, "/corrections/0/pointer"),
        ({"pointer": "/total", "value": "twelve"}, "/corrections/0/value"),
        ({"pointer": "/date", "value": "not a date"}, "/corrections/0/value"),
        ({"pointer": "/line_items/7/amount", "value": "1"}, "/corrections/0/pointer"),
        ({"pointer": "/line_items", "value": [{"amount": "x"}]}, "/corrections/0/value"),
    ]
    for correction, pointer in cases:
        refused = assert_problem(
            await client.post(url, json={"corrections": [correction]}, headers=keys["reviewer"]),
            422,
            "invalid-correction",
        )
        assert [e["pointer"] for e in refused["errors"]] == [pointer], correction
        assert str(correction["pointer"]).lstrip("/").split("/")[0] in refused["errors"][0]["detail"]
    assert_problem(
        await client.post(url, json={"decision": "maybe"}, headers=keys["reviewer"]), 400, "bad-request"
    )
    assert_problem(
        await client.post(url, json={"corrections": [{"pointer": "/total"}]}, headers=keys["reviewer"]),
        400,
        "bad-request",
    )
    after = await client.get(f"/extractions/{result['id']}", headers=keys["reviewer"])
    assert after.headers["etag"] == '"r0"' and after.json()["data"] == result["data"]


async def test_line_items_are_corrected_added_and_replaced(
    client: Client, keys: dict[str, dict[str, str]]
) -> None:
    result = await extract(client, keys["erp"], "a.pdf")
    items = result["data"].get("line_items") or []
    corrections: list[dict[str, Any]] = [
        {"pointer": f"/line_items/{len(items)}", "value": {"description": "Freight", "amount": "7,50"}}
    ]
    if items:
        corrections.append({"pointer": "/line_items/0/description", "value": "Widget XL"})
    body = (
        await client.post(
            f"/extractions/{result['id']}/review", json={"corrections": corrections}, headers=keys["erp"]
        )
    ).json()
    assert "data" in body, body
    added = body["data"]["line_items"][len(items)]
    assert added == {"description": "Freight", "amount": 7.5}
    assert body["fields"][f"/line_items/{len(items)}/amount"]["source"] == "reviewer"
    if items:
        assert body["data"]["line_items"][0]["description"] == "Widget XL"
    replaced = await client.post(
        f"/extractions/{result['id']}/review",
        json={"corrections": [{"pointer": "/line_items", "value": []}]},
        headers=keys["erp"],
    )
    assert replaced.json()["data"]["line_items"] == []
    assert not any(p.startswith("/line_items/") for p in replaced.json()["fields"])


async def test_the_review_scope_reviews_but_manages_nothing(
    client: Client, keys: dict[str, dict[str, str]]
) -> None:
    reviewer = keys["reviewer"]
    pdf, _ = invoice_pdf()
    assert_problem(await client.post("/extract/bill", content=pdf, headers=reviewer), 403, "forbidden")
    assert_problem(
        await client.post("/schemas", json={"name": "x", "schema": SCHEMA}, headers=reviewer),
        403,
        "forbidden",
    )
    assert_problem(await client.get("/keys", headers=reviewer), 403, "forbidden")
    assert_problem(await client.get("/jobs", headers=reviewer), 403, "forbidden")
    result = await extract(client, keys["erp"], "a.pdf")
    stranger = keys["stranger"]
    for method, path in [
        ("GET", f"/extractions/{result['id']}"),
        ("GET", f"/extractions/{result['id']}/pages/1/words"),
        ("POST", f"/extractions/{result['id']}/review"),
    ]:
        refused = await client.request(method, path, json={} if method == "POST" else None, headers=stranger)
        assert_problem(refused, 404, "extraction-not-found")


async def test_teams_share_extractions_and_keys_without_a_team_do_not(
    client: Client, db: Sessions, keys: dict[str, dict[str, str]]
) -> None:
    loner = await team_key(db, "loner", Scope.EXTRACT, None)
    mine = await extract(client, loner, "mine.pdf")
    theirs = await extract(client, keys["erp"], "theirs.pdf")
    assert (await client.get(f"/extractions/{theirs['id']}", headers=keys["reviewer"])).status_code == 200
    assert (await client.get(f"/extractions/{mine['id']}", headers=keys["reviewer"])).status_code == 404
    assert [i["id"] for i in (await client.get("/extractions", headers=loner)).json()["items"]] == [
        mine["id"]
    ]
    created = await client.post(
        "/keys", json={"name": "bob", "scopes": ["review"], "team": "finance"}, headers=keys["admin"]
    )
    assert created.status_code == 201 and created.json()["api_key"]["team"] == "finance"
    bob = {"Authorization": f"Bearer {created.json()['key']}"}
    assert (await client.get(f"/extractions/{theirs['id']}", headers=bob)).status_code == 200
