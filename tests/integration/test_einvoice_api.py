"""E-invoices through the API: Factur-X / ZUGFeRD / XRechnung PDFs and UBL / CII XML uploads read
from their XML (``source: "e-invoice"``), checked against the visible page, refused safely when
hostile; the UBL / CII / JSON export of an extraction. Documents are built the way senders' software
builds them (``tests.einvoice_factory``: drafthorse, factur-x, hand-built UBL), never by the writers
under test. The layout engine reads the pages (no model), the database is SQLite."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ExtractionRecord
from app.einvoice import cii, ubl, xsd
from app.einvoice.xml import parse_xml
from app.lib.settings import EngineSettings, IngestSettings, OcrSettings, Settings
from tests.conftest import fresh_database, make_settings
from tests.einvoice_factory import (
    cii_xml,
    facturx_pdf,
    french_sample,
    german_sample,
    invoice_data,
    invoice_page_pdf,
    pdf_with_attachment,
    ubl_xml,
)
from tests.helpers import wait_for

Json = dict[str, Any]


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """The layout engine reads the pages; a test changes groups with ``indirect`` parameters."""
    groups = {"engine": EngineSettings(engine="layout"), "ocr": OcrSettings(enabled=False)}
    return make_settings(tmp_path / "data", database_url, **{**groups, **getattr(request, "param", {})})


async def extract(
    client: AsyncTestClient[Litestar], headers: Json, body: bytes, schema: str = "invoice"
) -> Json:
    response = await client.post(f"/extract/{schema}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


async def test_a_facturx_pdf_is_read_from_its_xml_and_grounded_on_its_page(
    client: AsyncTestClient[Litestar], admin_headers: Json, db: async_sessionmaker[AsyncSession]
) -> None:
    sample = german_sample()
    response = await client.post("/extract/invoice", content=facturx_pdf(sample), headers=admin_headers)
    result = response.json()

    assert result["data"] == invoice_data(sample)
    async with db() as session:
        stored = await session.scalar(select(ExtractionRecord.result))
    assert stored is not None  # the typed answer is the stored JSON: no field lost or reordered
    assert response.content == msgspec.json.encode(msgspec.json.decode(stored))
    report = result["einvoice"]
    assert report["syntax"] == "CII" and report["attachment"] == "factur-x.xml"
    assert report["relationship"] == "Data" and report["profile"] == "urn:cen.eu:en16931:2017"
    assert report["valid"] is True and report["violations"] == [] and report["error"] is None
    fields = result["fields"]
    assert {f["source"] for f in fields.values()} == {"e-invoice"}
    total = fields["/total"]
    assert total["einvoice"]["business_term"] == "BT-112"
    assert total["einvoice"]["path"].endswith("ram:GrandTotalAmount")
    assert total["einvoice"]["path"].startswith("/rsm:CrossIndustryInvoice/")
    assert total["evidence"] and total["evidence"][0]["page"] == 1  # printed on the page too
    assert total["confidence"] >= 0.99
    assert fields["/line_items/1/unit"]["einvoice"]["text"] == "HUR"
    assert fields["/seller/address"]["einvoice"]["business_term"] == "BG-5"
    assert not [r for r in result["review"]["reasons"] if r.startswith("einvoice_")]
    assert result["status"] == "succeeded", result["review"]["reasons"]


async def test_a_page_that_shows_another_total_than_the_xml_is_a_review_reason_naming_both(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    sample = german_sample()
    tampered = facturx_pdf(sample, page_text={"total": "1999.99", "due": "1999.99"})
    result = await extract(client, admin_headers, tampered)

    assert result["data"]["total"] == float(sample.grand_total)  # the XML is the invoice
    assert "einvoice_mismatch:/total" in result["review"]["reasons"]
    assert result["status"] == "needs_review"
    total = result["fields"]["/total"]
    assert total["einvoice"]["page_value"] == 1999.99
    assert total["rivals"][0]["value"] == 1999.99
    assert total["confidence"] < 0.5
    assert "einvoice_mismatch:/invoice_number" not in result["review"]["reasons"]


@pytest.mark.parametrize("credit_note", [False, True])
async def test_a_ubl_upload_is_read_without_pages(
    client: AsyncTestClient[Litestar], admin_headers: Json, credit_note: bool
) -> None:
    sample = replace(french_sample(), credit_note=credit_note)
    result = await extract(client, admin_headers, ubl_xml(sample, credit_note=credit_note))

    assert result["data"] == invoice_data(sample)
    assert result["einvoice"]["syntax"] == "UBL" and result["einvoice"]["attachment"] is None
    assert result["model"] == {"engine": "e-invoice", "name": "EN 16931 XML"}
    assert result["pages"] == [] and result["status"] == "succeeded"
    assert all(f["evidence"] == [] and f["confidence"] >= 0.98 for f in result["fields"].values())
    assert result["fields"]["/invoice_number"]["einvoice"]["path"].startswith(
        "/CreditNote/" if credit_note else "/Invoice/"
    )
    stored = (await client.get(f"/extractions/{result['id']}", headers=admin_headers)).json()
    assert stored["data"] == result["data"]
    refused = await client.get(f"/extractions/{result['id']}/pages/1", headers=admin_headers)
    assert refused.status_code == 404 and refused.json()["type"].endswith("/page-not-found")


async def test_other_embedded_names_and_a_zugferd_name_are_told_apart(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    """Only the standard attachment is read: the same XML under another name is ignored (the page is
    read instead); under ZUGFeRD 2.0's name it is read."""
    sample = german_sample()
    ignored = await extract(
        client, admin_headers, pdf_with_attachment(sample, "invoice-data.xml", cii_xml(sample))
    )
    assert ignored["einvoice"] is None
    assert {f["source"] for f in ignored["fields"].values()} == {"engine"}
    zugferd = await extract(client, admin_headers, facturx_pdf(sample, filename="zugferd-invoice.xml"))
    assert zugferd["einvoice"]["attachment"] == "zugferd-invoice.xml"
    assert zugferd["data"]["invoice_number"] == sample.number


