"""RapidOCR on an invoice-like page drawn with PyMuPDF, where every drawn word's position is known,
and the OCR pool in both of its variants: real OCR, tens of seconds, marked slow."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from difflib import SequenceMatcher

import pymupdf
import pytest
from PIL import Image

from app.ocr.engine import OcrEngine, OcrLine, available_cpus, lines_to_words, ocr_page
from app.ocr.engines import DEFAULT_OCR_ENGINE, build_ocr_engine, missing
from app.ocr.pool import OcrPool
from app.pages import BBox, Page, Word

pytestmark = pytest.mark.slow

# ---------------------------------------------------------------------------------------------------
# RapidOCR on a generated page
# ---------------------------------------------------------------------------------------------------

PAGE_W, PAGE_H = 612.0, 792.0  # US Letter, points
FONT = "helv"

# (x, baseline y, text, font size): every line's normalised text is unique on the page.
INVOICE: list[tuple[float, float, str, float]] = [
    (50, 60, "ACME Supplies Ltd", 16),
    (400, 60, "INVOICE", 18),
    (50, 80, "221 Baker Street, London NW1 6XE", 10),
    (400, 90, "Invoice No.: INV-2024-0042", 10),
    (400, 105, "Date: 2024-03-15", 10),
    (400, 120, "Due date: 2024-04-14", 10),
    (50, 140, "Bill to: Northwind Traders", 11),
    (50, 155, "42 Harbour Road, Bristol BS1 5TT", 10),
    (50, 200, "Description", 11),
    (300, 200, "Qty", 11),
    (360, 200, "Unit price", 11),
    (480, 200, "Amount", 11),
    (50, 220, "Widget blue large", 10),
    (300, 220, "3", 10),
    (360, 220, "12.50", 10),
    (480, 220, "37.50", 10),
    (50, 236, "Consulting services March", 10),
    (300, 236, "10", 10),
    (360, 236, "95.00", 10),
    (480, 236, "950.00", 10),
    (50, 252, "Shipping and handling", 10),
    (300, 252, "1", 10),
    (360, 252, "18.00", 10),
    (480, 252, "18.40", 10),
    (360, 290, "Subtotal", 11),
    (480, 290, "1005.90", 11),
    (360, 306, "VAT 20%", 11),
    (480, 306, "201.18", 11),
    (360, 324, "Total due EUR", 12),
    (480, 324, "1207.08", 12),
    (50, 400, "Payment terms: net 30 days. Please quote the invoice number.", 10),
    (50, 415, "Bank transfer to IBAN GB29 NWBK 6016 1331 9268 19", 10),
]


@dataclass(frozen=True)
class Drawn:
    text: str
    bbox: BBox
    """Normalised, from the insertion point and the font's ascender, descender and advance widths."""


def _box(x: float, baseline: float, text: str, size: float, font: pymupdf.Font) -> BBox:
    width = pymupdf.get_text_length(text, fontname=FONT, fontsize=size)
    top, bottom = baseline - font.ascender * size, baseline - font.descender * size
    return (x / PAGE_W, top / PAGE_H, (x + width) / PAGE_W, bottom / PAGE_H)


def render_invoice(dpi: int) -> tuple[Image.Image, list[Drawn], list[Drawn]]:
    """The page as an RGB image, and where each line and each word was drawn."""
    font = pymupdf.Font(FONT)
    doc = pymupdf.open()
    try:
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        lines: list[Drawn] = []
        words: list[Drawn] = []
        for x, y, text, size in INVOICE:
            page.insert_text((x, y), text, fontname=FONT, fontsize=size)
            lines.append(Drawn(text, _box(x, y, text, size, font)))
            for match in re.finditer(r"\S+", text):
                offset = pymupdf.get_text_length(text[: match.start()], fontname=FONT, fontsize=size)
                words.append(Drawn(match.group(), _box(x + offset, y, match.group(), size, font)))
        pix = page.get_pixmap(dpi=dpi)
        image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    finally:
        doc.close()
    return image, lines, words


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _iou(a: BBox, b: BBox) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _contains_centre(outer: BBox, inner: BBox) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def word_recall(drawn: list[Drawn], ocr_texts: list[str]) -> float:
    """Share of drawn words found: as an OCR word, or inside one (OCR often drops spaces)."""
    found_words = [_norm(t) for t in ocr_texts if _norm(t)]
    wanted = [_norm(d.text) for d in drawn if _norm(d.text)]
    found = [w for w in wanted if any(w == f or w in f for f in found_words)]
    return len(found) / len(wanted)


def _page(image: Image.Image, dpi: int) -> Page:
    return Page(number=1, width=PAGE_W, height=PAGE_H, kind="scanned", image=image, dpi=dpi)


@pytest.fixture(scope="module", params=[DEFAULT_OCR_ENGINE, "rapidocr-v4"])
def ocr_engine(request: pytest.FixtureRequest) -> OcrEngine:
    """The default engine and the one before it: both must meet what this file asserts."""
    hint = missing(request.param)
    if hint is not None:
        pytest.skip(f"{request.param} is not installed: {hint}")
    return build_ocr_engine(request.param, threads=available_cpus())


@dataclass(frozen=True)
class OcrRun:
    lines: list[OcrLine]
    drawn_lines: list[Drawn]
    drawn_words: list[Drawn]
    seconds: float


