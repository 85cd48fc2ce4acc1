"""``GET /batches/{id}/export``: a batch of generated invoices read by the replay engine (one with no
recording, so its job fails) exported as CSV and JSON Lines, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.api import batches
from app.auth.keys import Scope
from app.lib.settings import EngineSettings, JobSettings, Settings
from app.server.core import create_app
from tests.conftest import issue_key, make_settings
from tests.documents import invoice_pdf
from tests.helpers import assert_problem, wait_for

Client = AsyncTestClient[Litestar]
FIXED = ["document", "extraction_id", "status", "confidence", "review_reasons"]

ACME: dict[str, Any] = {
    "invoice_number": "INV-2024-0042",
    "issue_date": "2024-03-15",
    "seller": {"name": "ACME Supplies GmbH", "address": "Hauptstrasse 12, 10115 Berlin"},
    "buyer": {"name": "Globex Corporation"},
    "currency": "EUR",
    "line_items": [
        {"description": "Widget large", "quantity": 2, "unit_price": 10.0, "amount": 20.0},
        {"description": "Gadget small", "quantity": 5, "unit_price": 4.5, "amount": 22.5},
    ],
    "subtotal": 42.5,
    "tax_total": 8.08,
    "total": 50.58,
    "iban": "DE89370400440532013000",
}
INITECH_LINES: list[tuple[float, float, str]] = [
    (60, 70, "Initech Services AG"),
    (360, 70, "Invoice No. INV-77"),
    (360, 86, "Date 2024-04-01"),
    (60, 230, "Description Qty Price Amount"),
    (60, 250, "Consulting 1 1000.00 1000.00"),
    (360, 336, "Total EUR 1190.00"),
]
INITECH: dict[str, Any] = {
    "invoice_number": "INV-77",
    "issue_date": "2024-04-01",
    "seller": {"name": "Initech Services AG"},
    "currency": "EUR",
    "line_items": [{"description": "Consulting", "quantity": 1, "unit_price": 1000.0, "amount": 1000.0}],
    "total": 1190.0,
}


@dataclass
class Batch:
    id: str
    results: list[dict[str, Any] | None]
    """Each document's stored result (``GET /extractions/{id}``) in batch order; None when it failed."""
    schema: dict[str, Any]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        engine=EngineSettings(engine="replay", replay_dir=tmp_path / "replay"),
        jobs=JobSettings(lease_s=2.0, poll_s=0.1, retry_base_s=0.05),
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        yield client


@pytest.fixture
async def headers(db: Any, client: Client) -> dict[str, str]:
    return {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="erp")}


@pytest.fixture
async def batch(client: Client, headers: dict[str, str], settings: Settings) -> Batch:
    """acme.pdf (two line items), initech.pdf (one), broken.pdf (no recording: its job fails)."""
    replay = settings.engine.replay_dir
    assert replay is not None
    replay.mkdir(parents=True)
    acme, _ = invoice_pdf()
    initech, _ = invoice_pdf(lines=INITECH_LINES)
    broken, _ = invoice_pdf(lines=[(60.0, 70.0, "Nothing recorded for this one")])
    for pdf, data in ((acme, ACME), (initech, INITECH)):
        (replay / f"{hashlib.sha256(pdf).hexdigest()}.json").write_text(json.dumps(data))
    files = [
        ("file", (name, pdf, "application/pdf"))
        for name, pdf in (("acme.pdf", acme), ("initech.pdf", initech), ("broken.pdf", broken))
    ]
    submitted = await client.post("/batches?schema=invoice", files=files, headers=headers)
    assert submitted.status_code == 202, submitted.text
    results: list[dict[str, Any] | None] = []
    for job in submitted.json()["jobs"]:
        done = await wait_for(client, headers, job["id"])
        if done["extraction_id"] is None:
            results.append(None)
        else:
            results.append(
                (await client.get(f"/extractions/{done['extraction_id']}", headers=headers)).json()
            )
    assert [r is None for r in results] == [False, False, True], results
    schema = (await client.get("/schemas/invoice@1", headers=headers)).json()["schema"]
    return Batch(submitted.json()["batch_id"], results, schema)