async def test_a_pdf_whose_xml_is_broken_is_read_from_its_page_with_a_reason(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    sample = german_sample()
    broken = cii_xml(sample).replace(b"</rsm:CrossIndustryInvoice>", b"")
    result = await extract(client, admin_headers, facturx_pdf(sample, xml=broken, filename="xrechnung.xml"))

    assert result["einvoice"]["error"] == "malformed" and result["einvoice"]["valid"] is False
    assert "einvoice_unreadable:malformed" in result["review"]["reasons"]
    assert result["status"] == "needs_review"
    assert result["data"]["invoice_number"] == sample.number  # the layout engine read the page
    assert {f["source"] for f in result["fields"].values()} == {"engine"}


async def test_an_xsd_invalid_xml_is_used_and_reported(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    sample = french_sample()
    invalid = ubl_xml(sample).replace(b"<cbc:IssueDate>", b"<cbc:Unknown>x</cbc:Unknown><cbc:IssueDate>", 1)
    result = await extract(client, admin_headers, invalid)
    report = result["einvoice"]
    assert report["valid"] is False and report["violations"]
    assert "Unknown" in report["violations"][0]["message"] and report["violations"][0]["line"] > 1
    assert f"einvoice_invalid:{len(report['violations'])}" in result["review"]["reasons"]
    assert result["data"]["invoice_number"] == sample.number


LAUGHS = "".join(
    f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
"""Billion laughs: each entity ten of the one before, nine levels (10^9 a's)."""


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<!ENTITY leak 'fetched'>")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[str]:
    _Recorder.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_hostile_xml_is_a_422_and_nothing_is_fetched_or_stored(
    client: AsyncTestClient[Litestar], admin_headers: Json, listener: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    ubl_root = '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
    hostile = {
        "dtd_forbidden": [
            f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>{ubl_root}&e;</Invoice>',
            f'<?xml version="1.0"?><!DOCTYPE x SYSTEM "{listener}/dtd">{ubl_root}</Invoice>',
            f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{listener}/p"> %p;]>{ubl_root}</Invoice>',
            f'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">{LAUGHS}]>{ubl_root}&i;</Invoice>',
        ],
        "too_large": [f"{ubl_root}<x>{'a' * (6 * 1024 * 1024)}</x></Invoice>"],
        "too_deep": [ubl_root + "<a>" * 200 + "</a>" * 200 + "</Invoice>"],
        "malformed": [f"{ubl_root}<cbc:ID>1</Invoice>"],
        "not_an_invoice": ['<?xml version="1.0"?><order xmlns="urn:example"><id>1</id></order>'],
    }
    for reason, bodies in hostile.items():
        for body in bodies:
            response = await client.post("/extract/invoice", content=body.encode(), headers=admin_headers)
            assert response.status_code == 422, (reason, response.text)
            problem = response.json()
            assert problem["type"].endswith("/einvoice-invalid") and problem["reason"] == reason
            assert "TOP-SECRET" not in response.text
    assert _Recorder.hits == []
    listed = (await client.get("/extractions", headers=admin_headers)).json()
    assert listed["items"] == []


async def test_a_user_schema_is_mapped_by_annotations_and_by_its_names(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "number": {"type": "string", "description": "Invoice number"},
            "leitweg_id": {"type": "string", "x-en16931": "BT-10"},
            "date": {"type": "string", "format": "date", "description": "Invoice date"},
            "amount_due": {"type": "number", "x-en16931": "BT-115"},
            "grand_total": {"type": "number", "description": "Total amount including VAT"},
            "vendor": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "vat": {"type": "string", "description": "VAT ID"},
                    "country": {"type": "string", "x-en16931": "BT-40"},
                },
            },
            "vat": {
                "type": "array",
                "x-en16931": "BG-23",
                "items": {
                    "type": "object",
                    "properties": {
                        "rate": {"type": "number", "x-en16931": "BT-119"},
                        "tax": {"type": "number", "x-en16931": "BT-117"},
                    },
                },
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "Item description"},
                        "qty": {"type": "number", "description": "Quantity"},
                        "gtin": {"type": "string", "x-en16931": "BT-157"},
                    },
                },
            },
            "internal_note": {"type": "string", "x-en16931": False, "description": "Invoice note"},
        },
    }
    created = await client.post("/schemas", json={"name": "ap", "schema": schema}, headers=admin_headers)
    assert created.status_code == 201, created.text
    sample = german_sample()
    result = await extract(client, admin_headers, facturx_pdf(sample), schema="ap")
    data = result["data"]
    assert data["number"] == sample.number and data["leitweg_id"] == sample.buyer_reference
    assert data["date"] == "2024-03-15"
    assert data["amount_due"] == float(sample.due_amount) and data["grand_total"] == float(sample.grand_total)
    assert data["vendor"] == {"name": sample.seller.name, "vat": sample.seller.vat_id, "country": "DE"}
    assert data["vat"] == [{"rate": float(row.rate), "tax": float(row.tax)} for row in sample.vat_breakdown()]
    assert [item["text"] for item in data["items"]] == [line.name for line in sample.lines]
    assert [item.get("gtin") for item in data["items"]] == [line.standard_id for line in sample.lines]
    assert [item["qty"] for item in data["items"]] == [float(line.quantity) for line in sample.lines]
    assert result["fields"]["/vat/1/tax"]["einvoice"]["business_term"] == "BT-117"
    assert "internal_note" not in data or result["fields"]["/internal_note"]["source"] == "engine"


