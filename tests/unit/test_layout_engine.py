"""The layout engine end to end (ingest, text map, engine, trust layer) on invoices drawn in code:
labels left of values, above them, in tables, over two pages, in several languages, each with
known values that must come back exactly; and a document without a total, which must stay null."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from app.documents.service import DocumentAnalyzer
from app.documents.textmap import PageMap
from app.engines.factory import build_engine
from app.engines.layout import LayoutEngine
from app.engines.layout.engine import read_page
from app.engines.layout.fields import ConceptMatcher, plan
from app.extraction.service import Extractor
from app.lib.errors import DocextractError
from app.lib.settings import EngineSettings, OcrSettings
from app.pages import Word
from app.registry.service import SchemaVersion
from app.registry.validation import SchemaLimits, validate_schema
from tests.conftest import make_settings

SCHEMAS = Path(__file__).parents[2] / "schemas"
Drawing = list[tuple[int, float, float, str]]
"""(page, x, y, text) in points on A4."""


def pdf(drawing: Drawing, size: float = 10) -> bytes:
    doc = pymupdf.open()
    for _ in range(max(p for p, _, _, _ in drawing)):
        doc.new_page(width=595, height=842)
    for page, x, y, text in drawing:
        doc[page - 1].insert_text((x, y), text, fontsize=size, fontname="helv")
    return bytes(doc.tobytes())


def version(schema: dict[str, Any]) -> SchemaVersion:
    return SchemaVersion(
        name="test",
        version=1,
        description=None,
        schema=schema,
        sha256="0" * 64,
        source="file",
        created_at=datetime.now(UTC),
        deprecated_at=None,
        latest_version=1,
    )


@pytest.fixture
def extractor(tmp_path: Path) -> Extractor:
    settings = make_settings(tmp_path, None, ocr=OcrSettings(enabled=False))
    return Extractor(LayoutEngine(), DocumentAnalyzer(settings), max_tokens=4096, page_concurrency=4)


async def extract(extractor: Extractor, data: bytes, schema: dict[str, Any]) -> dict[str, Any]:
    return (await extractor.extract(data, version(schema))).result


def invoice_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / "invoice.json").read_text())
    return schema


ENGLISH_LEFT: Drawing = [
    (1, 50, 60, "Northwind Traders Ltd"),
    (1, 50, 74, "12 Harbour Road, Leeds LS1 4AB"),
    (1, 350, 60, "Invoice No.:"),
    (1, 450, 60, "NW-2024-117"),
    (1, 350, 74, "Invoice Date:"),
    (1, 450, 74, "14/03/2024"),
    (1, 350, 88, "Due Date:"),
    (1, 450, 88, "13/04/2024"),
    (1, 50, 200, "Description"),
    (1, 300, 200, "Qty"),
    (1, 380, 200, "Unit Price"),
    (1, 480, 200, "Amount"),
    (1, 50, 218, "Oak desk"),
    (1, 300, 218, "2"),
    (1, 380, 218, "250.00"),
    (1, 480, 218, "500.00"),
    (1, 50, 234, "Desk lamp"),
    (1, 300, 234, "4"),
    (1, 380, 234, "25.50"),
    (1, 480, 234, "102.00"),
    (1, 380, 280, "Subtotal"),
    (1, 480, 280, "602.00"),
    (1, 380, 296, "VAT 20%"),
    (1, 480, 296, "120.40"),
    (1, 380, 312, "Total GBP"),
    (1, 480, 312, "722.40"),
    (1, 50, 380, "IBAN: GB29 NWBK 6016 1331 9268 19"),
]


async def test_labels_left_of_values_and_a_table(extractor: Extractor) -> None:
    result = await extract(extractor, pdf(ENGLISH_LEFT), invoice_schema())
    data = result["data"]
    assert data["invoice_number"] == "NW-2024-117"
    assert (data["issue_date"], data["due_date"]) == ("2024-03-14", "2024-04-13")
    assert (data["subtotal"], data["tax_total"], data["total"]) == (602.0, 120.4, 722.4)
    assert data["currency"] == "GBP"
    assert data["iban"] == "GB29NWBK60161331926819"
    assert data["seller"]["name"] == "Northwind Traders Ltd"
    assert [(i["description"], i["quantity"], i["unit_price"], i["amount"]) for i in data["line_items"]] == [
        ("Oak desk", 2, 250.0, 500.0),
        ("Desk lamp", 4, 25.5, 102.0),
    ]
    passed = {c["rule"] for c in result["checks"] if c["status"] == "passed"}
    assert {"subtotal_plus_tax_is_total", "line_items_sum_to_subtotal"} <= passed
    assert result["model"]["engine"] == "layout"
    assert result["fields"]["/total"]["evidence"][0]["text"] == "722.40"


GERMAN_ABOVE: Drawing = [
    (1, 50, 60, "Müller Werkzeuge GmbH"),
    (1, 50, 140, "Rechnungsnummer"),
    (1, 50, 154, "RE-88412"),
    (1, 200, 140, "Rechnungsdatum"),
    (1, 200, 154, "02.05.2024"),
    (1, 350, 140, "Fällig am"),
    (1, 350, 154, "01.06.2024"),
    (1, 350, 300, "Nettobetrag"),
    (1, 480, 300, "1.250,00 EUR"),
    (1, 350, 316, "MwSt. 19 %"),
    (1, 480, 316, "237,50 EUR"),
    (1, 350, 332, "Gesamtbetrag"),
    (1, 480, 332, "1.487,50 EUR"),
]


async def test_german_labels_above_values(extractor: Extractor) -> None:
    data = (await extract(extractor, pdf(GERMAN_ABOVE), invoice_schema()))["data"]
    assert data["invoice_number"] == "RE-88412"
    assert (data["issue_date"], data["due_date"]) == ("2024-05-02", "2024-06-01")
    assert (data["subtotal"], data["tax_total"], data["total"]) == (1250.0, 237.5, 1487.5)
    assert data["currency"] == "EUR"
    assert data["seller"]["name"] == "Müller Werkzeuge GmbH"


FRENCH_INLINE: Drawing = [
    (1, 50, 60, "Boulangerie Dupont SARL"),
    (1, 50, 120, "Facture n° FA-2024-0031"),
    (1, 50, 134, "Date de facture : 07/02/2024"),
    (1, 330, 300, "Total HT : 80,00 EUR"),
    (1, 330, 316, "TVA : 16,00 EUR"),
    (1, 330, 332, "Total TTC : 96,00 EUR"),
]


async def test_french_labels_with_values_inline(extractor: Extractor) -> None:
    data = (await extract(extractor, pdf(FRENCH_INLINE), invoice_schema()))["data"]
    assert data["invoice_number"] == "FA-2024-0031"
    assert data["issue_date"] == "2024-02-07"
    assert (data["subtotal"], data["tax_total"], data["total"]) == (80.0, 16.0, 96.0)
    assert data["currency"] == "EUR"


def two_page_invoice() -> Drawing:
    drawing: Drawing = [(1, 50, 60, "Factuurnummer: NL-5521"), (1, 50, 74, "Factuurdatum: 15-01-2024")]
    amounts = []
    for page in (1, 2):
        top = 150 if page == 1 else 80
        drawing += [(page, 50, top, "Omschrijving"), (page, 300, top, "Aantal"), (page, 400, top, "Prijs")]
        drawing.append((page, 480, top, "Bedrag"))
        for row in range(3):
            n = (page - 1) * 3 + row + 1
            y = top + 18 * (row + 1)
            drawing += [(page, 50, y, f"Artikel {n}"), (page, 300, y, str(n)), (page, 400, y, "10,00")]
            drawing.append((page, 480, y, f"{n * 10},00"))
            amounts.append(n * 10)
    drawing += [(2, 380, 300, "Totaal"), (2, 480, 300, f"{sum(amounts)},00")]
    return drawing


async def test_line_items_continue_over_two_pages(extractor: Extractor) -> None:
    data = (await extract(extractor, pdf(two_page_invoice()), invoice_schema()))["data"]
    assert data["invoice_number"] == "NL-5521"
    assert data["issue_date"] == "2024-01-15"
    assert [i["description"] for i in data["line_items"]] == [f"Artikel {n}" for n in range(1, 7)]
    assert [i["amount"] for i in data["line_items"]] == [n * 10.0 for n in range(1, 7)]
    assert data["total"] == 210.0


async def test_a_document_without_a_total_gives_null_and_a_review_reason(extractor: Extractor) -> None:
    drawing = [line for line in ENGLISH_LEFT if "Total" not in line[3] and line[3] != "722.40"]
    result = await extract(extractor, pdf(drawing), invoice_schema())
    assert result["data"].get("total") is None
    assert "missing:/total" in result["review"]["reasons"]
    assert result["status"] == "needs_review"
    assert result["data"]["subtotal"] == 602.0  # the rest is still read


async def test_aliases_declared_in_the_schema_name_a_field() -> None:
    schema = {
        "type": "object",
        "properties": {"kostenstelle": {"type": "string", "x-aliases": ["Cost centre", "Kostenstelle"]}},
    }
    without = {"type": "object", "properties": {"kostenstelle": {"type": "string"}}}
    engine = LayoutEngine(ConceptMatcher(None))
    words = [
        Word("Cost", (0.1, 0.1, 0.15, 0.12), 1.0, "pdf", 0),
        Word("centre:", (0.16, 0.1, 0.22, 0.12), 1.0, "pdf", 0),
        Word("CC-204", (0.23, 0.1, 0.3, 0.12), 1.0, "pdf", 0),
    ]
    page = PageMap(1, 595, 842, "born_digital", words)
    with_aliases = read_page(page, *engine._plan(schema))
    assert with_aliases.values[("kostenstelle",)].value == "CC-204"
    assert ("kostenstelle",) not in read_page(page, *engine._plan(without)).values


def test_auto_selection_falls_back_to_the_layout_engine(tmp_path: Path) -> None:
    engine = build_engine(EngineSettings(engine="auto", model=str(tmp_path / "no-weights")))
    assert isinstance(engine, LayoutEngine)


def test_concepts_of_schemas_without_aliases() -> None:
    """Property names and descriptions alone lead to the right label families (no embedding model)."""
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "date_due": {"type": "string", "format": "date", "description": "Payment due date"},
            "amount_untaxed": {"type": "number", "description": "Total excluding taxes"},
            "total": {"type": "number", "description": "Total amount paid including tax"},
        },
    }
    concepts = {
        s.name: s.concept.key if s.concept else None for s in plan(schema, ConceptMatcher(None)).fields
    }
    assert concepts == {
        "invoice_number": "invoice_number",
        "date_due": "due_date",
        "amount_untaxed": "subtotal",
        "total": "total",
    }


def test_registration_accepts_aliases_and_refuses_malformed_ones() -> None:
    good = {
        "type": "object",
        "properties": {
            "total": {"type": "number", "x-aliases": ["Total", "Gesamtbetrag"]},
            "date": {"type": "string", "x-aliases": {"de": ["Datum"], "ms": ["Tarikh"]}},
        },
    }
    validate_schema(good, SchemaLimits())
    bad = {"type": "object", "properties": {"total": {"type": "number", "x-aliases": "Total"}}}
    with pytest.raises(DocextractError) as refused:
        validate_schema(bad, SchemaLimits())
    extra = refused.value.extra
    assert isinstance(extra, dict)
    assert extra["errors"][0]["pointer"] == "/schema/properties/total/x-aliases"


MULTI_RATE_RECEIPT: Drawing = [
    (1, 50, 60, "Kassenbon"),
    (1, 50, 80, "Datum: 28.05.2018 13:20"),
    (1, 50, 100, "Süßwaren 26,61"),
    (1, 50, 114, "Wartung Drucker 19,18"),
    (1, 50, 140, "Gesamtbetrag: 45,79 EUR"),
    *[
        (1, x, y, text)
        for y, cells in (
            (170, ("MwSt-Satz", "Netto", "MwSt", "Brutto")),
            (186, ("7 %", "24,87", "1,74", "26,61")),
            (202, ("19 %", "16,12", "3,06", "19,18")),
            (218, ("Summe", "40,99", "4,80", "45,79")),
        )
        for x, text in zip((50, 150, 230, 310), cells, strict=True)
    ],
]


async def test_a_vat_table_gives_its_sum_row_not_its_first_rate(extractor: Extractor) -> None:
    """Each rate's row is consistent with itself (24,87 + 1,74 = 26,61): only the "Summe" row is
    the receipt's net and tax."""
    data = (await extract(extractor, pdf(MULTI_RATE_RECEIPT), invoice_schema()))["data"]
    assert (data["subtotal"], data["tax_total"], data["total"]) == (40.99, 4.8, 45.79)