def document_columns(schema: dict[str, Any]) -> list[str]:
    """The schema's columns, read here independently of the code under test."""
    columns = []
    for name, node in schema["properties"].items():
        if node.get("type") == "object":
            columns += [f"{name}.{inner}" for inner in node["properties"]]
        elif node.get("type") == "array":
            columns.append(f"{name}.count")
        else:
            columns.append(name)
    return columns


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def flat(data: dict[str, Any], columns: list[str]) -> dict[str, str]:
    """A result's data as the export's cells (plain values: no joined lists or dates in this set)."""
    out = {}
    for column in columns:
        head, _, rest = column.partition(".")
        if rest == "count":
            out[column] = str(len(data.get(head) or []))
        elif rest:
            out[column] = cell((data.get(head) or {}).get(rest))
        else:
            out[column] = cell(data.get(head))
    return out


def read_csv(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


async def test_documents_as_csv(client: Client, headers: dict[str, str], batch: Batch) -> None:
    response = await client.get(f"/batches/{batch.id}/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="batch_{batch.id}.csv"'
    columns = document_columns(batch.schema)
    assert next(csv.reader(io.StringIO(response.text))) == FIXED + columns
    rows = read_csv(response.text)
    assert [row["document"] for row in rows] == ["acme.pdf", "initech.pdf", "broken.pdf"]
    for row, result in zip(rows[:2], batch.results[:2], strict=True):
        assert result is not None
        assert row["extraction_id"] == result["id"] and row["status"] == result["status"]
        assert row["confidence"] == cell(result["confidence"])
        assert row["review_reasons"] == "; ".join(result["review"]["reasons"])
        assert {c: row[c] for c in columns} == flat(result["data"], columns)
    acme, initech, broken = rows
    assert acme["invoice_number"] == "INV-2024-0042" and acme["seller.name"] == "ACME Supplies GmbH"
    assert acme["line_items.count"] == "2" and initech["line_items.count"] == "1"
    assert acme["total"] == "50.58" and acme["issue_date"] == "2024-03-15"
    assert broken["status"] == "failed" and broken["extraction_id"] == ""
    assert all(broken[c] == "" for c in columns)


async def test_pages_of_the_stream_keep_the_batch_order(
    client: Client, headers: dict[str, str], batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = (await client.get(f"/batches/{batch.id}/export?format=jsonl", headers=headers)).text
    for size in (1, 2, 3):
        monkeypatch.setattr(batches, "EXPORT_PAGE", size)
        paged = await client.get(f"/batches/{batch.id}/export?format=jsonl", headers=headers)
        assert paged.text == whole


async def test_line_items_with_the_document_columns_repeated(
    client: Client, headers: dict[str, str], batch: Batch
) -> None:
    response = await client.get(f"/batches/{batch.id}/export?rows=line_items", headers=headers)
    assert response.status_code == 200, response.text
    rows = read_csv(response.text)
    assert [(r["document"], r["line"]) for r in rows] == [
        ("acme.pdf", "1"),
        ("acme.pdf", "2"),
        ("initech.pdf", "1"),
        ("broken.pdf", ""),
    ]
    header = next(csv.reader(io.StringIO(response.text)))
    item_columns = [
        f"line_items.{name}" for name in batch.schema["properties"]["line_items"]["items"]["properties"]
    ]
    at = header.index(item_columns[0])
    assert header[: len(FIXED) + 1] == [*FIXED, "line"]
    assert header[at : at + len(item_columns)] == item_columns
    assert "line_items.count" not in header
    acme = batch.results[0]
    assert acme is not None
    for row, item in zip(rows[:2], acme["data"]["line_items"], strict=True):
        assert row["invoice_number"] == "INV-2024-0042" and row["seller.name"] == "ACME Supplies GmbH"
        assert row["total"] == cell(acme["data"]["total"])
        assert {c: row[c] for c in item_columns} == {
            c: cell(item.get(c.removeprefix("line_items."))) for c in item_columns
        }
    assert (
        rows[0]["line_items.description"] == "Widget large"
        and rows[2]["line_items.description"] == "Consulting"
    )
    assert rows[3]["status"] == "failed" and rows[3]["line_items.description"] == ""


async def test_decimal_comma_semicolons_day_month_year_and_a_bom(
    client: Client, headers: dict[str, str], batch: Batch
) -> None:
    response = await client.get(
        f"/batches/{batch.id}/export",
        params={"decimal": ",", "date_format": "dmy", "bom": "true", "rows": "line_items"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbfdocument;extraction_id;status;")
    rows = read_csv(response.content.decode("utf-8-sig"), delimiter=";")
    acme = rows[0]
    assert acme["issue_date"] == "15.03.2024" and acme["total"] == "50,58" and acme["subtotal"] == "42,5"
    assert rows[1]["line_items.amount"] == "22,5" and rows[2]["issue_date"] == "01.04.2024"
    tabs = await client.get(f"/batches/{batch.id}/export?delimiter=tab&date_format=mdy", headers=headers)
    assert read_csv(tabs.text, delimiter="\t")[0]["issue_date"] == "03/15/2024"


async def test_json_lines_by_format_or_accept(client: Client, headers: dict[str, str], batch: Batch) -> None:
    response = await client.get(f"/batches/{batch.id}/export?format=jsonl", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == f'attachment; filename="batch_{batch.id}.jsonl"'
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["document"] for line in lines] == ["acme.pdf", "initech.pdf", "broken.pdf"]
    for line, result in zip(lines[:2], batch.results[:2], strict=True):
        assert result is not None
        assert list(line) == FIXED + list(batch.schema["properties"])
        assert line["extraction_id"] == result["id"] and line["review_reasons"] == result["review"]["reasons"]
        properties = batch.schema["properties"]
        assert {k: line[k] for k in properties} == {k: result["data"].get(k) for k in properties}
    assert lines[2]["status"] == "failed" and all(lines[2][k] is None for k in batch.schema["properties"])

    negotiated = await client.get(
        f"/batches/{batch.id}/export", headers={**headers, "Accept": "application/jsonl"}
    )
    assert negotiated.headers["content-type"] == "application/jsonl"
    assert negotiated.text == response.text
    ndjson = await client.get(
        f"/batches/{batch.id}/export", headers={**headers, "Accept": "application/x-ndjson"}
    )
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    csv_asked = await client.get(f"/batches/{batch.id}/export", headers={**headers, "Accept": "text/csv"})
    assert csv_asked.headers["content-type"] == "text/csv; charset=utf-8"

    items = await client.get(f"/batches/{batch.id}/export?format=jsonl&rows=line_items", headers=headers)
    rows = [json.loads(line) for line in items.text.splitlines()]
    assert [(r["document"], r["line"]) for r in rows] == [
        ("acme.pdf", 1),
        ("acme.pdf", 2),
        ("initech.pdf", 1),
        ("broken.pdf", None),
    ]
    acme = batch.results[0]
    assert acme is not None
    assert rows[1]["item"] == acme["data"]["line_items"][1]
    assert rows[1]["header"] == {k: v for k, v in acme["data"].items() if k != "line_items"}


async def test_another_keys_batch_is_not_found(client: Client, db: Any, batch: Batch) -> None:
    stranger = {"X-API-Key": await issue_key(db, Scope.EXTRACT, name="stranger")}
    assert_problem(await client.get(f"/batches/{batch.id}/export", headers=stranger), 404, "batch-not-found")
    assert_problem(await client.get("/batches/bat_nope/export", headers=stranger), 404, "batch-not-found")
    admin = {"X-API-Key": await issue_key(db, Scope.ADMIN, name="admin")}
    assert (await client.get(f"/batches/{batch.id}/export", headers=admin)).status_code == 200


@pytest.mark.parametrize(
    ("query", "pointers"),
    [
        ("format=xlsx", ["/format"]),
        ("decimal=%27&delimiter=%7C", ["/decimal", "/delimiter"]),
        ("date_format=ymd&bom=yes", ["/date_format", "/bom"]),
    ],
)
async def test_bad_options_are_400(
    client: Client, headers: dict[str, str], batch: Batch, query: str, pointers: list[str]
) -> None:
    body = assert_problem(
        await client.get(f"/batches/{batch.id}/export?{query}", headers=headers), 400, "invalid-export-option"
    )
    assert [error["pointer"] for error in body["errors"]] == pointers


async def test_rows_of_no_array_of_objects_are_400(
    client: Client, headers: dict[str, str], batch: Batch
) -> None:
    body = assert_problem(
        await client.get(f"/batches/{batch.id}/export?rows=seller", headers=headers), 400, "no-line-items"
    )
    assert body["available"] == ["line_items"]