async def test_a_misplaced_or_unknown_annotation_is_refused_at_registration(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    for annotation, where, words in (
        ("BT-999", "/schema/properties/n/x-en16931", "unknown business term BT-999"),
        ("BT-129", "/schema/properties/n/x-en16931", "outside a BG-25"),
        (["BG-5", "BT-1"], "/schema/properties/n/x-en16931", "whole group"),
    ):
        schema = {"type": "object", "properties": {"n": {"type": "string", "x-en16931": annotation}}}
        response = await client.post(
            "/schemas", json={"name": "bad", "schema": schema}, headers=admin_headers
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/invalid-schema")
        assert problem["errors"][0]["pointer"] == where and words in problem["errors"][0]["detail"]
    in_lines = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "x-en16931": "BG-25",
                "items": {"type": "object", "properties": {"x": {"type": "string", "x-en16931": "BT-1"}}},
            }
        },
    }
    response = await client.post("/schemas", json={"name": "bad", "schema": in_lines}, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/schema/properties/lines/items/properties/x/x-en16931"


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
async def test_an_export_is_xsd_valid_and_round_trips_to_the_same_extraction(
    client: AsyncTestClient[Litestar], admin_headers: Json, fmt: str
) -> None:
    sample = german_sample()
    first = await extract(client, admin_headers, facturx_pdf(sample))
    response = await client.get(f"/extractions/{first['id']}/export?format={fmt}", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert f'filename="{fmt}-{first["id"]}.xml"' in response.headers["content-disposition"]
    root = parse_xml(response.content)
    assert xsd.validate(root) == []
    invoice = (ubl if fmt == "ubl" else cii).read(root)
    assert invoice.terms["BT-1"].value == sample.number
    assert invoice.terms["BT-112"].value == str(sample.grand_total)
    assert len(invoice.lines) == len(sample.lines)
    again = await extract(client, admin_headers, response.content)
    assert again["data"] == first["data"]


async def test_an_export_derives_what_the_data_settles_and_lists_what_is_missing(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    """A schema without countries, units and rates: the countries come from the VAT ids, the unit is
    "one", the VAT breakdown comes from the totals (one rate, 19 %). A schema with only a number and
    a total cannot make an invoice: 422 with the missing business terms."""
    sample = german_sample()
    sample = replace(sample, lines=sample.lines[:2], prepaid=None, rounding=None)  # both lines at 19 %
    line = {"description": {"type": "string"}, "quantity": {"type": "number"}, "amount": {"type": "number"}}
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "issue_date": {"type": "string", "format": "date"},
            "currency": {"type": "string"},
            "seller": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "vat_id": {"type": "string"}},
            },
            "buyer": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "vat_id": {"type": "string"}},
            },
            "line_items": {"type": "array", "items": {"type": "object", "properties": line}},
            "subtotal": {"type": "number"},
            "tax_total": {"type": "number"},
            "total": {"type": "number"},
        },
    }
    created = await client.post("/schemas", json={"name": "lean", "schema": schema}, headers=admin_headers)
    assert created.status_code == 201, created.text
    lean = await extract(client, admin_headers, ubl_xml(sample), schema="lean")
    response = await client.get(f"/extractions/{lean['id']}/export?format=ubl", headers=admin_headers)
    assert response.status_code == 200, response.text
    root = parse_xml(response.content)
    assert xsd.validate(root) == []
    invoice = ubl.read(root)
    assert invoice.terms["BT-40"].value == "DE" and invoice.terms["BT-55"].value == "DE"
    assert [line["BT-130"].value for line in invoice.lines] == ["C62", "C62"]
    assert [line["BT-146"].value for line in invoice.lines] == [str(line.unit_price) for line in sample.lines]
    assert [(row["BT-119"].value, row["BT-117"].value) for row in invoice.vat_breakdown] == [
        ("19.00", str(sample.tax_total))
    ]
    assert invoice.terms["BT-115"].value == str(sample.grand_total)
    mixed = await extract(client, admin_headers, ubl_xml(german_sample()), schema="lean")  # 19 % and 7 %
    refused = await client.get(f"/extractions/{mixed['id']}/export?format=ubl", headers=admin_headers)
    assert refused.status_code == 422  # no rate is guessed for lines without one
    assert refused.json()["missing"] == ["BG-23", "BG-25/BT-151"]

    thin = {
        "type": "object",
        "properties": {
            "number": {"type": "string", "x-en16931": "BT-1"},
            "total": {"type": "number", "x-en16931": "BT-112"},
        },
    }
    await client.post("/schemas", json={"name": "thin", "schema": thin}, headers=admin_headers)
    read = await extract(client, admin_headers, ubl_xml(sample), schema="thin")
    assert read["data"] == {"number": sample.number, "total": float(sample.grand_total)}
    refused = await client.get(f"/extractions/{read['id']}/export?format=cii", headers=admin_headers)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/export-incomplete")
    assert {"BT-2", "BT-5", "BT-27", "BT-44", "BG-25"} <= set(refused.json()["missing"])
    accept_json = {**admin_headers, "Accept": "application/json"}
    as_json = await client.get(f"/extractions/{read['id']}/export", headers=accept_json)
    assert as_json.status_code == 200 and as_json.json() == read["data"]

    receipt = await extract(client, admin_headers, ubl_xml(sample), schema="receipt")
    not_invoice = await client.get(f"/extractions/{receipt['id']}/export?format=ubl", headers=admin_headers)
    assert not_invoice.status_code == 422


