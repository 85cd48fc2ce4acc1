"""The text map's search: exact, normalised, fuzzy, across line breaks and joined OCR words."""

from __future__ import annotations

import pytest

from app.documents.ingest import IngestLimits, open_document
from app.documents.textmap import DocumentMap, PageMap
from app.pages import Word
from tests.documents import invoice_pdf


@pytest.fixture(scope="module")
def invoice_map() -> DocumentMap:
    pdf, _ = invoice_pdf(pages=2)
    result = DocumentMap(page_count=2)
    with open_document(pdf, IngestLimits(dpi=72)) as document:
        for page in document.pages():
            result.add(page, [])
    return result


def ocr_page(*lines: str) -> PageMap:
    """A page of OCR words, one printed line per argument."""
    words = []
    for number, line in enumerate(lines):
        for i, text in enumerate(line.split()):
            words.append(
                Word(text, (0.1 * i, 0.05 * number, 0.1 * i + 0.08, 0.05 * number + 0.03), 0.9, "ocr", number)
            )
    return PageMap(1, 1000, 1400, "image", words)


def test_exact_value_with_its_box(invoice_map: DocumentMap) -> None:
    best = invoice_map.find("INV-2024-0042")[0]
    assert (best.method, best.score, best.page, best.text) == ("exact", 1.0, 1, "INV-2024-0042")
    x0, y0, x1, y1 = best.bbox
    assert 0.6 < x0 < x1 < 0.9 and 0.06 < y0 < y1 < 0.09  # baseline at x=360+, y=70 pt on 595x842


def test_values_split_across_lines(invoice_map: DocumentMap) -> None:
    best = invoice_map.find("742 Evergreen Terrace Springfield Oregon 97403")[0]
    assert best.method == "exact"
    assert best.text == "742 Evergreen Terrace\nSpringfield Oregon 97403"
    assert best.bbox[3] - best.bbox[1] > 0.02  # the box spans both lines


def test_every_page_is_searched_best_first(invoice_map: DocumentMap) -> None:
    matches = invoice_map.find("Total EUR 50.58")
    assert [(m.page, m.method) for m in matches] == [(1, "exact"), (2, "exact")]


@pytest.mark.parametrize(
    ("value", "method"),
    [
        ("globex corporation", "normalized"),
        ("ACME SUPPLIES GMBH", "normalized"),
        ("Hauptstrasse 12 10115 Berlin", "normalized"),  # comma missing in the value
        ("DE89 3704 0044 0532 0130 00", "exact"),  # IBAN printed without spaces, asked with them
        ("Globex Corporatoin", "fuzzy"),
    ],
)
def test_normalised_and_fuzzy_levels(invoice_map: DocumentMap, value: str, method: str) -> None:
    best = invoice_map.find(value)[0]
    assert best.method == method, best


def test_nothing_is_invented(invoice_map: DocumentMap) -> None:
    assert invoice_map.find("Initech Limited") == []
    assert invoice_map.find("   ") == []


def test_ocr_words_joined_without_spaces() -> None:
    page = ocr_page("InvoiceNo.:INV-7731", "TOTALRM12.50")
    best = page.find("INV-7731")[0]
    assert (best.method, best.score) == ("exact", 1.0)  # ':' separates the tokens
    amount = page.find("12.50")[0]
    assert amount.score == 1.0  # letters then digits: a boundary, as OCR joins "TOTAL RM 12.50"
    assert page.find("ALRM")[0].score == 0.85  # starts inside the run of letters "TOTALRM": weaker
    assert page.find("2.5")[0].score == 0.85  # inside the digits of 12.50


def test_a_cut_inside_pdf_text_is_weaker_than_inside_ocr_text() -> None:
    pdf = ocr_page("Ref 2042")
    pdf.kind = "born_digital"
    assert pdf.find("42")[0].score == 0.6


def test_a_number_inside_a_longer_number_is_weak() -> None:
    page = ocr_page("Ref 2042", "Qty 42")
    matches = page.find("42")
    assert matches[0].text == "42" and matches[0].score == 1.0
    assert matches[1].text == "2042" and matches[1].score == 0.85  # milder on OCR text than on a PDF layer


def test_to_dict_round_trips_the_essentials(invoice_map: DocumentMap) -> None:
    data = invoice_map.to_dict()
    assert data["page_count"] == 2 and len(data["pages"]) == 2
    first = data["pages"][0]["words"][0]
    assert first["text"] == "ACME" and first["source"] == "pdf" and len(first["bbox"]) == 4