@pytest.fixture(scope="module")
def invoice_ocr(ocr_engine: OcrEngine) -> OcrRun:
    """One 200-DPI OCR run, shared by the checks below (the model load is in the first call)."""
    image, drawn_lines, drawn_words = render_invoice(dpi=200)
    start = time.perf_counter()
    lines = ocr_engine.recognize(image)
    return OcrRun(lines, drawn_lines, drawn_words, time.perf_counter() - start)


def test_ocr_finds_the_drawn_words(invoice_ocr: OcrRun) -> None:
    words = lines_to_words(invoice_ocr.lines)
    recall = word_recall(invoice_ocr.drawn_words, [w.text for w in words])
    print(f"word recall {recall:.3f} in {invoice_ocr.seconds:.2f} s")  # shown with -s
    assert recall >= 0.9
    assert all(0.0 < line.confidence <= 1.0 for line in invoice_ocr.lines)


def test_ocr_line_boxes_lie_where_the_text_was_drawn(invoice_ocr: OcrRun) -> None:
    found = 0
    for drawn in invoice_ocr.drawn_lines:
        target = _norm(drawn.text)
        best = max(invoice_ocr.lines, key=lambda ln: SequenceMatcher(None, _norm(ln.text), target).ratio())
        if SequenceMatcher(None, _norm(best.text), target).ratio() < 0.8:
            continue
        found += 1
        assert (
            _iou(best.bbox, drawn.bbox) > 0.3
            or _contains_centre(best.bbox, drawn.bbox)
            or _contains_centre(drawn.bbox, best.bbox)
        ), (drawn, best)
    assert found >= 0.9 * len(invoice_ocr.drawn_lines)


def test_ocr_lines_come_in_reading_order(invoice_ocr: OcrRun) -> None:
    texts = [_norm(ln.text) for ln in invoice_ocr.lines]

    def index(needle: str) -> int:
        return next(i for i, text in enumerate(texts) if _norm(needle) in text)

    # Rows top to bottom, and left to right within a row (ACME and INVOICE share a baseline).
    sequence = ["ACME Supplies", "INVOICE", "221 Baker Street", "Invoice No", "Description", "Qty"]
    sequence += ["Unit price", "Amount", "Widget blue", "12.50", "37.50", "Subtotal", "Bank transfer"]
    positions = [index(needle) for needle in sequence]
    assert positions == sorted(positions)


def test_estimated_word_boxes_overlap_the_drawn_words(invoice_ocr: OcrRun) -> None:
    """Proportional slicing is an estimate: most words whose OCR text is exact must overlap their
    drawn box."""
    unique = {}
    for d in invoice_ocr.drawn_words:
        key = _norm(d.text)
        if len(key) >= 3:
            unique[key] = None if key in unique else d
    checked = hits = 0
    for word in lines_to_words(invoice_ocr.lines):
        drawn = unique.get(_norm(word.text))
        if drawn is None:
            continue
        checked += 1
        hits += _iou(word.bbox, drawn.bbox) > 0.3 or _contains_centre(drawn.bbox, word.bbox)
    assert checked >= 20
    assert hits >= 0.8 * checked


# ---------------------------------------------------------------------------------------------------
# ocr_page and the pool, on a smaller rendering (keeps the file quick)
# ---------------------------------------------------------------------------------------------------

SMALL_DPI = 120


@dataclass(frozen=True)
class SmallPage:
    page: Page
    drawn_words: list[Drawn]
    words: list[Word]
    """``ocr_page`` in this process: what the pools must reproduce."""


@pytest.fixture(scope="module")
def small_page(ocr_engine: OcrEngine) -> SmallPage:
    image, _, drawn_words = render_invoice(dpi=SMALL_DPI)
    page = _page(image, SMALL_DPI)
    return SmallPage(page, drawn_words, ocr_page(page, ocr_engine))


def test_ocr_page_gives_ocr_words_line_by_line(small_page: SmallPage) -> None:
    words = small_page.words
    assert word_recall(small_page.drawn_words, [w.text for w in words]) >= 0.85
    assert all(w.source == "ocr" for w in words)
    assert [w.line for w in words] == sorted(w.line for w in words)
    assert words[0].line == 0


async def test_thread_pool_ocrs_off_the_loop(ocr_engine: OcrEngine, small_page: SmallPage) -> None:
    async with OcrPool(ocr_engine, executor="thread") as pool:
        words = await pool.words(small_page.page)
    assert words == small_page.words
    with pytest.raises(RuntimeError, match="closed"):
        await pool.words(small_page.page)


async def test_process_pool_builds_the_engine_in_its_worker(
    ocr_engine: OcrEngine, small_page: SmallPage
) -> None:
    blank = _page(Image.new("L", (300, 400), 255), SMALL_DPI)  # not RGB: the pool converts it
    engine = build_ocr_engine(ocr_engine.name, threads=2)
    async with OcrPool(engine, executor="process") as pool:
        words = await pool.words(small_page.page)
        assert await pool.words(blank) == []  # the same worker serves the next page
        assert engine._ocr is None  # type: ignore[attr-defined]  # built in the worker, not here
    assert [w.text for w in words] == [w.text for w in small_page.words]
    for got, expected in zip(words, small_page.words, strict=True):
        assert got.bbox == pytest.approx(expected.bbox, abs=2e-3)
