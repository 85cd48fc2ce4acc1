"""``POST /extract/{schema}`` end to end: a generated 3-page invoice, the fake SGLang server on
loopback, the real app. Pages go to the engine concurrently; the fake answers per page (pages have
different heights so the answer can tell them apart)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select

from app.auth.keys import ApiKeys, Scope
from app.db.models import DocumentRecord
from app.lib.settings import EngineSettings, IngestSettings
from app.server.core import create_app
from tests.conftest import make_settings
from tests.fake_sglang import FakeSGLang, respond, status
from tests.helpers import assert_problem, metric, metric_samples

Client = AsyncTestClient[Litestar]
HEIGHTS = {1: 842, 2: 800, 3: 760}  # points: each page renders to a different pixel height
HEADER = {
    "description": "Description",
    "quantity": None,
    "unit": None,
    "unit_price": None,
    "amount": None,
    "tax_rate": None,
}


def item(text: str, amount: float) -> dict[str, Any]:
    return {
        "description": text,
        "quantity": 1,
        "unit": None,
        "unit_price": amount,
        "amount": amount,
        "tax_rate": 19,
    }


ANSWERS: dict[int, dict[str, Any]] = {
    1: {
        "invoice_number": "INV-2024-0042",
        "issue_date": "2024-03-15",
        "seller": {"name": "ACME Supplies GmbH"},
        "currency": "EUR",
        "line_items": [HEADER, item("Widget", 20.0), item("Gadget", 22.5)],
        "total": None,
    },
    2: {
        "invoice_number": "INV-2024-0042",
        "issue_date": None,
        "currency": None,
        "line_items": [HEADER, item("Bolt", 3.0)],
        "total": None,
    },
    3: {
        "invoice_number": None,
        "issue_date": None,
        "currency": "EUR",
        "line_items": [HEADER, item("Nut", 1.0)],
        "subtotal": 46.5,
        "tax_total": 8.84,
        "total": 55.34,
    },
}


PRINTED = {
    1: [
        "Invoice INV-2024-0042",
        "Date 2024-03-15",
        "ACME Supplies GmbH",
        "Currency EUR",
        "Description Qty Unit price Amount VAT",
        "Widget 1 20.00 20.00 19%",
        "Gadget 1 22.50 22.50 19%",
    ],
    2: ["Invoice INV-2024-0042", "Description Qty Unit price Amount VAT", "Bolt 1 3.00 3.00 19%"],
    3: [
        "Description Qty Unit price Amount VAT",
        "Nut 1 1.00 1.00 19%",
        "Subtotal 46.50",
        "VAT 8.84",
        "Total EUR 55.34",
    ],
}


def three_page_pdf() -> bytes:
    """Every value the fake answers is printed on its page, so the trust layer can ground it."""
    doc = pymupdf.open()
    for number, height in HEIGHTS.items():
        page = doc.new_page(width=595, height=height)
        for line, text in enumerate(PRINTED[number]):
            page.insert_text((60, 80 + 18 * line), text, fontsize=11)
    return bytes(doc.tobytes())


def page_of(request: dict[str, Any]) -> int:
    url = request["messages"][0]["content"][0]["image_url"]["url"]
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    height_pt = image.height * 72 / 200
    return min(HEIGHTS, key=lambda n: abs(HEIGHTS[n] - height_pt))


def answer(request: dict[str, Any]) -> str:
    return json.dumps(ANSWERS[page_of(request)], ensure_ascii=False)


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang(answer=answer) as server:
        yield server


@pytest.fixture
async def client(tmp_path: Path, database_url: str, fake: FakeSGLang) -> AsyncIterator[Client]:
    settings = make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=fake.url, engine_retries=1, engine_timeout_s=10),
        ingest=IngestSettings(max_pages=10),
    )
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        yield client


@pytest.fixture
async def headers(db: Any, client: Client) -> dict[str, str]:
    async with db() as session:
        return {"X-API-Key": (await ApiKeys(session).create("erp", [Scope.EXTRACT])).key}


async def post(client: Client, headers: dict[str, str], path: str, data: bytes) -> Any:
    return await client.post(path, content=data, headers={**headers, "Content-Type": "application/pdf"})


async def test_three_page_invoice(client: Client, headers: dict[str, str], fake: FakeSGLang, db: Any) -> None:
    pdf = three_page_pdf()
    response = await post(client, headers, "/extract/invoice", pdf)
    assert response.status_code == 200, response.text
    result = response.json()
    # The model also returned the table's header row as an item: a label is never a value; and the
    # seller's name is printed with no label, so nothing independent confirms it.
    assert result["review"]["reasons"] == [
        "unlabelled:/seller/name",
        "label_as_value:/line_items/0/description",
    ], result["review"]
    assert result["status"] == "needs_review"
    assert result["fields"]["/total"]["corroborated_by"][0] == "exact"
    assert result["schema"]["name"] == "invoice" and result["schema"]["version"] == 1
    assert result["model"] == {"engine": "sglang", "name": "glm-ocr"}
    data = result["data"]
    # Line items: every page's rows in page order, the header row repeated on each page kept once.
    assert [row["description"] for row in data["line_items"]] == [
        "Description",
        "Widget",
        "Gadget",
        "Bolt",
        "Nut",
    ]
    assert data["invoice_number"] == "INV-2024-0042" and data["total"] == 55.34 and data["currency"] == "EUR"
    fields = result["fields"]
    assert fields["/invoice_number"]["page"] == 1  # equally sure on pages 1 and 2: the earlier page
    assert fields["/total"]["page"] == 3 and fields["/subtotal"]["page"] == 3
    assert fields["/line_items/3/description"]["page"] == 2 and fields["/line_items/4/amount"]["page"] == 3
    token_prob = fields["/invoice_number"]["components"]["token_prob"]
    assert 0 < token_prob["min"] <= token_prob["mean"] <= 1 and token_prob["tokens"] >= 1
    assert [p["page"] for p in result["pages"]] == [1, 2, 3]
    # The engine got each page once, as an image data URL, with the prompt and the decoding schema.
    assert sorted(page_of(r) for r in fake.requests) == [1, 2, 3]
    sent = fake.requests[0]
    assert sent["messages"][0]["content"][1]["text"].startswith("请按下列JSON格式输出图中信息:")
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["total"]["type"] == [
        "number",
        "null",
    ]
    # Stored: the result, and the document once by content.
    stored = await client.get(f"/extractions/{result['id']}", headers=headers)
    assert stored.status_code == 200 and stored.json() == result
    async with db() as session:
        documents = list(await session.scalars(select(DocumentRecord)))
    assert len(documents) == 1 and documents[0].content == pdf and documents[0].media_type == "pdf"


async def test_invalid_data_is_returned_for_review_not_fixed(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    fake.answer = lambda request: json.dumps(
        {
            "invoice_number": "INV-2024-0042",
            "issue_date": "32.13.2024",
            "due_date": "15.03.2024",
            "total": None,
        }
    )
    response = await post(client, headers, "/extract/invoice?pages=1", three_page_pdf())
    result = response.json()
    assert response.status_code == 200 and result["status"] == "needs_review"
    assert result["data"]["issue_date"] == "32.13.2024"  # not a date: kept as read, not "fixed"
    assert result["fields"]["/issue_date"]["normalized"]["status"] == "unparsed"
    assert result["data"]["due_date"] == "2024-03-15"  # a date: normalised, the raw text kept beside it
    assert result["fields"]["/due_date"]["raw_text"] == "15.03.2024"
    findings = {(f["pointer"], f["keyword"]) for f in result["validation"]}
    assert findings == {("/issue_date", "format"), ("/total", "required")}
    assert "total" not in result["data"]  # null = not on the page; the schema does not admit null
    reasons = set(result["review"]["reasons"])
    assert {
        "invalid:/total:required",
        "missing:/total",
        "unparsed:/issue_date",
        "ungrounded:/issue_date",
    } <= reasons


async def test_truncated_page_is_a_review_reason(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    fake.answer = None
    fake.script(respond('{"invoice_number": "INV-1", "total": 5', finish_reason="length"))
    result = (await post(client, headers, "/extract/invoice?pages=2", three_page_pdf())).json()
    assert result["status"] == "needs_review" and result["review"]["reasons"][0] == "page_truncated:2"
    assert result["pages"] == [
        {
            "page": 2,
            "model": "glm-ocr",
            "finish_reason": "length",
            "prompt_tokens": result["pages"][0]["prompt_tokens"],
            "completion_tokens": result["pages"][0]["completion_tokens"],
        }
    ]


async def test_engine_down_is_503_with_retry_after(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    fake.script(*[status(503)] * 10)
    before = metric_samples((await client.get("/metrics")).text)
    response = await post(client, headers, "/extract/invoice?pages=1", three_page_pdf())
    problem = assert_problem(response, 503, "engine-unavailable")
    assert response.headers["retry-after"] and problem["retryable"] is True
    after = metric_samples((await client.get("/metrics")).text)
    for name in ("docextract_engine_retries_total", "docextract_engine_errors_total"):
        category = {"category": "engine_unavailable"}
        assert metric(after, name, **category) - metric(before, name, **category) == 1, name


@pytest.mark.slow
async def test_with_the_layout_fallback_a_down_engine_still_gives_a_result_for_review(
    tmp_path: Path, database_url: str, fake: FakeSGLang, db: Any
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        engine=EngineSettings(sglang_url=fake.url, engine_retries=0, engine_fallback="layout"),
    )
    fake.script(*[status(503)] * 10)
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        async with db() as session:
            key = (await ApiKeys(session).create("erp", [Scope.EXTRACT])).key
        response = await post(client, {"X-API-Key": key}, "/extract/invoice?pages=3", three_page_pdf())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "needs_review" and "engine_fallback:3" in result["review"]["reasons"]
    assert result["model"]["engine"] == "sglang" and result["pages"][0]["model"].startswith("layout")
    assert result["data"]["total"] == 55.34  # printed "Total EUR 55.34", read from the text layer


async def test_schema_the_grammar_cannot_compile(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    from tests.fake_sglang import grammar_error

    fake.script(grammar_error())
    response = await post(client, headers, "/extract/invoice?pages=1", three_page_pdf())
    assert_problem(response, 422, "schema-not-supported")


@pytest.mark.parametrize(
    ("path", "status_code", "slug"),
    [
        ("/extract/nope", 404, "schema-not-found"),
        ("/extract/invoice@9", 404, "schema-version-not-found"),
        ("/extract/invoice@x", 400, "invalid-schema-reference"),
        ("/extract/invoice?pages=7", 422, "invalid-page-selection"),
    ],
)
async def test_bad_requests(
    client: Client, headers: dict[str, str], path: str, status_code: int, slug: str
) -> None:
    assert_problem(await post(client, headers, path, three_page_pdf()), status_code, slug)


async def test_deprecated_schema_and_unknown_result(client: Client, headers: dict[str, str], db: Any) -> None:
    async with db() as session:
        admin = {"X-API-Key": (await ApiKeys(session).create("admin", [Scope.ADMIN])).key}
    await client.delete("/schemas/receipt", headers=admin)
    assert_problem(
        await post(client, headers, "/extract/receipt", three_page_pdf()), 409, "schema-deprecated"
    )
    assert_problem(await client.get("/extractions/ext_nope", headers=headers), 404, "extraction-not-found")
    assert_problem(await post(client, {}, "/extract/invoice", three_page_pdf()), 401, "unauthenticated")


async def test_no_engine_configured(tmp_path: Path, database_url: str, db: Any) -> None:
    settings = make_settings(tmp_path, database_url, engine=EngineSettings(engine="sglang"))
    async with AsyncTestClient(create_app(settings)) as client:
        async with db() as session:
            key = (await ApiKeys(session).create("erp", [Scope.EXTRACT])).key
        response = await post(client, {"X-API-Key": key}, "/extract/invoice", three_page_pdf())
        assert_problem(response, 503, "engine-unavailable")
        assert "DOCEXTRACT_SGLANG_URL" in response.json()["detail"]
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["engine"].startswith("not configured")


async def test_extract_command(tmp_path: Path, database_url: str, fake: FakeSGLang) -> None:
    import asyncio

    from click.testing import CliRunner

    from app.cli import main

    document = tmp_path / "invoice.pdf"
    document.write_bytes(three_page_pdf())
    out = tmp_path / "result.json"
    env = {
        "DOCEXTRACT_DATABASE_URL": database_url,
        "DOCEXTRACT_DATA_DIR": str(tmp_path),
        "DOCEXTRACT_SGLANG_URL": fake.url,
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
        "DOCEXTRACT_ENGINE_RETRIES": "0",
    }
    args = ["extract", str(document), "--schema", "invoice", "--pages", "1-3", "--out", str(out)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # needs_review: the header row the model returned as an item (see test_three_page_invoice)
    assert result.stderr == f"needs_review: wrote {out}\n"  # not a terminal: no progress, one line
    extracted = json.loads(out.read_text())
    assert [row["description"] for row in extracted["data"]["line_items"]] == [
        "Description",
        "Widget",
        "Gadget",
        "Bolt",
        "Nut",
    ]
    bad = await asyncio.to_thread(
        CliRunner().invoke, main, ["extract", str(document), "--schema", "nope"], env=env
    )
    assert bad.exit_code == 1 and "No schema is named 'nope'" in bad.output


async def test_readiness_checks_the_engine(client: Client, fake: FakeSGLang) -> None:
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["engine"] == "ok"
    fake.served_model = "some-other-model"
    body = assert_problem(await client.get("/ready"), 503, "not-ready")
    assert body["checks"]["engine"].startswith("unavailable") and "glm-ocr" in body["checks"]["engine"]


async def test_server_dying_mid_document_is_retried(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    from tests.fake_sglang import drop

    fake.script(drop())  # one of the three pages loses its connection without an answer
    response = await post(client, headers, "/extract/invoice", three_page_pdf())
    assert response.status_code == 200, response.text
    rows = [row["description"] for row in response.json()["data"]["line_items"]]
    assert rows == ["Description", "Widget", "Gadget", "Bolt", "Nut"]
    assert [entry[2] for entry in fake.log if entry[1] == "/v1/chat/completions"].count(None) == 1


async def test_review_policy_overrides_per_request(
    client: Client, headers: dict[str, str], fake: FakeSGLang
) -> None:
    fake.answer = lambda request: json.dumps(
        {
            "invoice_number": "INV-2024-0042",
            "issue_date": "2024-03-15",
            "total": 55.34,
            "subtotal": 46.5,
            "tax_total": 9.0,
        }
    )
    pdf = three_page_pdf()
    strict = (
        await post(client, headers, "/extract/invoice?pages=1&require=/invoice_number,/iban", pdf)
    ).json()
    assert "missing:/iban" in strict["review"]["reasons"]
    assert "check_failed:subtotal_plus_tax_is_total" in strict["review"]["reasons"]
    lenient = (
        await post(
            client, headers, "/extract/invoice?pages=1&checks=due_not_before_issue&min_confidence=0", pdf
        )
    ).json()
    assert not any(r.startswith(("check_failed", "low_confidence")) for r in lenient["review"]["reasons"])
    assert lenient["review"]["min_confidence"] == 0
    assert_problem(await post(client, headers, "/extract/invoice?require=total", pdf), 422, "invalid-request")