FRENCH_RATE_TABLE: Drawing = [
    (1, 50, 60, "FACTURE"),
    (1, 50, 80, "Facture n° F2016/6156"),
    (1, 50, 100, "Date de facture : 18/02/2016"),
    *[
        (1, x, y, text)
        for y, cells in (
            (170, ("Taux TVA", "HT", "TVA", "TTC")),
            (186, ("5,5 %", "3 469,63", "190,83", "3 660,46")),
            (202, ("20 %", "2 395,08", "479,02", "2 874,10")),
            (218, ("Total", "5 864,71", "669,85", "6 534,56")),
        )
        for x, text in zip((50, 150, 230, 310), cells, strict=True)
    ],
    (1, 50, 250, "Total TTC : 6 534,56 EUR"),
]


async def test_a_french_vat_table_headed_ht_gives_the_net_of_its_total_row(extractor: Extractor) -> None:
    """ "HT" (hors taxe) heads the net column of French VAT tables; the "Total" row holds the sums."""
    data = (await extract(extractor, pdf(FRENCH_RATE_TABLE), invoice_schema()))["data"]
    assert (data["subtotal"], data["tax_total"], data["total"]) == (5864.71, 669.85, 6534.56)


async def test_total_time_covers_every_phase_and_each_stage_is_told(tmp_path: Path) -> None:
    """``total`` is the whole extraction, the trust layer included; a caller hears each stage."""
    from tests.documents import invoice_pdf, scanned_pdf

    settings = make_settings(tmp_path, None, ocr=OcrSettings(executor="thread"))
    analyzer = DocumentAnalyzer(settings)
    scanning = Extractor(LayoutEngine(), analyzer, max_tokens=4096, page_concurrency=4)
    stages: list[tuple[str, int | None]] = []
    try:
        scanned = scanned_pdf(invoice_pdf()[0])
        extraction = await scanning.extract(
            scanned, version(invoice_schema()), on_stage=lambda name, page: stages.append((name, page))
        )
    finally:
        analyzer.close()
    assert stages == [("opening", None), ("ocr", 1), ("reading", 1), ("checking", None)]
    timings = extraction.result["timings_ms"]
    assert timings["total"] >= timings["trust"] and timings["total"] >= timings["ingest"]
    assert timings["total"] >= timings["ingest"] + timings["ocr"] + timings["trust"] - 1  # rounding