async def test_a_batch_reads_xml_uploads_and_facturx_pdfs_alike_and_exports_them(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    german, french = german_sample(), french_sample()
    files = [
        ("file", ("rechnung.pdf", facturx_pdf(german), "application/pdf")),
        ("file", ("facture.xml", ubl_xml(french), "application/xml")),
    ]
    submitted = await client.post("/batches?schema=invoice", files=files, headers=admin_headers)
    assert submitted.status_code == 202, submitted.text
    results = []
    for job in submitted.json()["jobs"]:
        done = await wait_for(client, admin_headers, job["id"])
        results.append(
            (await client.get(f"/extractions/{done['extraction_id']}", headers=admin_headers)).json()
        )
    assert [r["data"] for r in results] == [invoice_data(german), invoice_data(french)]
    assert [r["einvoice"]["syntax"] for r in results] == ["CII", "UBL"]
    exported = await client.get(f"/batches/{submitted.json()['batch_id']}/export", headers=admin_headers)
    assert exported.status_code == 200
    rows = exported.text.splitlines()
    assert rows[1].startswith("rechnung.pdf,") and german.number in rows[1]
    assert rows[2].startswith("facture.xml,") and french.number in rows[2]


@pytest.mark.parametrize("settings", [{"engine": EngineSettings(engine="sglang")}], indirect=True)
async def test_without_an_engine_e_invoices_are_still_read_and_other_documents_are_503(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    """No GLM-OCR configured (``sglang`` without a URL): the XML needs no model."""
    sample = german_sample()
    result = await extract(client, admin_headers, facturx_pdf(sample))
    assert result["data"] == invoice_data(sample) and result["status"] == "succeeded"
    assert result["model"]["engine"] == "e-invoice" and result["pages"] == []
    assert result["fields"]["/total"]["evidence"]  # still grounded on the page's words
    plain = await client.post("/extract/invoice", content=invoice_page_pdf(sample), headers=admin_headers)
    assert plain.status_code == 503 and plain.json()["type"].endswith("/engine-unavailable")


@pytest.mark.parametrize("settings", [{"ingest": IngestSettings(einvoice=False)}], indirect=True)
async def test_reading_e_invoices_can_be_turned_off(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    sample = german_sample()
    result = await extract(client, admin_headers, facturx_pdf(sample))
    assert result["einvoice"] is None and {f["source"] for f in result["fields"].values()} == {"engine"}
    refused = await client.post("/extract/invoice", content=ubl_xml(sample), headers=admin_headers)
    assert refused.status_code == 415 and refused.json()["type"].endswith("/unsupported-document-type")


async def test_wrong_identifiers_in_the_xml_go_to_review_and_block_export(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    """python-stdnum's checks: an IBAN with wrong check digits, a BIC that is not one."""
    sample = replace(french_sample(), iban="FR7630006000011234567890188", bic="CO8ADEFF")
    result = await extract(client, admin_headers, ubl_xml(sample))
    assert result["data"]["iban"] == "FR7630006000011234567890188"  # as the XML says, not "fixed"
    reasons = result["review"]["reasons"]
    assert "unparsed:/iban" in reasons and "invalid_identifier:/bic" in reasons
    assert result["status"] == "needs_review"
    refused = await client.get(f"/extractions/{result['id']}/export?format=ubl", headers=admin_headers)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/export-invalid")
    assert any("BT-84" in v for v in refused.json()["violations"])
    assert any("BT-86" in v for v in refused.json()["violations"])


async def test_analyze_reports_the_einvoice_profile(
    client: AsyncTestClient[Litestar], admin_headers: Json
) -> None:
    sample = german_sample()
    pdf = (await client.post("/documents/analyze", content=facturx_pdf(sample), headers=admin_headers)).json()
    assert pdf["page_count"] == 1 and pdf["pages"][0]["words"]
    assert pdf["einvoice"]["profile"] == "urn:cen.eu:en16931:2017"
    assert pdf["einvoice"]["attachment"] == "factur-x.xml" and pdf["einvoice"]["xsd"]
    xml = (await client.post("/documents/analyze", content=ubl_xml(sample), headers=admin_headers)).json()
    assert xml["pages"] == [] and xml["einvoice"]["syntax"] == "UBL"
    plain = (
        await client.post("/documents/analyze", content=invoice_page_pdf(sample), headers=admin_headers)
    ).json()
    assert plain["einvoice"] is None
